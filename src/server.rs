//! `lim serve`: binds the listener, starts the actor system, serves until
//! told to stop.
//!
//! Order matters. The listener is bound first and `lim listening on
//! http://ADDR` printed, so probes and scripts can reach the process at
//! once (`/healthz` 200, `/readyz` and the API 503 `not_ready`). Then the
//! store is opened and the actor system spawned, retried every 2 s while the
//! database is unreachable; once it runs the [`AppState`] becomes ready. On
//! SIGTERM or ctrl-c the HTTP server drains and the system shuts down
//! (pending timers aborted). If the system stops by itself (restart
//! intensity exceeded at the root) the server stops and `serve` returns
//! [`ServeError::SystemStopped`], so the process exits non-zero and its
//! supervisor (systemd, Kubernetes) restarts it.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use incident_actors::time::SystemClock;
use incident_actors::{spawn_system, System, SystemDeps};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::http::{app, AppState};
use crate::store::open_store;

/// Wait between attempts to open the store and start the system.
pub const START_RETRY_INTERVAL: Duration = Duration::from_secs(2);
/// Longest wait for in-flight HTTP requests on shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Http(String),
    #[error("the incident system stopped by itself (restart intensity exceeded)")]
    SystemStopped,
}

/// Runs the server until SIGTERM or ctrl-c.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    // Install the signal handlers before announcing the address, so a
    // signal sent as soon as the line is read is already ours.
    let shutdown = shutdown_signal();
    serve_until(config, shutdown).await
}

/// Runs the server until `shutdown` resolves.
pub async fn serve_until(
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let bind_error = |source| ServeError::Bind {
        addr: config.listen,
        source,
    };
    let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    println!("lim listening on http://{addr}");
    tracing::info!(%addr, "listening");

    let mut state = AppState::new()
        .with_resolve_timeout(config.resolve_timeout)
        .with_limits(config.limits)
        .with_access(config.access.clone())
        .with_routes(config.routes.clone());
    if let Some(slack) = crate::slack::SlackSettings::from_config(&config) {
        state = state.with_slack(slack);
    }
    let mut http = HttpServer::start(listener, state.clone());
    tokio::pin!(shutdown);

    let system = tokio::select! {
        system = start_system(&config) => system,
        () = &mut shutdown => {
            tracing::info!("shutdown requested before the system was ready");
            return http.stop().await;
        }
        result = http.finished() => return Err(result.err().unwrap_or_else(stopped_early)),
    };
    if state.set_system(system.clone()).is_err() {
        unreachable!("the state is made ready once");
    }
    tracing::info!("ready");

    let outcome = tokio::select! {
        () = &mut shutdown => {
            tracing::info!("shutting down");
            Ok(())
        }
        () = system.stopped() => {
            tracing::error!("the incident system stopped by itself; exiting");
            Err(ServeError::SystemStopped)
        }
        result = http.finished() => Err(result.err().unwrap_or_else(stopped_early)),
    };
    let drained = http.stop().await;
    system.shutdown().await;
    tracing::info!("stopped");
    outcome.and(drained)
}

fn stopped_early() -> ServeError {
    ServeError::Http("the HTTP server stopped unexpectedly".into())
}

/// The axum server running in its own task, stoppable gracefully.
struct HttpServer {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl HttpServer {
    fn start(listener: TcpListener, state: AppState) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let server = axum::serve(listener, app(state)).with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|s| *s).await;
        });
        HttpServer {
            stop,
            task: Some(tokio::spawn(server.into_future())),
        }
    }

    /// Resolves if the server task ends on its own (it should not).
    async fn finished(&mut self) -> Result<(), ServeError> {
        match self.task.as_mut() {
            Some(task) => {
                let result = task.await;
                self.task = None;
                join_result(result)
            }
            None => std::future::pending().await,
        }
    }

    /// Stops accepting connections and waits (bounded) for in-flight requests.
    async fn stop(mut self) -> Result<(), ServeError> {
        let _ = self.stop.send(true);
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        match tokio::time::timeout(DRAIN_TIMEOUT, &mut task).await {
            Ok(result) => join_result(result),
            Err(_) => {
                tracing::warn!(
                    "in-flight requests did not finish in {DRAIN_TIMEOUT:?}; closing them"
                );
                task.abort();
                Ok(())
            }
        }
    }
}

fn join_result(
    result: Result<std::io::Result<()>, tokio::task::JoinError>,
) -> Result<(), ServeError> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ServeError::Http(e.to_string())),
        Err(e) => Err(ServeError::Http(e.to_string())),
    }
}

/// Opens the store and spawns the system, retrying until both succeed.
async fn start_system(config: &Config) -> System {
    let url = redact_url(&config.database_url);
    loop {
        match open_store(&config.database_url).await {
            Ok(store) => {
                let system_config = config.system_config();
                let channels = match config.channels.build() {
                    Ok(channels) => channels,
                    Err(e) => {
                        // Validated when the config was read; a failure
                        // here is environmental (TLS roots): keep retrying.
                        tracing::error!(error = %e, "cannot set up the notification channels");
                        tokio::time::sleep(START_RETRY_INTERVAL).await;
                        continue;
                    }
                };
                let deps = SystemDeps {
                    store,
                    clock: Arc::new(SystemClock),
                    channels,
                };
                match spawn_system(system_config, deps).await {
                    Ok(system) => {
                        tracing::info!(database = %url, "incident system started");
                        return system;
                    }
                    Err(e) => tracing::warn!(
                        database = %url,
                        error = %e,
                        "the incident system failed to start; retrying in {START_RETRY_INTERVAL:?}"
                    ),
                }
            }
            Err(e) => tracing::warn!(
                database = %url,
                error = %e,
                "cannot open the database; retrying in {START_RETRY_INTERVAL:?}"
            ),
        }
        tokio::time::sleep(START_RETRY_INTERVAL).await;
    }
}

/// Resolves on SIGTERM or ctrl-c (SIGINT). The handlers are installed when
/// this is called, not when the future is first polled.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => tracing::info!("SIGTERM received"),
                        _ = int.recv() => tracing::info!("SIGINT received"),
                    }
                }
                (term, int) => {
                    let e = term
                        .err()
                        .or(int.err())
                        .map(|e| e.to_string())
                        .unwrap_or_default();
                    tracing::error!(error = %e, "cannot install signal handlers; falling back to ctrl-c");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("ctrl-c received");
        }
    }
}

/// The database URL with any password replaced by `***`, for logs: the
/// user info's password (`postgres://lim:***@db/lim`) and the value of every
/// query parameter whose name says it is a credential (`?password=***`,
/// `sslpassword`, anything with `pass`, `secret`, `token` or `key` in it).
pub fn redact_url(url: &str) -> String {
    let (prefix, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    // The user info ends at the last `@`, so a password with an unencoded
    // `/`, `?` or `@` is still all inside it.
    let (userinfo, location) = match rest.rsplit_once('@') {
        Some((userinfo, location)) if !prefix.is_empty() => (Some(userinfo), location),
        _ => (None, rest),
    };
    let userinfo = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((user, _password)) => format!("{user}:***@"),
            None => format!("{u}@"),
        },
        None => String::new(),
    };
    let location = match location.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if is_credential_parameter(name) => format!("{name}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => location.to_string(),
    };
    format!("{prefix}{userinfo}{location}")
}

fn is_credential_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "secret", "token", "key"]
        .iter()
        .any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://lim:s3cret@db:5432/lim"),
            "postgres://lim:***@db:5432/lim"
        );
        assert_eq!(redact_url("postgres://lim@db/lim"), "postgres://lim@db/lim");
        assert_eq!(
            redact_url("sqlite://./data/lim.db"),
            "sqlite://./data/lim.db"
        );
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(
            redact_url("postgres://lim@db/lim?sslmode=require&password=s3cret"),
            "postgres://lim@db/lim?sslmode=require&password=***"
        );
        assert_eq!(
            redact_url("postgres://db/lim?user=lim&sslpassword=s3cret&sslkey=/k"),
            "postgres://db/lim?user=lim&sslpassword=***&sslkey=***"
        );
        assert_eq!(
            redact_url("postgres://lim:s3/c?r@t@db/lim"),
            "postgres://lim:***@db/lim"
        );
        assert_eq!(
            redact_url("sqlite://./data/lim.db?mode=rwc"),
            "sqlite://./data/lim.db?mode=rwc"
        );
    }
}
