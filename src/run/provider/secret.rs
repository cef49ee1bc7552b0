//! Secrets: API keys read from the environment. A [`Secret`] prints as `[redacted]`
//! through `Debug` and `Display` and does not implement `Serialize`, so a key cannot
//! reach a manifest, a trace or a log by accident:
//!
//! ```compile_fail
//! let secret = pai::run::provider::secret::Secret::new("sk-live");
//! serde_json::to_string(&secret).unwrap();
//! ```

use std::fmt;

/// An API key. The only way to read it is [`Secret::expose`], at the one place that
/// puts it in a request header.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a key.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// Reads the key in the environment variable `name`; an unset or empty variable is
    /// an error that names the variable, never a value.
    pub fn from_env(name: &str) -> Result<Secret, String> {
        match std::env::var(name) {
            Ok(value) if !value.trim().is_empty() => Ok(Secret(value.trim().to_string())),
            Ok(_) => Err(format!("`{name}` is empty")),
            Err(std::env::VarError::NotPresent) => Err(format!("`{name}` is not set")),
            Err(std::env::VarError::NotUnicode(_)) => Err(format!("`{name}` is not UTF-8")),
        }
    }

    /// The key itself, for a request header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key replaced by `[redacted]`: for messages
    /// that quote what a server or a CLI said back.
    pub fn redact(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_string();
        }
        text.replace(&self.0, "[redacted]")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_key() {
        let secret = Secret::new("sk-canary-1234567890");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret([redacted]))");
        assert_eq!(secret.expose(), "sk-canary-1234567890");
    }

    #[test]
    fn redact_removes_the_key_from_quoted_text() {
        let secret = Secret::new("sk-canary-1234567890");
        assert_eq!(
            secret.redact("invalid key sk-canary-1234567890 given"),
            "invalid key [redacted] given"
        );
    }
}
