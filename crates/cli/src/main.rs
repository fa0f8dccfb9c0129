//! `strom`: operate a Strom cluster — topics, producing, consuming, consumer groups and the
//! cluster overview.

mod cmd;
mod context;
mod error;
mod output;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    match cli.run().await {
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
