//! `ksef-sim --bind ADDR [--state-dir DIR] [--seed N] [--public-url URL] [--tls
//! [--tls-cert-out FILE]] [--faults PLAN.json] [--no-rate-limits]`: runs the simulator until
//! Ctrl-C or (on Unix) SIGTERM, then shuts down gracefully (in-flight requests finish, the
//! state directory is flushed) and exits 0.

// A command-line tool reports on stdout/stderr by design.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::process::ExitCode;

const USAGE: &str = "usage: ksef-sim [--bind ADDR] [--state-dir DIR] [--seed N] [--public-url URL] [--tls [--tls-cert-out FILE]] [--faults PLAN.json] [--no-rate-limits]\n  \
--bind ADDR          listen address (default 127.0.0.1:8787)\n  \
--state-dir DIR      keep the state in DIR/ksef-sim.sqlite3 across restarts (default: memory)\n  \
--seed N             seed reference and KSeF numbers (reproducible runs)\n  \
--public-url URL     scheme and host written into presigned URLs and UPO links\n  \
--tls                serve HTTPS with a self-signed certificate generated at start\n  \
--tls-cert-out FILE  write that certificate (PEM) to FILE for clients to trust\n  \
--faults PLAN.json   inject faults (see ksef_sim::faults; also PUT /__sim/faults)\n  \
--no-rate-limits     do not enforce KSeF's API rate limits (load tests)";

/// Options that are not builder settings.
#[derive(Default)]
struct Extra {
    tls_cert_out: Option<String>,
}

fn parse() -> Result<(ksef_sim::SimulatorBuilder, Extra), String> {
    let mut extra = Extra::default();
    let mut builder = ksef_sim::Simulator::builder();
    let mut bind: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8787));
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--bind" => {
                let v = value("--bind")?;
                bind = v
                    .parse()
                    .map_err(|e| format!("--bind {v}: {e} (expected e.g. 127.0.0.1:8787)"))?;
            }
            "--seed" => {
                let v = value("--seed")?;
                builder = builder.seed(v.parse().map_err(|e| format!("--seed {v}: {e}"))?);
            }
            "--public-url" => {
                let v = value("--public-url")?;
                if !(v.starts_with("http://") || v.starts_with("https://")) {
                    return Err(format!(
                        "--public-url {v}: must start with http:// or https://"
                    ));
                }
                builder = builder.public_url(v);
            }
            "--state-dir" => builder = builder.state_dir(value("--state-dir")?),
            "--no-rate-limits" => builder = builder.rate_limits(false),
            "--tls" => builder = builder.tls(),
            "--tls-cert-out" => extra.tls_cert_out = Some(value("--tls-cert-out")?),
            "--faults" => {
                let v = value("--faults")?;
                let bytes = std::fs::read(&v).map_err(|e| format!("--faults {v}: {e}"))?;
                let plan: ksef_sim::faults::FaultPlan = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("--faults {v}: not a fault plan: {e}"))?;
                plan.validate().map_err(|e| format!("--faults {v}: {e}"))?;
                builder = builder.faults(plan);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if extra.tls_cert_out.is_some() && !std::env::args().any(|a| a == "--tls") {
        return Err("--tls-cert-out needs --tls".into());
    }
    Ok((builder.bind(bind), extra))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (builder, extra) = match parse() {
        Ok(b) => b,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("ksef-sim: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let sim = match builder.start().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ksef-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let (Some(path), Some(pem)) = (&extra.tls_cert_out, sim.tls_certificate_pem())
        && let Err(e) = std::fs::write(path, pem)
    {
        eprintln!("ksef-sim: cannot write the certificate to {path}: {e}");
        return ExitCode::FAILURE;
    }
    // Listen for SIGTERM before announcing the address, so a signal sent right after the
    // announcement is not lost.
    #[cfg(unix)]
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ksef-sim: cannot wait for SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("ksef-sim listening on {}", sim.base_url());
    #[cfg(unix)]
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    println!("ksef-sim shutting down");
    sim.shutdown().await;
    ExitCode::SUCCESS
}
