//! The CLI's one error: a line for stderr and the exit code it maps to.

/// Exit code: the operation failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: the input did not validate (bad identifier, unreadable file or key, wrong password).
pub const EXIT_INVALID_INPUT: u8 = 3;
/// Exit code: authentication needed (unknown profile, expired or revoked login).
pub const EXIT_AUTH: u8 = 4;
/// Exit code: KSeF could not be reached.
pub const EXIT_UNREACHABLE: u8 = 5;

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

    /// Authentication is needed.
    pub fn auth(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_AUTH,
            message: message.into(),
        }
    }

    /// An SDK error while doing `what`, with the exit code its kind maps to.
    pub fn sdk(what: &str, e: ksef::Error) -> Self {
        let code = exit_code(&e);
        let mut message = format!("{what}: {e}");
        if code == EXIT_AUTH && !message.contains("ksef auth login") {
            message.push_str(" (log in again: ksef auth login)");
        }
        if let ksef::Error::Transport(ksef::transport::Error::Tls { .. }) = &e {
            message.push_str(
                " (a server with a private or self-signed certificate, such as `ksef sim serve \
                 --tls`: trust it with --ca-cert PEM or KSEF_CA_CERT)",
            );
        }
        Self { code, message }
    }

    /// A local I/O error on `path` while doing `what`.
    pub fn io(what: &str, path: &std::path::Path, e: std::io::Error) -> Self {
        Self::invalid(format!("cannot {what} {}: {e}", path.display()))
    }
}

/// `map_err` helper: `.map_err(sdk("sending the invoice"))`.
pub fn sdk(what: &str) -> impl Fn(ksef::Error) -> CliError + '_ {
    move |e| CliError::sdk(what, e)
}

/// The exit code an SDK error maps to.
pub fn exit_code(e: &ksef::Error) -> u8 {
    use ksef::Error as E;
    use ksef::crypto::Error as C;
    use ksef::transport::Error as T;
    match e {
        E::Transport(t) => match t {
            T::Connect { .. } | T::Timeout { .. } | T::Tls { .. } => EXIT_UNREACHABLE,
            _ if t.status() == Some(401) => EXIT_AUTH,
            _ => EXIT_FAILED,
        },
        E::SavedStateUnusable(_) => EXIT_AUTH,
        E::Crypto(
            C::InvalidCertificate(_)
            | C::InvalidKey(_)
            | C::WrongPassword(_)
            | C::PasswordRequired
            | C::InvalidPkcs12(_)
            | C::UnsupportedAlgorithm(_)
            | C::KeyMismatch
            | C::InvalidCsr(_)
            | C::InvalidInput(_),
        ) => EXIT_INVALID_INPUT,
        E::Signer(_) | E::Id(_) | E::InvalidInput(_) | E::Io { .. } | E::TestOnly { .. } => {
            EXIT_INVALID_INPUT
        }
        _ => EXIT_FAILED,
    }
}
