//! KSeF environments with their API and QR-verification base URLs.
//!
//! ```
//! use ksef_model::environment::Environment;
//! let env: Environment = "test".parse()?;
//! assert_eq!(env.api_base_url(), "https://api-test.ksef.mf.gov.pl/v2");
//! assert_eq!(env.qr_base_url(), "https://qr-test.ksef.mf.gov.pl");
//! assert!(env.is_test());
//! let sim: Environment = "http://127.0.0.1:8080/v2/".parse()?;
//! assert_eq!(sim.api_base_url(), "http://127.0.0.1:8080/v2");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;

/// A KSeF environment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Environment {
    /// TEST ("TE", release candidate): self-signed certificates accepted, NIP checksums not
    /// verified, `/testdata` endpoints available, data shared between integrators.
    Test,
    /// DEMO ("TR", pre-production): production configuration without legal effect.
    Demo,
    /// PRODUCTION ("PRD"): invoices have legal effect.
    Production,
    /// Any other deployment, e.g. the local simulator.
    Custom {
        /// API base URL including the version path (e.g. `http://127.0.0.1:8080/v2`), no
        /// trailing slash.
        api_base_url: String,
        /// Base URL of QR verification links (KOD I / KOD II), no trailing slash.
        qr_base_url: String,
    },
}

impl Environment {
    /// A custom environment; trailing slashes are removed.
    pub fn custom(api_base_url: &str, qr_base_url: &str) -> Self {
        Environment::Custom {
            api_base_url: api_base_url.trim_end_matches('/').to_owned(),
            qr_base_url: qr_base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The API base URL (endpoint paths such as `/auth/challenge` are appended to it).
    pub fn api_base_url(&self) -> &str {
        match self {
            Environment::Test => "https://api-test.ksef.mf.gov.pl/v2",
            Environment::Demo => "https://api-demo.ksef.mf.gov.pl/v2",
            Environment::Production => "https://api.ksef.mf.gov.pl/v2",
            Environment::Custom { api_base_url, .. } => api_base_url,
        }
    }

    /// The base URL of QR-code verification links.
    pub fn qr_base_url(&self) -> &str {
        match self {
            Environment::Test => "https://qr-test.ksef.mf.gov.pl",
            Environment::Demo => "https://qr-demo.ksef.mf.gov.pl",
            Environment::Production => "https://qr.ksef.mf.gov.pl",
            Environment::Custom { qr_base_url, .. } => qr_base_url,
        }
    }

    /// Whether this environment has TEST semantics (lenient NIP checksums, `/testdata`
    /// endpoints, self-signed certificates). True for [`Environment::Test`] and for custom
    /// environments, which are assumed to be simulators or test proxies.
    pub fn is_test(&self) -> bool {
        matches!(self, Environment::Test | Environment::Custom { .. })
    }

    /// Whether invoices sent here have legal effect.
    pub fn is_production(&self) -> bool {
        matches!(self, Environment::Production)
    }

    /// Short name: `test`, `demo`, `prod` or `custom`.
    pub fn name(&self) -> &'static str {
        match self {
            Environment::Test => "test",
            Environment::Demo => "demo",
            Environment::Production => "prod",
            Environment::Custom { .. } => "custom",
        }
    }
}

impl fmt::Display for Environment {
    /// The short name, or the API base URL of a custom environment (round-trips via `FromStr`
    /// except for a custom QR base URL).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Environment::Custom { api_base_url, .. } => f.write_str(api_base_url),
            other => f.write_str(other.name()),
        }
    }
}

/// An unrecognised environment name given to [`Environment::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown KSeF environment {0:?}: expected test, demo, prod or an http(s):// API base URL")]
pub struct UnknownEnvironment(pub String);

impl FromStr for Environment {
    type Err = UnknownEnvironment;

    /// Accepts `test`/`te`, `demo`/`tr`/`preprod`, `prod`/`production`/`prd` (case-insensitive),
    /// or an `http://`/`https://` URL. A URL equal to a known environment's API base URL maps to
    /// that environment; any other URL becomes [`Environment::Custom`] whose QR base URL is the
    /// API URL without a trailing `/v2` (the simulator serves both).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        match t.to_ascii_lowercase().as_str() {
            "test" | "te" => return Ok(Environment::Test),
            "demo" | "tr" | "preprod" => return Ok(Environment::Demo),
            "prod" | "production" | "prd" => return Ok(Environment::Production),
            _ => {}
        }
        let lower = t.to_ascii_lowercase();
        let has_host = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
        if !has_host || t.contains(char::is_whitespace) {
            return Err(UnknownEnvironment(s.to_owned()));
        }
        let api = t.trim_end_matches('/');
        for known in [
            Environment::Test,
            Environment::Demo,
            Environment::Production,
        ] {
            if known.api_base_url().eq_ignore_ascii_case(api) {
                return Ok(known);
            }
        }
        let qr = api.strip_suffix("/v2").unwrap_or(api);
        Ok(Environment::custom(api, qr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_urls() {
        assert_eq!(
            Environment::Demo.api_base_url(),
            "https://api-demo.ksef.mf.gov.pl/v2"
        );
        assert_eq!(
            Environment::Production.api_base_url(),
            "https://api.ksef.mf.gov.pl/v2"
        );
        assert_eq!(
            Environment::Demo.qr_base_url(),
            "https://qr-demo.ksef.mf.gov.pl"
        );
        assert_eq!(
            Environment::Production.qr_base_url(),
            "https://qr.ksef.mf.gov.pl"
        );
        assert!(!Environment::Production.is_test());
        assert!(!Environment::Demo.is_test());
        assert!(Environment::Production.is_production());
    }

    #[test]
    fn parse() {
        for (s, e) in [
            ("test", Environment::Test),
            ("TEST", Environment::Test),
            ("demo", Environment::Demo),
            ("prod", Environment::Production),
            ("production", Environment::Production),
            ("https://api.ksef.mf.gov.pl/v2/", Environment::Production),
        ] {
            assert_eq!(s.parse::<Environment>().unwrap(), e, "{s}");
        }
        let c: Environment = "http://localhost:3000/v2".parse().unwrap();
        assert_eq!(c.api_base_url(), "http://localhost:3000/v2");
        assert_eq!(c.qr_base_url(), "http://localhost:3000");
        assert!(c.is_test());
        assert_eq!(c.to_string().parse::<Environment>().unwrap(), c);
        for bad in ["", "staging", "ftp://x", "http://", "http:// x"] {
            assert!(bad.parse::<Environment>().is_err(), "{bad}");
        }
        for e in [
            Environment::Test,
            Environment::Demo,
            Environment::Production,
        ] {
            assert_eq!(e.to_string().parse::<Environment>().unwrap(), e);
        }
    }
}
