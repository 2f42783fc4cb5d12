//! The `lim` command line (clap): subcommands and their arguments, and the
//! `check-config` command, which needs no runtime.
//!
//! `main.rs` parses a [`Cli`] and dispatches: `serve` goes to
//! [`crate::server::serve`] with the configuration from [`crate::config`];
//! `check-config` is [`check_config`] here.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, ConfigError, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "lim",
    version,
    about = "LLM Incident Manager: on-call incident management"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: HTTP API, actor system and store.
    Serve(ServeArgs),
    /// Parse and validate a config file; print every error as FILE:LINE:COL: message.
    CheckConfig(CheckConfigArgs),
    /// List or show incidents of a running server.
    Incidents(IncidentsArgs),
    /// Acknowledge an incident: its escalation stops.
    Ack(ActionArgs),
    /// Resolve an incident.
    Resolve(ActionArgs),
    /// Snooze an incident: acknowledged for DURATION, then triggered again.
    Snooze(SnoozeArgs),
    /// Fire the incident's next escalation step now.
    Escalate(ActionArgs),
    /// Add a note to an incident's timeline.
    Note(NoteArgs),
    /// Silences: add, list, expire.
    Silence(SilenceArgs),
    /// Make credentials for the config file.
    Token(TokenArgs),
    /// Who is on call now (or --at a time) for every schedule.
    Oncall(OncallArgs),
    /// The live actor tree of a running server (or one actor; restart one).
    Actors(ActorsArgs),
}

#[derive(Debug, Args)]
pub struct ActorsArgs {
    #[command(subcommand)]
    pub command: Option<ActorsCommand>,
    /// Only actors of this kind (and their ancestors): supervisor,
    /// persistence, notifier_pool, factory, notifier_worker, router,
    /// incident, scheduler, heartbeat.
    #[arg(long)]
    pub kind: Option<String>,
    /// Only actors with this status: running, unresponsive, … or an
    /// incident's triggered / acknowledged.
    #[arg(long)]
    pub status: Option<String>,
    /// Incidents shown (one page of the router's children).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// The next page of incidents (as printed under the last one).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Redraw every SECONDS (default 2) until interrupted.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "2")]
    pub watch: Option<f64>,
    /// Colours: auto (a terminal without NO_COLOR), always, never.
    #[arg(long, default_value = "auto")]
    pub color: String,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Subcommand)]
pub enum ActorsCommand {
    /// One actor in full: an actor id (0.42) or incident-<id>.
    Show { id: String },
    /// Restart an incident's actor from its last committed snapshot.
    Restart { id: String },
}

#[derive(Debug, Args)]
pub struct OncallArgs {
    /// An RFC 3339 time to ask about instead of now.
    #[arg(long)]
    pub at: Option<String>,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a random secret and print it with the config lines that use it:
    /// an `[[api_tokens]]` entry (only the digest goes in the file) or an
    /// integration key for a service.
    New {
        /// The user the API token acts as.
        #[arg(long, default_value = "admin")]
        user: String,
        /// Comma-separated scopes: read, write.
        #[arg(long, default_value = "read,write")]
        scopes: String,
    },
}

/// `lim token new`: a fresh secret, its digest, and where each goes.
pub fn token_new(user: &str, scopes: &str) -> Result<String, String> {
    let scopes = scopes
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| crate::auth::Scope::parse(s).map(|s| format!("{:?}", s.as_str())))
        .collect::<Result<Vec<_>, _>>()?;
    if scopes.is_empty() {
        return Err("--scopes needs at least one of: read, write".into());
    }
    let secret = crate::auth::new_secret().map_err(|e| format!("no randomness: {e}"))?;
    let digest = crate::auth::SecretDigest::of(&secret).to_config_string();
    Ok(format!(
        "secret: {secret}\n\n\
         # As an API token: give the secret to {user:?} (LIM_TOKEN), put this in the config:\n\
         [[api_tokens]]\nuser = {user:?}\ntoken_sha256 = \"{digest}\"\nscopes = [{}]\n\n\
         # Or as a service's integration key (senders use the secret as their bearer \
         token or PagerDuty routing_key):\n\
         # integration_keys = [\"{digest}\"]\n",
        scopes.join(", ")
    ))
}

#[derive(Debug, Args)]
pub struct SilenceArgs {
    #[command(subcommand)]
    pub command: SilenceCommand,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Silence alerts matching every MATCHER (name=value, name!=value, name=~regex, name!~regex).
    Add {
        #[arg(required = true)]
        matchers: Vec<String>,
        /// How long, e.g. 2h.
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Why (required).
        #[arg(long)]
        comment: String,
        #[arg(long, default_value_t = default_actor())]
        by: String,
    },
    /// Every silence, newest first.
    List,
    /// End a silence now.
    Expire { id: u64 },
}

/// How to reach a running server.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// The lim server's base URL. It may carry basic-auth credentials
    /// (`https://user:password@host`, for a proxy in front of lim); they
    /// are never printed (errors show the password as `***`, `--help` does
    /// not show the variable's value).
    #[arg(
        long,
        env = "LIM_SERVER",
        hide_env_values = true,
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// API token, sent as `Authorization: Bearer TOKEN`.
    #[arg(long, env = "LIM_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct IncidentsArgs {
    #[command(subcommand)]
    pub command: IncidentsCommand,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// Newest first.
    List {
        /// triggered, acknowledged, resolved or open.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One incident with its alerts and timeline.
    Show { id: u64 },
}

/// Who acts: defaults to the local user name.
fn default_actor() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .map(|u| format!("cli:{u}"))
        .unwrap_or_else(|_| "cli".to_string())
}

#[derive(Debug, Args)]
pub struct ActionArgs {
    pub id: u64,
    /// Who acts (recorded on the timeline). [default: cli:$USER]
    #[arg(long, default_value_t = default_actor())]
    pub by: String,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Args)]
pub struct SnoozeArgs {
    pub id: u64,
    /// How long, e.g. 30m, 4h.
    pub duration: String,
    #[arg(long, default_value_t = default_actor())]
    pub by: String,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Args)]
pub struct NoteArgs {
    pub id: u64,
    /// The note's text.
    pub text: String,
    #[arg(long, default_value_t = default_actor())]
    pub by: String,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML config file.
    #[arg(long, env = "LIM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (IP:PORT); overrides the file. [default: 127.0.0.1:8080]
    #[arg(long, env = "LIM_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Database URL (sqlite:… or postgres:…); overrides the file. [default: sqlite://./data/lim.db]
    #[arg(long, env = "LIM_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
}

impl ServeArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen.clone(),
            database_url: self.database_url.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The config file to check.
    pub file: PathBuf,
}

/// `lim check-config FILE`: `FILE: ok` on stdout and success, or every
/// problem as `FILE:LINE:COL: message` on stderr and failure.
pub fn check_config(file: &Path, out: &mut impl Write, err: &mut impl Write) -> ExitCode {
    let written = match config::read_file(file) {
        Ok(_) => writeln!(out, "{}: ok", file.display()).map(|()| ExitCode::SUCCESS),
        Err(ConfigError::Invalid(diagnostics)) => {
            writeln!(err, "{diagnostics}").map(|()| ExitCode::FAILURE)
        }
        Err(ConfigError::Read { source, .. }) => {
            writeln!(err, "{}: cannot read: {source}", file.display()).map(|()| ExitCode::FAILURE)
        }
        Err(e) => writeln!(err, "{}: {e}", file.display()).map(|()| ExitCode::FAILURE),
    };
    written.unwrap_or(ExitCode::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_subcommands() {
        let cli = Cli::try_parse_from(["lim", "check-config", "lim.toml"]).unwrap();
        assert!(matches!(cli.command, Command::CheckConfig(a) if a.file == Path::new("lim.toml")));
        let cli = Cli::try_parse_from(["lim", "serve", "--listen", "127.0.0.1:0"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("expected serve")
        };
        assert_eq!(args.overrides().listen.as_deref(), Some("127.0.0.1:0"));
    }

    #[test]
    fn check_config_reports() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "listen = \"127.0.0.1:9\"\n").unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(check_config(&good, &mut out, &mut err), ExitCode::SUCCESS);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{}: ok\n", good.display())
        );

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "\nlisten = \"x\"\n").unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(check_config(&bad, &mut out, &mut err), ExitCode::FAILURE);
        let err = String::from_utf8(err).unwrap();
        assert!(
            err.starts_with(&format!("{}:2:10: ", bad.display())),
            "{err}"
        );

        let missing = dir.path().join("missing.toml");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(
            check_config(&missing, &mut out, &mut err),
            ExitCode::FAILURE
        );
    }
}
