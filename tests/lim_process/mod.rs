//! Runs the real `lim` binary as a child process for end-to-end tests and
//! benchmarks: start it on a free port, wait until it is ready, kill -9 it.
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

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
        let mut cmd = Command::new(binary);
        cmd.envs(env.iter().copied());
        cmd.arg("serve")
            .env("LIM_LISTEN", "127.0.0.1:0")
            .env("LIM_DATABASE_URL", database_url)
            .env(
                "RUST_LOG",
                std::env::var("LIM_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env_remove("LIM_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(config) = config {
            cmd.env("LIM_CONFIG", config);
        }
        let mut child = cmd.spawn().expect("spawn lim");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if let Some(addr) = line.strip_prefix("lim listening on ") {
                    return addr.trim().to_string();
                }
            }
            panic!("lim exited before listening");
        })
        .await
        .expect("lim prints its address");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
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
