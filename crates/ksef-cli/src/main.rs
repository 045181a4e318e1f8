#![doc = include_str!("../README.md")]
// A command-line program prints to its user: stdout for results, stderr for progress and errors.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod auth_cmd;
mod batch_cmd;
mod cert_cmd;
mod collective_cmd;
mod demo;
mod enroll_cmd;
mod error;
mod export_cmd;
mod permission_cmd;
mod profile;
mod qr_cmd;
mod retrieval_cmd;
mod send_cmd;
mod sync_cmd;
mod token_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use ksef_model::{KsefNumber, Nip};

pub use error::{CliError, EXIT_FAILED, EXIT_INVALID_INPUT};

#[derive(Parser, Debug)]
#[command(
    name = "ksef",
    version,
    about = "KSeF 2.0 from the shell: log in, send invoices, UPO, QR codes, certificates, a local simulator",
    after_help = "Exit codes: 0 success, 1 operation failed, 2 usage error, 3 invalid input \
(bad NIP, unreadable file or key, wrong password), 4 authentication needed (unknown profile, \
expired or revoked login), 5 KSeF unreachable."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand accepts.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Machine-readable JSON on stdout (progress and logs go to stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// Log output on stderr (-v info, -vv debug, -vvv trace; KSEF_LOG takes an env-filter).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// KSeF environment: test, demo, prod or an API base URL (e.g. a simulator's
    /// http://127.0.0.1:8787/v2). Default: the profile's, else test.
    #[arg(long, global = true, env = "KSEF_ENV")]
    pub env: Option<String>,
    /// The saved login to use (see `ksef auth login`).
    #[arg(long, global = true, env = "KSEF_PROFILE", default_value = "default")]
    pub profile: String,
    /// Also trust this PEM certificate (or bundle) for HTTPS: a private CA, or the certificate
    /// `ksef sim serve --tls` writes.
    #[arg(long, global = true, env = "KSEF_CA_CERT", value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the whole seed flow against an embedded simulator: test data, test certificate, XAdES
    /// authentication, online FA(3) session, send, KSeF number, UPO, close.
    Demo {
        /// Directory the UPO receipts are written to.
        #[arg(long, default_value = "ksef-demo")]
        out: PathBuf,
        /// The NIP to act for (a random valid one by default).
        #[arg(long)]
        nip: Option<String>,
    },
    /// Log in and out; logins are kept as named profiles.
    Auth {
        #[command(subcommand)]
        command: auth_cmd::AuthCommand,
    },
    /// Send invoice files in one online session; prints the KSeF number of each.
    Send(send_cmd::SendArgs),
    /// The status of a session, or of one invoice in it.
    Status(send_cmd::StatusArgs),
    /// Download a UPO: of one invoice (by KSeF number or reference) or of a whole session.
    Upo(send_cmd::UpoArgs),
    /// Download invoices (XML) by KSeF number.
    Download(retrieval_cmd::DownloadArgs),
    /// Query invoice metadata; the filters are flags.
    Query(retrieval_cmd::QueryArgs),
    /// KSeF tokens of the logged-in context: generate, list, status, revoke.
    Token {
        #[command(subcommand)]
        command: token_cmd::TokenCommand,
    },
    /// Collective identifiers (identyfikatory zbiorcze): one number for up to 500 invoices of
    /// one seller, e.g. to pay them with one transfer.
    Collective {
        #[command(subcommand)]
        command: collective_cmd::CollectiveCommand,
    },
    /// Export invoices as a package (encrypted parts, decrypted and unpacked into a directory).
    Export(export_cmd::ExportArgs),
    /// Keep a directory in sync with KSeF: incremental and restartable (high-water mark).
    Sync(sync_cmd::SyncArgs),
    /// Persons' permissions in the logged-in context: grant, list, revoke.
    Permission {
        #[command(subcommand)]
        command: permission_cmd::PermissionCommand,
    },
    /// Offline QR codes: KOD I (invoice) and KOD II (issuer certificate) as SVG or PNG.
    Qr {
        #[command(subcommand)]
        command: qr_cmd::QrCommand,
    },
    /// Certificates: self-signed test certificates and certificate signing requests.
    Cert {
        #[command(subcommand)]
        command: cert_cmd::CertCommand,
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
        /// Do not enforce KSeF's API rate limits (load tests, fast polling).
        #[arg(long)]
        no_rate_limits: bool,
        /// Serve HTTPS with a self-signed certificate generated at start.
        #[arg(long)]
        tls: bool,
        /// With --tls: write the certificate (PEM) here, for clients to trust with `--ca-cert`
        /// (default: ksef-sim-PORT.pem in the temporary directory; the path is printed).
        #[arg(long, requires = "tls", value_name = "PATH")]
        tls_cert_out: Option<std::path::PathBuf>,
        /// Keep the state (keys, test data, sessions, invoices, UPOs…) in DIR/ksef-sim.sqlite3
        /// across restarts; without it the state lives in memory only.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<std::path::PathBuf>,
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
    let g = cli.global;
    match cli.command {
        // Fast paths: no logging set-up, no async runtime, no TLS, no keys.
        Command::Nip { command } => nip(command, g.json),
        Command::KsefNumber { command } => ksef_number(command, g.json),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "ksef", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Cert {
            command: cert_cmd::CertCommand::Enroll(args),
        } => {
            init_logging(g.verbose);
            run_async(enroll_cmd::enroll(args, g))
        }
        Command::Collective {
            command: collective_cmd::CollectiveCommand::Validate { id },
        } => report(collective_cmd::validate(&id, g.json)),
        Command::Cert { command } => report(cert_cmd::run(command, &g)),
        Command::Qr { command } => report(qr_cmd::run(command, &g)),
        command => {
            init_logging(g.verbose);
            match command {
                Command::Demo { out, nip } => run_async(demo::run(out, nip, g.json)),
                Command::Auth { command } => run_async(auth_cmd::run(command, g)),
                Command::Send(args) => run_async(send_cmd::send(args, g)),
                Command::Status(args) => run_async(send_cmd::status(args, g)),
                Command::Upo(args) => run_async(send_cmd::upo(args, g)),
                Command::Token { command } => run_async(token_cmd::run(command, g)),
                Command::Collective { command } => run_async(collective_cmd::run(command, g)),
                Command::Export(args) => run_async(export_cmd::export(args, g)),
                Command::Sync(args) => run_async(sync_cmd::sync(args, g)),
                Command::Permission { command } => run_async(permission_cmd::run(command, g)),
                Command::Download(args) => run_async(retrieval_cmd::download(args, g)),
                Command::Query(args) => run_async(retrieval_cmd::query(args, g)),
                Command::Sim { command } => match command {
                    SimCommand::Serve {
                        bind,
                        seed,
                        public_url,
                        no_rate_limits,
                        tls,
                        tls_cert_out,
                        state_dir,
                    } => run_async(serve(
                        bind,
                        seed,
                        public_url,
                        no_rate_limits,
                        tls.then_some(tls_cert_out),
                        state_dir,
                    )),
                },
                Command::Nip { .. }
                | Command::KsefNumber { .. }
                | Command::Completions { .. }
                | Command::Cert { .. }
                | Command::Qr { .. } => ExitCode::SUCCESS,
            }
        }
    }
}

fn init_logging(verbose: u8) {
    // Without -v, stderr carries only the one-line error (retries and warnings need -v).
    let level = match verbose {
        0 => "off",
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

/// Reports a synchronous command's outcome: errors become one line on stderr.
fn report(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ksef: {}", e.message);
            ExitCode::from(e.code)
        }
    }
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
    report(runtime.block_on(fut))
}

async fn serve(
    bind: std::net::SocketAddr,
    seed: Option<u64>,
    public_url: Option<String>,
    no_rate_limits: bool,
    tls: Option<Option<std::path::PathBuf>>,
    state_dir: Option<std::path::PathBuf>,
) -> Result<(), CliError> {
    let mut builder = ksef_sim::Simulator::builder()
        .bind(bind)
        .rate_limits(!no_rate_limits);
    if let Some(dir) = state_dir {
        builder = builder.state_dir(dir);
    }
    if let Some(seed) = seed {
        builder = builder.seed(seed);
    }
    if let Some(url) = public_url {
        builder = builder.public_url(url);
    }
    if tls.is_some() {
        builder = builder.tls();
    }
    let stop = Stop::listen()?;
    let sim = builder.start().await.map_err(|e| match e {
        ksef_sim::SimError::StateDir(e) => {
            CliError::failed(format!("cannot start the simulator: {e}"))
        }
        e => CliError::failed(format!(
            "cannot start the simulator on {bind}: {e} (is the port in use? try --bind 127.0.0.1:0)"
        )),
    })?;
    if let (Some(out), Some(pem)) = (&tls, sim.tls_certificate_pem()) {
        let path = out.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("ksef-sim-{}.pem", sim.local_addr().port()))
        });
        std::fs::write(&path, pem).map_err(|e| CliError::io("write", &path, e))?;
        eprintln!(
            "TLS certificate written to {p}; clients trust it with --ca-cert {p} (or KSEF_CA_CERT={p})",
            p = path.display()
        );
    }
    eprintln!("ksef-sim listening; API base URL: {}", sim.base_url());
    eprintln!("press Ctrl-C to stop");
    println!("{}", sim.base_url());
    stop.wait().await?;
    sim.shutdown().await;
    eprintln!("ksef-sim stopped");
    Ok(())
}

/// Ctrl-C (SIGINT) or, on Unix, SIGTERM; listening starts when this is built, so a signal
/// that arrives before [`Stop::wait`] is not lost.
struct Stop {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Stop {
    fn listen() -> Result<Self, CliError> {
        Ok(Self {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|e| CliError::failed(format!("cannot wait for SIGTERM: {e}")))?,
        })
    }

    async fn wait(mut self) -> Result<(), CliError> {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            tokio::select! {
                r = ctrl_c => r.map_err(|e| CliError::failed(format!("cannot wait for Ctrl-C: {e}"))),
                _ = self.term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            ctrl_c
                .await
                .map_err(|e| CliError::failed(format!("cannot wait for Ctrl-C: {e}")))
        }
    }
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
