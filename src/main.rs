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
            let telemetry = lim::telemetry::init().context("cannot set up logging")?;
            let served = match lim::config::load(args.config.as_deref(), &args.overrides()) {
                Ok(config) => lim::server::serve(config)
                    .await
                    .map_err(anyhow::Error::from),
                Err(e) => Err(anyhow::Error::from(e)),
            };
            // Whatever `serve` returned: the spans still buffered go out.
            if let Err(e) = telemetry.shutdown().await {
                tracing::warn!(error = %e, "trace export incomplete");
            }
            served?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig(args) => Ok(lim::cli::check_config(
            &args.file,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )),
        Command::Incidents(args) => Ok(print(lim::remote::incidents(&args).await)),
        Command::Ack(args) => Ok(print(lim::remote::ack(&args).await)),
        Command::Resolve(args) => Ok(print(lim::remote::resolve(&args).await)),
        Command::Escalate(args) => Ok(print(lim::remote::escalate(&args).await)),
        Command::Snooze(args) => Ok(print(lim::remote::snooze(&args).await)),
        Command::Note(args) => Ok(print(lim::remote::note(&args).await)),
        Command::Silence(args) => Ok(print(lim::remote::silence(&args).await)),
        Command::Oncall(args) => Ok(print(lim::remote::oncall(&args).await)),
        Command::Actors(args) => match args.watch {
            Some(every) if args.command.is_none() => tokio::select! {
                result = lim::remote::watch_actors(&args, every) => Ok(print(result.map(|()| String::new()))),
                _ = tokio::signal::ctrl_c() => Ok(ExitCode::SUCCESS),
            },
            _ => Ok(print(lim::remote::actors(&args).await)),
        },
        Command::Token(args) => match args.command {
            lim::cli::TokenCommand::New { user, scopes } => {
                let out = lim::cli::token_new(&user, &scopes).map_err(anyhow::Error::msg)?;
                print!("{out}");
                Ok(ExitCode::SUCCESS)
            }
        },
    }
}

/// Prints a remote command's output, or its error as one line on stderr.
fn print(result: Result<String, lim::client::ClientError>) -> ExitCode {
    match result {
        Ok(out) => {
            print!("{out}");
            if !out.ends_with('\n') {
                println!();
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lim: {e}");
            ExitCode::FAILURE
        }
    }
}
