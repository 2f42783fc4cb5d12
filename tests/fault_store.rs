//! Fault tests of the store under load, against the real `lim` binary:
//!
//! - PostgreSQL stopped in the middle of the load (a server of the test's
//!   own, `tests/support/private_postgres.rs`): `/readyz` goes 503, ingest
//!   answers 503 (never a 2xx for an alert sent while it is down), and when
//!   PostgreSQL is back lim is ready again without a restart (same pid) and
//!   nothing acknowledged is lost.
//! - The SQLite disk full, and the SQLite disk read-only: the database sits
//!   on a small tmpfs of the test's own; a filler file takes the last free
//!   byte, or the mount is remounted read-only. Same contract; freeing the
//!   space, or remounting read-write, brings lim back without a restart.
//!
//! Mounting needs root (CAP_SYS_ADMIN). Without it the SQLite tests say so
//! and pass, except under `CI=true`, where they must run and fail instead.

mod lim_process;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lim_process::LimProcess;
use serde_json::{json, Value};
use support::private_postgres::PrivatePostgres;

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lim"))
}

/// When a request was sent, relative to the fault.
const BEFORE: u8 = 0;
const DURING: u8 = 1;
const AFTER: u8 = 2;

/// One answered request: the phase it was sent in and the one it was
/// answered in, its status, and for a 2xx the alert's fingerprint and
/// incident.
#[derive(Clone, Debug)]
struct Outcome {
    phase: u8,
    answered_in: u8,
    status: u16,
    code: Option<String>,
    took: Duration,
    stored: Option<(String, u64)>,
}

/// Clients that each POST new alerts (a fresh fingerprint per request)
/// until told to stop, recording every answer.
struct Load {
    phase: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(lim: &LimProcess, clients: usize) -> Load {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let phase = Arc::new(AtomicU8::new(BEFORE));
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
        let handles = (0..clients)
            .map(|c| {
                let (http, phase, stop, outcomes) =
                    (http.clone(), phase.clone(), stop.clone(), outcomes.clone());
                let url = lim.url("/v1/alerts");
                tokio::spawn(async move {
                    for i in 0u64.. {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let body = json!({"labels": {
                            "alertname": "StoreFault", "n": format!("{c}-{i}"), "service": "db"
                        }});
                        let sent_in = phase.load(Ordering::SeqCst);
                        let started = Instant::now();
                        let resp = http
                            .post(&url)
                            .json(&body)
                            .send()
                            .await
                            .expect("lim answers every request (no reset, no timeout)");
                        let status = resp.status().as_u16();
                        let v: Value = resp.json().await.unwrap_or(Value::Null);
                        let stored = (status / 100 == 2).then(|| {
                            let r = &v["results"][0];
                            (
                                r["fingerprint"].as_str().unwrap().to_string(),
                                r["incident_id"].as_u64().unwrap(),
                            )
                        });
                        let outcome = Outcome {
                            phase: sent_in,
                            answered_in: phase.load(Ordering::SeqCst),
                            status,
                            code: v["error"]["code"].as_str().map(str::to_string),
                            took: started.elapsed(),
                            stored,
                        };
                        outcomes.lock().unwrap().push(outcome);
                        if status / 100 != 2 {
                            // A client backs off on a refusal, as
                            // Alertmanager and the PagerDuty agents do.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                })
            })
            .collect();
        Load {
            phase,
            stop,
            outcomes,
            clients: handles,
        }
    }

    fn acked_in(&self, phase: u8) -> usize {
        let o = self.outcomes.lock().unwrap();
        o.iter()
            .filter(|o| o.phase == phase && o.stored.is_some())
            .count()
    }

    async fn wait_acked(&self, phase: u8, n: usize, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.acked_in(phase) < n {
            assert!(
                Instant::now() < deadline,
                "{what}: only {} acknowledged",
                self.acked_in(phase)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `n` requests sent in `phase` were answered, whatever
    /// the answer.
    async fn wait_answered(&self, phase: u8, n: usize, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let answered = || {
            let o = self.outcomes.lock().unwrap();
            o.iter().filter(|o| o.phase == phase).count()
        };
        while answered() < n {
            assert!(
                Instant::now() < deadline,
                "{what}: only {} answered",
                answered()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn enter(&self, phase: u8) {
        self.phase.store(phase, Ordering::SeqCst);
    }

    async fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::SeqCst);
        for c in self.clients {
            c.await.unwrap();
        }
        let o = self.outcomes.lock().unwrap().clone();
        o
    }
}

async fn readyz(http: &reqwest::Client, lim: &LimProcess) -> (u16, Value) {
    let r = http.get(lim.url("/readyz")).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls `/readyz` until it answers `want`; returns what it said.
async fn readyz_becomes(http: &reqwest::Client, lim: &LimProcess, want: u16, what: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = readyz(http, lim).await;
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: /readyz still {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The contract around a fault: nothing sent during it was acknowledged,
/// every refusal was a prompt 503 with a code, and every acknowledged
/// alert is stored.
///
/// `strict`: every request sent during the fault is refused. A full disk
/// is not strict: SQLite may still fit a commit into WAL pages it already
/// has, and such a commit is real (the stored check below covers it).
async fn check_contract(
    http: &reqwest::Client,
    lim: &LimProcess,
    outcomes: &[Outcome],
    strict: bool,
) {
    check_refusals(outcomes, strict);
    check_stored(http, lim, outcomes).await;
}

fn check_refusals(outcomes: &[Outcome], strict: bool) {
    let during: Vec<&Outcome> = outcomes.iter().filter(|o| o.phase == DURING).collect();
    assert!(
        during.len() >= 16,
        "load went on during the fault: {}",
        during.len()
    );
    assert!(
        during.iter().any(|o| o.status == 503),
        "the fault was seen: {during:?}"
    );
    if strict {
        // One sent while the store was down but answered after it came
        // back may well have been committed by then (it waited in the
        // batch); the stored check covers it.
        for o in during.iter().filter(|o| o.answered_in == DURING) {
            assert_eq!(
                o.status, 503,
                "an alert sent while the store is down is refused with 503: {o:?}"
            );
        }
    }
    for o in outcomes.iter().filter(|o| o.status / 100 != 2) {
        assert_eq!(o.status, 503, "refusals are 503: {o:?}");
        assert!(o.code.is_some(), "a refusal has an error code: {o:?}");
        assert!(
            o.took < Duration::from_secs(15),
            "a refusal is prompt, not a hang: {o:?}"
        );
    }
}

/// Every acknowledged alert is stored in the incident it was acknowledged with.
async fn check_stored(http: &reqwest::Client, lim: &LimProcess, outcomes: &[Outcome]) {
    let acked = outcomes.iter().filter_map(|o| o.stored.clone());
    lim_process::assert_acknowledged_alerts_stored(http, lim, acked).await;
}

/// A policy paging every second, so escalation steps fall due while the
/// store is down.
fn paging_every_second(dir: &Path) -> PathBuf {
    let path = dir.join("lim.toml");
    std::fs::write(
        &path,
        "[escalation]\nrepeat = 1000\n\n[[escalation.steps]]\ndelay = \"1s\"\ntargets = [\"console\"]\n",
    )
    .unwrap();
    path
}

/// Waits until incident `id` records a page after `after` (RFC 3339):
/// its escalation goes on.
async fn pages_after(http: &reqwest::Client, lim: &LimProcess, id: u64, after: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = lim_process::get_json(http, lim, &format!("/v1/incidents/{id}")).await;
        let paged_since = v["timeline"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["type"] == "notified" && e["at"].as_str().is_some_and(|at| at > after));
        if paged_since {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "incident {id} escalates again after the outage: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_mid_load_refuses_then_recovers_without_a_restart() {
    let pg = PrivatePostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let config = paging_every_second(dir.path());
    let lim = LimProcess::start(binary(), &pg.url("lim"), Some(&config)).await;
    let pid = lim.pid();
    let http = reqwest::Client::new();
    let load = Load::start(&lim, 8);
    load.wait_acked(BEFORE, 300, "before the stop").await;

    pg.stop("fast");
    load.enter(DURING);
    let body = readyz_becomes(&http, &lim, 503, "PostgreSQL stopped").await;
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    // Load goes on against the stopped database for a while.
    load.wait_answered(DURING, 16, "PostgreSQL stopped").await;

    load.enter(AFTER);
    pg.start_again();
    readyz_becomes(&http, &lim, 200, "PostgreSQL back").await;
    let back_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    load.wait_acked(AFTER, 300, "after PostgreSQL came back")
        .await;
    let outcomes = load.finish().await;
    assert_eq!(lim.pid(), pid, "lim recovered without a restart");
    check_contract(&http, &lim, &outcomes, true).await;
    // An incident opened before the outage, whose steps fell due during
    // it (their commits failed and were retried), escalates again.
    let first = outcomes.iter().find_map(|o| o.stored.clone()).unwrap().1;
    pages_after(&http, &lim, first, &back_at).await;
}

/// The command's output, or a panic naming it.
fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether this process may mount file systems. Without it the SQLite
/// disk tests say so and pass, except under `CI=true`, where they fail.
fn may_mount() -> bool {
    let probe = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(probe.path())
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        sh("umount", &[probe.path().to_str().unwrap()]);
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true: the SQLite disk fault tests must run, but this process may not mount"
    );
    eprintln!("skipped: mounting a file system needs root");
    false
}

/// SQLite's own check of the database file.
async fn integrity_check(db: &Path) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", db.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let (verdict,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(verdict, "ok", "{}", db.display());
}

/// A tmpfs of the test's own, for a database the test can fill; a filler
/// file takes its last free byte.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let options = format!("size={size}");
        sh(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &options,
                "tmpfs",
                dir.path().to_str().unwrap(),
            ],
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk to its last byte with a file; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write(&block).is_ok_and(|n| n > 0) {}
        // The last partial block, byte by byte.
        while f.write(&[0]).is_ok_and(|n| n == 1) {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_refuses_then_recovers_when_space_is_freed() {
    if !may_mount() {
        return;
    }
    let disk = SmallDisk::mount("64m");
    let db = disk.path().join("lim.db");
    let lim = LimProcess::start(binary(), &format!("sqlite://{}", db.display()), None).await;
    let pid = lim.pid();
    let http = reqwest::Client::new();
    let load = Load::start(&lim, 8);
    load.wait_acked(BEFORE, 300, "before the disk filled").await;

    let filler = disk.fill();
    load.enter(DURING);
    let body = readyz_becomes(&http, &lim, 503, "SQLite disk full").await;
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    load.wait_answered(DURING, 16, "disk fault").await;

    load.enter(AFTER);
    std::fs::remove_file(filler).unwrap();
    readyz_becomes(&http, &lim, 200, "space freed").await;
    load.wait_acked(AFTER, 300, "after space was freed").await;
    let outcomes = load.finish().await;
    assert_eq!(lim.pid(), pid, "lim recovered without a restart");
    check_contract(&http, &lim, &outcomes, false).await;
    lim.kill9().await;
    integrity_check(&db).await;
}

/// An ext4 file system in a file, on a loop device, mounted with
/// `errors=remount-ro`: an error triggered through sysfs turns it
/// read-only under lim, as a failing disk does.
struct LoopDisk {
    image: tempfile::TempDir,
    mount: tempfile::TempDir,
}

impl LoopDisk {
    fn create() -> LoopDisk {
        let image = tempfile::tempdir().unwrap();
        let file = image.path().join("disk.img");
        let file = file.to_str().unwrap();
        sh("truncate", &["-s", "96M", file]);
        sh("mkfs.ext4", &["-q", "-F", file]);
        let disk = LoopDisk {
            image,
            mount: tempfile::tempdir().unwrap(),
        };
        disk.mount_it();
        disk
    }

    fn image(&self) -> String {
        self.image.path().join("disk.img").display().to_string()
    }

    fn path(&self) -> &Path {
        self.mount.path()
    }

    fn mount_it(&self) {
        sh(
            "mount",
            &[
                "-o",
                "loop,errors=remount-ro",
                &self.image(),
                self.path().to_str().unwrap(),
            ],
        );
    }

    /// The loop device backing the mount, as sysfs names it (`loop3`).
    fn device(&self) -> String {
        let source = sh(
            "findmnt",
            &["-n", "-o", "SOURCE", self.path().to_str().unwrap()],
        );
        source.trim_start_matches("/dev/").to_string()
    }

    /// A file system error: ext4 turns itself read-only at once (remounted
    /// `ro`; on Linux 6.x `emergency_ro`, with no remount).
    fn fail(&self) {
        let trigger = format!("/sys/fs/ext4/{}/trigger_fs_error", self.device());
        std::fs::write(&trigger, "lim fault test").unwrap_or_else(|e| panic!("{trigger}: {e}"));
        let options = sh(
            "findmnt",
            &["-n", "-o", "OPTIONS", self.path().to_str().unwrap()],
        );
        // `ro` on older kernels; `emergency_ro` (beside a stale `rw`) on
        // Linux 6.x, which no longer remounts. (`errors=remount-ro` is
        // there either way, so a substring test proves nothing.)
        assert!(
            options
                .trim()
                .split(',')
                .any(|o| o == "ro" || o == "emergency_ro"),
            "read-only now: {options}"
        );
    }

    /// What an operator does: unmount, repair, mount again.
    fn repair(&self) {
        sh("umount", &[self.path().to_str().unwrap()]);
        // e2fsck exits 1 when it fixed something: that is a repair, not a failure.
        let status = Command::new("e2fsck")
            .args(["-f", "-y", &self.image()])
            .output()
            .unwrap()
            .status;
        assert!(matches!(status.code(), Some(0 | 1)), "e2fsck: {status:?}");
        self.mount_it();
    }
}

impl Drop for LoopDisk {
    /// Lazily, as `SmallDisk` does: the lim started last may still be
    /// exiting with the database open, and a plain `umount` then fails
    /// (busy) and leaves the mount and its loop device behind for good.
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// Read-only under lim: refused with 503, never a 2xx that was not
/// committed, lim stays up and answers reads; a read-only ext4 cannot be
/// made writable again under an open file, so the repair is the
/// operator's (umount, fsck, mount) followed by a restart of lim, and then
/// everything acknowledged is there and the database is intact.
///
/// The load goes on while ext4 aborts its journal. Before the store's
/// journal probe (`src/store/journal_probe.rs`) this lost an acknowledged
/// incident in 18 of 150 runs on Linux 6.18: the WAL's fsync had answered
/// success for frames that were not in the file after the repair (by
/// ext4's code, an fsync between the abort and ext4 turning read-only, for
/// frames whose allocation the aborted transaction held; inferred, not
/// traced).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_turning_read_only_refuses_and_loses_nothing() {
    if !may_mount() {
        return;
    }
    let disk = LoopDisk::create();
    let db = disk.path().join("lim.db");
    let url = format!("sqlite://{}", db.display());
    let lim = LimProcess::start(binary(), &url, None).await;
    let http = reqwest::Client::new();
    let load = Load::start(&lim, 8);
    load.wait_acked(BEFORE, 300, "before the disk failed").await;

    disk.fail();
    load.enter(DURING);
    let body = readyz_becomes(&http, &lim, 503, "SQLite disk read-only").await;
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    load.wait_answered(DURING, 16, "disk fault").await;
    let outcomes = load.finish().await;
    let (status, _) = readyz(&http, &lim).await;
    assert_eq!(status, 503, "still not ready while read-only");
    lim.kill9().await;

    disk.repair();
    integrity_check(&db).await;
    let lim = LimProcess::start(binary(), &url, None).await;
    check_refusals(&outcomes, true);
    check_stored(&http, &lim, &outcomes).await;
}
