//! `strom`: operate a Strom cluster — topics, producing, consuming, consumer groups and the
//! cluster overview.

mod cmd;
mod context;
mod dev;
mod error;
mod output;

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

#[tokio::main]
async fn main() -> ExitCode {
    let matches = cmd::Cli::command().get_matches();
    let brokers_given = matches.value_source("brokers") == Some(ValueSource::CommandLine);
    let cli = match cmd::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    match cli.run(brokers_given).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let hint = error
                .hint()
                .map(|h| format!(" (hint: {h})"))
                .unwrap_or_default();
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {error}{hint}");
            }
            error.exit_code()
        }
    }
}
