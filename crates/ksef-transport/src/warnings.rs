//! `X-System-Warning` response headers.
//!
//! Format (ksef-api.md §2): `[code]: message | [code]: message`, ASCII-folded. Every success
//! response may carry one; the transport parses it, logs it through `tracing` at WARN and hands
//! it back on the [`Response`](crate::Response).

/// One warning from an `X-System-Warning` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemWarning {
    /// The code between the square brackets (kept as text: KSeF does not promise numbers).
    pub code: String,
    /// The message after `: `, trimmed.
    pub message: String,
}

impl std::fmt::Display for SystemWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}]: {}", self.code, self.message)
    }
}

/// Parses one `X-System-Warning` header value into its warnings.
///
/// Pieces that do not follow `[code]: message` are kept whole with an empty code, so nothing
/// the server says is lost.
pub fn parse_system_warnings(header: &str) -> Vec<SystemWarning> {
    header
        .split('|')
        .map(str::trim)
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            if let Some(rest) = piece.strip_prefix('[')
                && let Some((code, message)) = rest.split_once(']')
            {
                let message = message.trim_start();
                let message = message.strip_prefix(':').unwrap_or(message);
                return SystemWarning {
                    code: code.trim().to_owned(),
                    message: message.trim().to_owned(),
                };
            }
            SystemWarning {
                code: String::new(),
                message: piece.to_owned(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_several() {
        let w = parse_system_warnings(
            "[W001]: Planned maintenance at 16:00 | [W2]: Deprecated field used",
        );
        assert_eq!(
            w,
            vec![
                SystemWarning {
                    code: "W001".into(),
                    message: "Planned maintenance at 16:00".into()
                },
                SystemWarning {
                    code: "W2".into(),
                    message: "Deprecated field used".into()
                },
            ]
        );
        assert_eq!(w[0].to_string(), "[W001]: Planned maintenance at 16:00");
    }

    #[test]
    fn tolerates_garbage() {
        assert!(parse_system_warnings("").is_empty());
        assert!(parse_system_warnings(" | ").is_empty());
        let w = parse_system_warnings("just text");
        assert_eq!(
            w,
            vec![SystemWarning {
                code: String::new(),
                message: "just text".into()
            }]
        );
        let w = parse_system_warnings("[unterminated: x");
        assert_eq!(w[0].code, "");
        let w = parse_system_warnings("[c]no colon");
        assert_eq!(
            w[0],
            SystemWarning {
                code: "c".into(),
                message: "no colon".into()
            }
        );
    }
}
