//! `ksef auth login|status|refresh|logout|list`.

use std::io::Read as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use futures_util::TryStreamExt as _;
use ksef::TestIdentity;
use ksef::model::{ContextIdentifier, Environment};
use ksef::secrecy::SecretString;

use crate::Global;
use crate::error::{CliError, sdk};
use crate::profile::{self, LoggedIn, Profile};

/// `ksef auth …`.
#[derive(Subcommand, Debug)]
pub enum AuthCommand {
    /// Authenticate and save the tokens as a profile (`--profile`, default `default`).
    Login(LoginArgs),
    /// Show the saved login and check it against KSeF (`--offline`: saved data only).
    Status {
        /// Do not contact KSeF.
        #[arg(long)]
        offline: bool,
    },
    /// Refresh the access token now (it is also refreshed automatically when used).
    Refresh,
    /// Revoke the login at KSeF and delete the profile.
    Logout,
    /// List the saved profiles.
    List,
}

/// How to log in: exactly one of the credential kinds.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("method").required(true).args(["cert", "pkcs12", "token", "test_certificate"])))]
pub struct LoginArgs {
    /// The context (the taxpayer acted for) by NIP.
    #[arg(long)]
    pub nip: String,
    /// XAdES: the certificate file (PEM or DER); needs --key.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// XAdES: the private key file (PEM or DER; PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// XAdES: a PKCS#12 bundle (.p12/.pfx) with the certificate and key.
    #[arg(long, conflicts_with_all = ["cert", "key"])]
    pub pkcs12: Option<PathBuf>,
    /// The environment variable holding the key or PKCS#12 password (never a command-line
    /// argument: those show in `ps`).
    #[arg(long, value_name = "VAR")]
    pub key_password_env: Option<String>,
    /// A KSeF token: read from the variable named by --token-env (default KSEF_TOKEN) or,
    /// when that is unset, from the first line of stdin.
    #[arg(long)]
    pub token: bool,
    /// The environment variable --token reads.
    #[arg(long, value_name = "VAR", default_value = "KSEF_TOKEN")]
    pub token_env: String,
    /// TEST and simulators only: generate a self-signed seal certificate for --nip and log in
    /// with it.
    #[arg(long)]
    pub test_certificate: bool,
}

/// Runs `ksef auth …`.
pub async fn run(command: AuthCommand, g: Global) -> Result<(), CliError> {
    match command {
        AuthCommand::Login(args) => login(args, &g).await,
        AuthCommand::Status { offline } => status(&g, offline).await,
        AuthCommand::Refresh => refresh(&g).await,
        AuthCommand::Logout => logout(&g).await,
        AuthCommand::List => list(&g),
    }
}

fn password(var: Option<&str>) -> Result<Option<String>, CliError> {
    let Some(var) = var else { return Ok(None) };
    match std::env::var(var) {
        Ok(p) => Ok(Some(p)),
        Err(_) => Err(CliError::invalid(format!(
            "--key-password-env: the environment variable {var} is not set"
        ))),
    }
}

fn read_token(var: &str) -> Result<SecretString, CliError> {
    if let Ok(t) = std::env::var(var)
        && !t.trim().is_empty()
    {
        return Ok(SecretString::from(t.trim().to_owned()));
    }
    let mut input = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut input)
        .map_err(|e| CliError::invalid(format!("--token: cannot read stdin: {e}")))?;
    let token = input.lines().next().unwrap_or("").trim().to_owned();
    if token.is_empty() {
        return Err(CliError::invalid(format!(
            "--token: no KSeF token: set {var} or pipe the token on stdin"
        )));
    }
    Ok(SecretString::from(token))
}

fn read_file(flag: &str, path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::invalid(format!("{flag} {}: {e}", path.display())))
}

async fn login(args: LoginArgs, g: &Global) -> Result<(), CliError> {
    let env: Environment = profile::parse_env(g.env.as_deref().unwrap_or("test"))?;
    // Fail on a bad profile name before anything is sent.
    profile::profile_path(&g.profile)?;
    let nip = profile::parse_nip("--nip", &args.nip)?;
    let context = ContextIdentifier::Nip(nip.clone());
    let client = profile::client(&env, g)?;
    let password = password(args.key_password_env.as_deref())?;

    let (method, auth) = if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        // Read the files here for a clear message naming the flag.
        let cert_bytes = read_file("--cert", cert)?;
        let key_bytes = read_file("--key", key)?;
        let certificate = ksef::crypto::cert::Certificate::from_pem_or_der(&cert_bytes)
            .map_err(|e| CliError::invalid(format!("--cert {}: {e}", cert.display())))?;
        let private =
            ksef::crypto::keys::PrivateKey::from_pem_or_der(&key_bytes, password.as_deref())
                .map_err(|e| {
                    let hint = match e {
                        ksef::crypto::Error::PasswordRequired
                            if args.key_password_env.is_none() =>
                        {
                            " (name the variable holding the password with --key-password-env VAR)"
                        }
                        _ => "",
                    };
                    CliError::invalid(format!("--key {}: {e}{hint}", key.display()))
                })?;
        let signer = ksef::crypto::signer::InMemorySigner::new(private, certificate)
            .map_err(|e| CliError::invalid(format!("--cert/--key: {e}")))?;
        let auth = client
            .auth()
            .xades(&signer, context)
            .await
            .map_err(sdk("XAdES authentication"))?;
        ("xades", auth)
    } else if let Some(p12) = &args.pkcs12 {
        let bytes = read_file("--pkcs12", p12)?;
        let auth = client
            .auth()
            .xades_pkcs12(&bytes, password.as_deref().unwrap_or(""), context)
            .await
            .map_err(|e| {
                if matches!(e, ksef::Error::Crypto(_) | ksef::Error::Signer(_)) {
                    CliError::invalid(format!("--pkcs12 {}: {e}", p12.display()))
                } else {
                    CliError::sdk("XAdES authentication", e)
                }
            })?;
        ("pkcs12", auth)
    } else if args.token {
        let token = read_token(&args.token_env)?;
        let auth = client
            .auth()
            .ksef_token(&token, context)
            .await
            .map_err(sdk("KSeF-token authentication"))?;
        ("token", auth)
    } else {
        let identity = TestIdentity::Seal {
            name: format!("ksef-cli test seal {nip}"),
            nip: nip.to_string(),
        };
        let auth = client
            .auth()
            .test_certificate(&identity, context)
            .await
            .map_err(sdk("test-certificate authentication"))?;
        ("test-certificate", auth)
    };

    let saved = auth.save().await;
    let profile = Profile {
        env: env.to_string(),
        nip: nip.to_string(),
        method: method.to_owned(),
        auth: saved,
    };
    let path = profile::save(&g.profile, &profile)?;
    if g.json {
        println!("{}", status_json(&g.profile, &profile, None));
    } else {
        println!(
            "logged in to {env} as NIP {nip} ({method}); profile {:?} saved to {}",
            g.profile,
            path.display()
        );
    }
    Ok(())
}

fn status_json(name: &str, p: &Profile, current: Option<bool>) -> serde_json::Value {
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let mut v = serde_json::json!({
        "profile": name,
        "env": p.env,
        "nip": p.nip,
        "method": p.method,
        "referenceNumber": p.auth.reference_number.to_string(),
        "accessValidUntil": fmt(p.auth.access_valid_until),
        "refreshValidUntil": fmt(p.auth.refresh_valid_until),
    });
    if let Some(active) = current {
        v["active"] = serde_json::Value::Bool(active);
    }
    v
}

async fn status(g: &Global, offline: bool) -> Result<(), CliError> {
    if offline {
        let p = profile::load(&g.profile)?;
        print_status(g, &p, None);
        return Ok(());
    }
    let mut li = LoggedIn::open(g)?;
    let reference = li.auth.reference_number().clone();
    let result = async {
        let sessions: Vec<_> = li
            .auth
            .auth_sessions()
            .try_collect()
            .await
            .map_err(sdk("listing the authentication sessions"))?;
        Ok::<_, CliError>(
            sessions
                .iter()
                .any(|s| s.is_current == Some(true) || s.reference_number == reference),
        )
    }
    .await;
    li.persist().await?;
    let active = result?;
    print_status(g, &li.profile, Some(active));
    if !active {
        return Err(CliError::auth(format!(
            "the login of profile {:?} is no longer active at KSeF: log in again",
            g.profile
        )));
    }
    Ok(())
}

fn print_status(g: &Global, p: &Profile, active: Option<bool>) {
    if g.json {
        println!("{}", status_json(&g.profile, p, active));
        return;
    }
    println!("profile:        {}", g.profile);
    println!("environment:    {}", p.env);
    println!("NIP:            {}", p.nip);
    println!("method:         {}", p.method);
    println!("reference:      {}", p.auth.reference_number);
    println!("access until:   {}", p.auth.access_valid_until);
    println!("refresh until:  {}", p.auth.refresh_valid_until);
    if let Some(a) = active {
        println!("active at KSeF: {}", if a { "yes" } else { "no" });
    }
}

async fn refresh(g: &Global) -> Result<(), CliError> {
    let mut li = LoggedIn::open(g)?;
    li.auth
        .refresh()
        .await
        .map_err(sdk("refreshing the access token"))?;
    li.persist().await?;
    print_status(g, &li.profile, None);
    Ok(())
}

async fn logout(g: &Global) -> Result<(), CliError> {
    let revoked = match LoggedIn::open(g) {
        Ok(li) => match li.auth.clone().revoke().await {
            Ok(()) => true,
            // An expired or revoked login is logged out anyway; an unreachable KSeF is not.
            Err(e) if crate::error::exit_code(&e) == crate::error::EXIT_AUTH => false,
            Err(e) => return Err(CliError::sdk("revoking the login", e)),
        },
        Err(e) if e.code == crate::error::EXIT_AUTH && profile::load(&g.profile).is_ok() => false,
        Err(e) => return Err(e),
    };
    profile::delete(&g.profile)?;
    if g.json {
        println!(
            "{}",
            serde_json::json!({"profile": g.profile, "loggedOut": true, "revoked": revoked})
        );
    } else if revoked {
        println!(
            "logged out: the session was revoked and profile {:?} deleted",
            g.profile
        );
    } else {
        println!(
            "profile {:?} deleted (its login had already expired or been revoked)",
            g.profile
        );
    }
    Ok(())
}

fn list(g: &Global) -> Result<(), CliError> {
    let names = profile::list()?;
    if g.json {
        let items: Vec<_> = names
            .iter()
            .map(|n| match profile::load(n) {
                Ok(p) => serde_json::json!({"profile": n, "env": p.env, "nip": p.nip}),
                Err(_) => serde_json::json!({"profile": n, "damaged": true}),
            })
            .collect();
        println!("{}", serde_json::json!({ "profiles": items }));
    } else {
        for n in names {
            match profile::load(&n) {
                Ok(p) => println!("{n}\t{}\tNIP {}", p.env, p.nip),
                Err(_) => println!("{n}\t(damaged)"),
            }
        }
    }
    Ok(())
}
