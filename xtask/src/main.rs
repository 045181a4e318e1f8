//! Project automation, run as `cargo xtask <command>`.
//!
//! - `layers`  — fail if a crate depends on a crate above it (or sideways), or if a lower crate's
//!   normal dependency tree contains a crate it must never drag in (HTTP, async runtime, crypto).
//! - `codegen [--check]` — regenerate `ksef-model`'s API types and operation catalogue from
//!   `spec/open-api.json`; with `--check`, fail if the committed output differs (drift).
//! - `response-coverage [--from DIR]` — run the ksef-sim, ksef and ksef-cli tests with
//!   spec-checked simulators and report the (operation, status) pairs they answered against the
//!   spec; fail if an operation's success status was never answered.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool: printing is its job

mod codegen;
mod coverage;
mod layers;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("layers") => layers::run(),
        Some("codegen") => codegen::run(&args[1..]),
        Some("response-coverage") => coverage::run(&args[1..]),
        Some(other) => Err(anyhow::anyhow!("unknown xtask command `{other}`")),
        None => Err(anyhow::anyhow!(
            "usage: cargo xtask <layers|codegen [--check]|response-coverage [--from DIR]>"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
