//! Bearer tokens as distinct types, so that a call cannot be given the wrong one.
//!
//! KSeF uses three different bearer tokens (ksef-api.md §20.5):
//! - [`AuthenticationToken`] — the operation token returned by `POST /auth/xades-signature` or
//!   `POST /auth/ksef-token`; used for `GET /auth/{referenceNumber}` and `POST /auth/token/redeem`;
//! - [`RefreshToken`] — used for `POST /auth/token/refresh` (and optionally
//!   `DELETE /auth/sessions/current`);
//! - [`AccessToken`] — used for everything else.
//!
//! Each generated call takes exactly the token type its operation needs; the one operation that
//! takes either an access or a refresh token takes an [`AccessOrRefreshToken`] (anything that
//! converts into it).
//!
//! Tokens are secrets: `Debug` is redacted, they are never logged, and the `Authorization` header
//! built from them is marked sensitive.

use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

macro_rules! token_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps the token string exactly as KSeF returned it (a JWT).
            pub fn new(token: impl Into<String>) -> Self {
                Self(SecretString::from(token.into()))
            }

            /// The token itself. Handle with care: never log or print it.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }

            pub(crate) fn header_value(&self) -> Option<HeaderValue> {
                bearer_header(self.0.expose_secret())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!($what, "([REDACTED])"))
            }
        }

        impl From<String> for $name {
            fn from(token: String) -> Self {
                Self::new(token)
            }
        }

        impl From<&str> for $name {
            fn from(token: &str) -> Self {
                Self::new(token)
            }
        }
    };
}

token_type!(
    /// The authentication-operation token (`authenticationToken`) returned when an authentication
    /// is started. Valid for `GET /auth/{referenceNumber}` and `POST /auth/token/redeem` only.
    AuthenticationToken,
    "AuthenticationToken"
);
token_type!(
    /// The refresh token returned by `POST /auth/token/redeem`. Valid for
    /// `POST /auth/token/refresh` and `DELETE /auth/sessions/current` only.
    RefreshToken,
    "RefreshToken"
);
token_type!(
    /// The access token returned by `POST /auth/token/redeem` or `POST /auth/token/refresh`.
    /// Valid for every protected operation except the authentication ones.
    AccessToken,
    "AccessToken"
);

/// Any of the token types (sealed): what [`Transport::bearer_of`](crate::Transport::bearer_of)
/// accepts.
pub trait Bearer: sealed::Sealed {
    /// `Bearer <token>`, sensitive; `None` if the token cannot appear in a header.
    #[doc(hidden)]
    fn header_value(&self) -> Option<HeaderValue>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for &super::AuthenticationToken {}
    impl Sealed for &super::RefreshToken {}
    impl Sealed for &super::AccessToken {}
    impl Sealed for super::AccessOrRefreshToken<'_> {}
}

impl Bearer for &AuthenticationToken {
    fn header_value(&self) -> Option<HeaderValue> {
        AuthenticationToken::header_value(self)
    }
}
impl Bearer for &RefreshToken {
    fn header_value(&self) -> Option<HeaderValue> {
        RefreshToken::header_value(self)
    }
}
impl Bearer for &AccessToken {
    fn header_value(&self) -> Option<HeaderValue> {
        AccessToken::header_value(self)
    }
}
impl Bearer for AccessOrRefreshToken<'_> {
    fn header_value(&self) -> Option<HeaderValue> {
        AccessOrRefreshToken::header_value(self)
    }
}

/// What the one operation taking either token accepts: `&AccessToken`, `&RefreshToken` or an
/// [`AccessOrRefreshToken`]. Sealed; an [`AuthenticationToken`] does not qualify:
///
/// ```compile_fail
/// # async fn f(t: &ksef_transport::Transport, auth: &ksef_transport::AuthenticationToken) {
/// t.revoke_current_auth_session(auth).await;
/// # }
/// ```
pub trait AccessOrRefresh: Bearer {}
impl AccessOrRefresh for &AccessToken {}
impl AccessOrRefresh for &RefreshToken {}
impl AccessOrRefresh for AccessOrRefreshToken<'_> {}

/// Either an access token or a refresh token, for the one operation that accepts both
/// (`DELETE /auth/sessions/current`). Built with `From`, so callers pass `&access` or `&refresh`.
#[derive(Clone, Copy, Debug)]
pub enum AccessOrRefreshToken<'a> {
    /// An access token.
    Access(&'a AccessToken),
    /// A refresh token.
    Refresh(&'a RefreshToken),
}

impl AccessOrRefreshToken<'_> {
    pub(crate) fn header_value(&self) -> Option<HeaderValue> {
        match self {
            Self::Access(t) => t.header_value(),
            Self::Refresh(t) => t.header_value(),
        }
    }
}

impl<'a> From<&'a AccessToken> for AccessOrRefreshToken<'a> {
    fn from(token: &'a AccessToken) -> Self {
        Self::Access(token)
    }
}

impl<'a> From<&'a RefreshToken> for AccessOrRefreshToken<'a> {
    fn from(token: &'a RefreshToken) -> Self {
        Self::Refresh(token)
    }
}

/// `Bearer <token>` as a sensitive header value; `None` when the token holds bytes that cannot
/// appear in a header (the caller reports that as an error without echoing the token).
fn bearer_header(token: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::try_from(format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let t = AccessToken::new("eyJhbGciOi.secret.part");
        let s = format!("{t:?}");
        assert_eq!(s, "AccessToken([REDACTED])");
        assert!(!format!("{:?}", RefreshToken::new("abc")).contains("abc"));
        assert!(!format!("{:?}", AuthenticationToken::new("abc")).contains("abc"));
        let either = AccessOrRefreshToken::from(&t);
        assert!(!format!("{either:?}").contains("secret"));
    }

    #[test]
    fn header_is_bearer_and_sensitive() {
        let t = AccessToken::new("abc.def");
        let h = t.header_value().unwrap();
        assert_eq!(h.to_str().unwrap(), "Bearer abc.def");
        assert!(h.is_sensitive());
        assert!(AccessToken::new("bad\ntoken").header_value().is_none());
        let r = RefreshToken::new("r");
        assert_eq!(
            AccessOrRefreshToken::from(&r)
                .header_value()
                .unwrap()
                .to_str()
                .unwrap(),
            "Bearer r"
        );
    }
}
