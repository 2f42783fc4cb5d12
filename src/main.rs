//! The `lim` binary: parses the command line and calls into the library.
//! The only place that uses `anyhow`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use lim::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            lim::telemetry::init().context("cannot set up logging")?;
            let config = lim::config::load(args.config.as_deref(), &args.overrides())?;
            lim::server::serve(config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig(args) => Ok(lim::cli::check_config(
            &args.file,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )),
    }
}
