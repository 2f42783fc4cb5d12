//! Runs the real `lim` binary as a child process for end-to-end tests and
//! benchmarks: start it on a free port, wait until it is ready, kill -9 it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Where [`LimProcess::start_capturing`] appends lim's output lines.
pub type Output = Arc<Mutex<Vec<String>>>;

pub struct LimProcess {
    pub child: Child,
    pub base: String,
}

impl LimProcess {
    /// Starts `lim serve` with `LIM_LISTEN=127.0.0.1:0` and waits for `/readyz`.
    pub async fn start(binary: &Path, database_url: &str, config: Option<&Path>) -> LimProcess {
        Self::start_with_env(binary, database_url, config, &[]).await
    }

    /// [`LimProcess::start`] with extra environment variables.
    pub async fn start_with_env(
        binary: &Path,
        database_url: &str,
        config: Option<&Path>,
        env: &[(&str, &str)],
    ) -> LimProcess {
        let mut cmd = Self::command(binary);
        // Set before the defaults: `RUST_LOG`, `LIM_LISTEN`, … here lose.
        cmd.envs(env.iter().copied());
        Self::defaults(&mut cmd, database_url, config);
        cmd.stderr(Stdio::inherit());
        Self::launch(cmd, None).await
    }

    /// [`LimProcess::start_with_env`], but `env` wins over the defaults
    /// (`RUST_LOG` included), and every line lim writes, stdout and stderr
    /// (the `lim listening on …` line too), is appended to `output` as it
    /// comes, for as long as the process runs.
    pub async fn start_capturing(
        binary: &Path,
        database_url: &str,
        config: Option<&Path>,
        env: &[(&str, &str)],
        output: Output,
    ) -> LimProcess {
        let mut cmd = Self::command(binary);
        Self::defaults(&mut cmd, database_url, config);
        cmd.envs(env.iter().copied());
        cmd.stderr(Stdio::piped());
        Self::launch(cmd, Some(output)).await
    }

    fn command(binary: &Path) -> Command {
        let mut cmd = Command::new(binary);
        cmd.arg("serve");
        cmd
    }

    fn defaults(cmd: &mut Command, database_url: &str, config: Option<&Path>) {
        cmd.env("LIM_LISTEN", "127.0.0.1:0")
            .env("LIM_DATABASE_URL", database_url)
            .env(
                "RUST_LOG",
                std::env::var("LIM_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env_remove("LIM_CONFIG")
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if let Some(config) = config {
            cmd.env("LIM_CONFIG", config);
        }
    }

    async fn launch(mut cmd: Command, output: Option<Output>) -> LimProcess {
        let mut child = cmd.spawn().expect("spawn lim");
        if let (Some(output), Some(stderr)) = (output.clone(), child.stderr.take()) {
            let mut lines = BufReader::new(stderr).lines();
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    output.lock().unwrap().push(line);
                }
            });
        }
        let keep = |line: &str| {
            if let Some(output) = &output {
                output.lock().unwrap().push(line.to_string());
            }
        };
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                keep(&line);
                if let Some(addr) = line.strip_prefix("lim listening on ") {
                    return addr.trim().to_string();
                }
            }
            panic!("lim exited before listening");
        })
        .await
        .expect("lim prints its address");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(output) = &output {
                    output.lock().unwrap().push(line);
                }
            }
        });
        let process = LimProcess { child, base };
        process.wait_ready().await;
        process
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(r) = client.get(self.url("/readyz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("lim did not become ready within 60 s");
    }

    /// SIGKILL: no shutdown hook runs, exactly like a crash.
    pub async fn kill9(mut self) {
        self.child.start_kill().expect("kill -9");
        let _ = self.child.wait().await;
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// `GET path` as JSON (panics on a transport error or a non-JSON body).
pub async fn get_json(http: &reqwest::Client, lim: &LimProcess, path: &str) -> serde_json::Value {
    http.get(lim.url(path))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
}

/// The durability check shared by the crash and fault tests: every alert
/// answered 2xx, given as (fingerprint, incident id), is stored in that
/// incident.
pub async fn assert_acknowledged_alerts_stored(
    http: &reqwest::Client,
    lim: &LimProcess,
    acked: impl IntoIterator<Item = (String, u64)>,
) {
    use std::collections::{BTreeMap, BTreeSet};
    let mut by_incident: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for (fp, id) in acked {
        by_incident.entry(id).or_default().insert(fp);
    }
    for (id, fps) in &by_incident {
        let v = get_json(http, lim, &format!("/v1/incidents/{id}")).await;
        let stored: BTreeSet<String> = v["alerts"]
            .as_array()
            .unwrap_or_else(|| panic!("acknowledged incident {id} missing: {v}"))
            .iter()
            .map(|a| a["fingerprint"].as_str().unwrap().to_string())
            .collect();
        for fp in fps {
            assert!(
                stored.contains(fp),
                "acknowledged alert {fp} of incident {id} lost"
            );
        }
    }
}
