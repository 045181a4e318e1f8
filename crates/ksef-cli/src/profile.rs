//! Named logins ("profiles"): one JSON file per profile under `<config dir>/profiles/`, created
//! with mode 0600 because it holds the access and refresh tokens.
//!
//! The config directory is `$KSEF_CONFIG_DIR` if set, else `$XDG_CONFIG_HOME/ksef`, else
//! `~/.config/ksef` (`%APPDATA%\ksef` on Windows). Three environment variables do not justify a
//! dependency on `dirs`, and `KSEF_CONFIG_DIR` must win anyway (tests, containers).

use std::path::{Path, PathBuf};

use ksef::model::{Environment, Nip};
use ksef::{AuthenticatedClient, KsefClient, SavedAuth};

use crate::error::{CliError, sdk};

/// What is stored per profile.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The environment: `test`, `demo`, `prod` or an API base URL.
    pub env: String,
    /// The context NIP the login acts for.
    pub nip: String,
    /// How the login was made (`xades`, `pkcs12`, `token`, `test-certificate`).
    pub method: String,
    /// The tokens (refreshed and re-saved as they are used).
    pub auth: SavedAuth,
}

/// The configuration directory.
pub fn config_dir() -> Result<PathBuf, CliError> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("KSEF_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(dir).join("ksef"));
    }
    if cfg!(windows)
        && let Some(dir) = var("APPDATA")
    {
        return Ok(PathBuf::from(dir).join("ksef"));
    }
    if let Some(home) = var("HOME") {
        return Ok(PathBuf::from(home).join(".config").join("ksef"));
    }
    Err(CliError::invalid(
        "cannot find a configuration directory: set KSEF_CONFIG_DIR (or HOME)",
    ))
}

/// The file of profile `name` (names are letters, digits, `-`, `_` and `.`, not starting with `.`).
pub fn profile_path(name: &str) -> Result<PathBuf, CliError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(CliError::invalid(format!(
            "invalid profile name {name:?}: use letters, digits, '-', '_' or '.'"
        )));
    }
    Ok(config_dir()?.join("profiles").join(format!("{name}.json")))
}

/// Names of all saved profiles, sorted.
pub fn list() -> Result<Vec<String>, CliError> {
    let dir = config_dir()?.join("profiles");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CliError::io("read", &dir, e)),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Loads profile `name`; exit code 4 when it does not exist.
pub fn load(name: &str) -> Result<Profile, CliError> {
    let path = profile_path(name)?;
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CliError::auth(format!(
                "no profile {name:?} (looked for {}): log in first with `ksef auth login --profile {name}`",
                path.display()
            )));
        }
        Err(e) => return Err(CliError::io("read", &path, e)),
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        CliError::auth(format!(
            "profile {name:?} ({}) is damaged ({e}): log in again with `ksef auth login --profile {name}`",
            path.display()
        ))
    })
}

/// Saves profile `name` atomically, the file readable by its owner only.
pub fn save(name: &str, profile: &Profile) -> Result<PathBuf, CliError> {
    let path = profile_path(name)?;
    let dir = path
        .parent()
        .ok_or_else(|| CliError::failed("profile path has no parent directory"))?;
    create_private_dir(dir)?;
    let json = serde_json::to_vec_pretty(profile)
        .map_err(|e| CliError::failed(format!("cannot serialise the profile: {e}")))?;
    let tmp = path.with_extension("json.tmp");
    write_private(&tmp, &json)?;
    std::fs::rename(&tmp, &path).map_err(|e| CliError::io("write", &path, e))?;
    Ok(path)
}

/// Deletes profile `name`; `false` if there was none.
pub fn delete(name: &str) -> Result<bool, CliError> {
    let path = profile_path(name)?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CliError::io("delete", &path, e)),
    }
}

fn create_private_dir(dir: &Path) -> Result<(), CliError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| CliError::io("create the directory", dir, e))
}

/// Writes `bytes` to a new file with mode 0600 (on Unix), replacing any old one.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| CliError::io("create", path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::io("write", path, e))
}

/// Parses `--env` (exit code 3 when unknown).
pub fn parse_env(s: &str) -> Result<Environment, CliError> {
    s.parse::<Environment>()
        .map_err(|e| CliError::invalid(format!("--env: {e}")))
}

/// A client for `env`, trusting `--ca-cert` (`KSEF_CA_CERT`) beside the system's roots.
pub fn client(env: &Environment, global: &crate::Global) -> Result<KsefClient, CliError> {
    let mut builder = KsefClient::builder(env.clone())
        .user_agent_suffix(concat!("ksef-cli/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &global.ca_cert {
        builder = builder.add_root_certificate_pem(read_ca_cert(path)?);
    }
    builder.build().map_err(sdk("creating the KSeF client"))
}

/// Reads `--ca-cert` and checks it holds a PEM certificate (exit code 3 otherwise).
fn read_ca_cert(path: &Path) -> Result<Vec<u8>, CliError> {
    let pem = std::fs::read(path)
        .map_err(|e| CliError::invalid(format!("--ca-cert {}: {e}", path.display())))?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(CliError::invalid(format!(
            "--ca-cert {}: not a PEM certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(pem)
}

/// Parses a NIP given on the command line.
pub fn parse_nip(flag: &str, s: &str) -> Result<Nip, CliError> {
    s.parse::<Nip>()
        .map_err(|e| CliError::invalid(format!("{flag}: {e}")))
}

/// A profile restored into a working, self-refreshing client.
pub struct LoggedIn {
    /// The profile name.
    pub name: String,
    /// The stored profile.
    pub profile: Profile,
    /// The authenticated client.
    pub auth: AuthenticatedClient,
}

impl LoggedIn {
    /// Loads profile `global.profile` and restores its login (no network call). `--env`, when
    /// given, must name the profile's environment.
    pub fn open(global: &crate::Global) -> Result<Self, CliError> {
        let name = global.profile.clone();
        // A bad --env is bad input (3), whatever the profile.
        let wanted = global.env.as_deref().map(parse_env).transpose()?;
        let profile = load(&name)?;
        let env = parse_env(&profile.env)?;
        if let Some(wanted) = wanted
            && wanted.api_base_url() != env.api_base_url()
        {
            return Err(CliError::auth(format!(
                "profile {name:?} is logged in to {env}, not {wanted}: log in with `ksef --env {wanted} auth login --profile {name}` or pick another --profile"
            )));
        }
        let client = client(&env, global)?;
        let auth = client
            .auth()
            .restore(profile.auth.clone())
            .map_err(|e| CliError::sdk(&format!("profile {name:?}"), e))?;
        Ok(Self {
            name,
            profile,
            auth,
        })
    }

    /// Writes the tokens back when they were refreshed while in use.
    pub async fn persist(&mut self) -> Result<(), CliError> {
        let now = self.auth.save().await;
        if now.access_valid_until != self.profile.auth.access_valid_until {
            self.profile.auth = now;
            save(&self.name, &self.profile)?;
        }
        Ok(())
    }
}
