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
