//! `ksef` — the command-line program of ksef-rs.
//!
//! Exit codes (documented in `ksef --help`):
//! - 0 — success;
//! - 1 — the operation failed (KSeF or the simulator refused it, or a step did not complete);
//! - 2 — usage error (unknown flag, missing argument);
//! - 3 — invalid input (a NIP or KSeF number that does not validate, an unreadable file).

// A command-line program prints to its user: stdout for results, stderr for progress and errors.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod demo;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use ksef_model::{KsefNumber, Nip};

/// Exit code: the operation failed.
const EXIT_FAILED: u8 = 1;
/// Exit code: the input did not validate.
const EXIT_INVALID_INPUT: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "ksef",
    version,
    about = "KSeF 2.0 from the shell: demo, local simulator, identifiers",
    after_help = "Exit codes: 0 success, 1 operation failed, 2 usage error, 3 invalid input."
)]
struct Cli {
    /// Machine-readable JSON on stdout (progress and logs go to stderr).
    #[arg(long, global = true)]
    json: bool,
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the whole seed flow against an embedded simulator: test data, test certificate, XAdES
    /// authentication, online FA(3) session, send, KSeF number, UPO, close.
    Demo {
        /// Directory the UPO receipts are written to.
        #[arg(long, default_value = "ksef-demo")]
        out: std::path::PathBuf,
        /// The NIP to act for (a random valid one by default).
        #[arg(long)]
        nip: Option<String>,
    },
    /// The local KSeF simulator.
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
    /// NIP (Polish tax identification number) tools.
    Nip {
        #[command(subcommand)]
        command: NipCommand,
    },
    /// KSeF number tools.
    #[command(name = "ksef-number")]
    KsefNumber {
        #[command(subcommand)]
        command: KsefNumberCommand,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell (bash, zsh, fish, powershell, elvish).
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
enum SimCommand {
    /// Serve the simulator until interrupted (Ctrl-C).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8787")]
        bind: std::net::SocketAddr,
        /// Seed for the simulator's random numbers (reproducible reference numbers).
        #[arg(long)]
        seed: Option<u64>,
        /// Scheme and host written into presigned URLs and UPO links.
        #[arg(long)]
        public_url: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum NipCommand {
    /// Check a NIP's format and checksum.
    Validate {
        /// The NIP, 10 digits.
        nip: String,
    },
    /// Print random valid NIPs (for test data).
    Generate {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 1)]
        count: u32,
    },
}

#[derive(Subcommand, Debug)]
enum KsefNumberCommand {
    /// Check a KSeF number's format and CRC-8 checksum.
    Validate {
        /// The KSeF number (35 characters, or a legacy 36-character one).
        number: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match cli.command {
        // Fast paths: no async runtime, no TLS, no keys.
        Command::Nip { command } => nip(command, cli.json),
        Command::KsefNumber { command } => ksef_number(command, cli.json),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "ksef", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Demo { out, nip } => run_async(demo::run(out, nip, cli.json)),
        Command::Sim { command } => match command {
            SimCommand::Serve {
                bind,
                seed,
                public_url,
            } => run_async(serve(bind, seed, public_url)),
        },
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KSEF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Run an async command on a fresh runtime; errors become one line on stderr.
fn run_async<F>(fut: F) -> ExitCode
where
    F: std::future::Future<Output = Result<(), CliError>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ksef: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ksef: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

/// An error to report on stderr with the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    /// Exit code.
    pub code: u8,
    /// One line saying what is wrong and what to do.
    pub message: String,
}

impl CliError {
    /// The operation failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_FAILED,
            message: message.into(),
        }
    }
    /// The input did not validate.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_INVALID_INPUT,
            message: message.into(),
        }
    }
}

async fn serve(
    bind: std::net::SocketAddr,
    seed: Option<u64>,
    public_url: Option<String>,
) -> Result<(), CliError> {
    let mut builder = ksef_sim::Simulator::builder().bind(bind);
    if let Some(seed) = seed {
        builder = builder.seed(seed);
    }
    if let Some(url) = public_url {
        builder = builder.public_url(url);
    }
    let sim = builder.start().await.map_err(|e| {
        CliError::failed(format!(
            "cannot start the simulator on {bind}: {e} (is the port in use? try --bind 127.0.0.1:0)"
        ))
    })?;
    eprintln!("ksef-sim listening; API base URL: {}", sim.base_url());
    eprintln!("press Ctrl-C to stop");
    println!("{}", sim.base_url());
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| CliError::failed(format!("cannot wait for Ctrl-C: {e}")))?;
    sim.shutdown().await;
    eprintln!("ksef-sim stopped");
    Ok(())
}

fn nip(command: NipCommand, json: bool) -> ExitCode {
    match command {
        NipCommand::Validate { nip } => match nip.parse::<Nip>() {
            Ok(n) => {
                if json {
                    println!("{}", serde_json::json!({"nip": n.as_str(), "valid": true}));
                } else {
                    println!("{n}: valid NIP");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"nip": nip, "valid": false, "error": e.to_string()})
                    );
                }
                eprintln!("ksef: {e}");
                ExitCode::from(EXIT_INVALID_INPUT)
            }
        },
        NipCommand::Generate { count } => {
            let nips: Vec<String> = (0..count)
                .map(|_| Nip::random(&mut rand::rng()).to_string())
                .collect();
            if json {
                println!("{}", serde_json::json!({ "nips": nips }));
            } else {
                for n in nips {
                    println!("{n}");
                }
            }
            ExitCode::SUCCESS
        }
    }
}

fn ksef_number(command: KsefNumberCommand, json: bool) -> ExitCode {
    let KsefNumberCommand::Validate { number } = command;
    match number.parse::<KsefNumber>() {
        Ok(k) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "ksefNumber": k.as_str(),
                        "valid": true,
                        "sellerNip": k.seller_nip().as_str(),
                        "date": k.date().to_string(),
                    })
                );
            } else {
                println!(
                    "{k}: valid KSeF number (seller NIP {}, {})",
                    k.seller_nip(),
                    k.date()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"ksefNumber": number, "valid": false, "error": e.to_string()})
                );
            }
            eprintln!("ksef: {e}");
            ExitCode::from(EXIT_INVALID_INPUT)
        }
    }
}
