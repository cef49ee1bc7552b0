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

/// Whether an environment variable's name says it holds a credential.
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_uppercase();
    ["KEY", "TOKEN", "SECRET", "PASSWORD"]
        .iter()
        .any(|word| upper.contains(word))
}

/// The shortest value of a credential-named variable that [`environment_secrets`]
/// redacts: shorter ones (`GH_TOKEN_ENABLED=true`) would blank ordinary words.
const MIN_ENVIRONMENT_SECRET: usize = 8;

/// Whether the variable `name` set to `value` holds a credential worth redacting: its
/// name says so ([`looks_secret`]) and the value is long enough to be one.
pub fn is_environment_secret(name: &str, value: &str) -> bool {
    looks_secret(name) && value.trim().len() >= MIN_ENVIRONMENT_SECRET
}

/// The values of this process's credential-named variables ([`looks_secret`]) of at
/// least eight characters, read once: what an `exec` step prints is redacted of them,
/// since it runs with the whole environment (`exec(["env"])` would otherwise put every
/// key in a manifest and the next prompt).
pub fn environment_secrets() -> &'static [Secret] {
    static SECRETS: std::sync::OnceLock<Vec<Secret>> = std::sync::OnceLock::new();
    SECRETS.get_or_init(|| {
        std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .filter(|(name, value)| is_environment_secret(name, value))
            .map(|(_, value)| Secret::new(value.trim()))
            .collect()
    })
}

/// The keys of the program's providers (`key env("...")`), whatever their variables are
/// called: a variable named `LLM_GATEWAY_CRED` does not look like a credential, but a
/// provider says it is one.
static DECLARED: std::sync::RwLock<Vec<Secret>> = std::sync::RwLock::new(Vec::new());

/// Adds the values of the variables `names` (the program's provider keys) to what
/// [`redact_environment`] removes.
pub fn guard_variables<'a>(names: impl IntoIterator<Item = &'a str>) {
    let mut declared = DECLARED.write().unwrap_or_else(|e| e.into_inner());
    for name in names {
        if let Ok(secret) = Secret::from_env(name) {
            if !declared.contains(&secret) {
                declared.push(secret);
            }
        }
    }
}

/// `text` (what an `exec` step printed: it runs with the whole environment) with every
/// credential of the environment ([`environment_secrets`]) and every provider key
/// ([`guard_variables`]) replaced by `[redacted]`.
pub fn redact_environment(text: String) -> String {
    let text = redact_all(environment_secrets(), text);
    let declared = DECLARED.read().unwrap_or_else(|e| e.into_inner());
    redact_all(&declared, text)
}

/// `text` with every one of `secrets` replaced by `[redacted]`.
pub fn redact_all(secrets: &[Secret], text: String) -> String {
    secrets.iter().fold(text, |text, secret| {
        if text.contains(&secret.0) {
            secret.redact(&text)
        } else {
            text
        }
    })
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
    fn credential_names_are_recognised() {
        assert!(looks_secret("ANTHROPIC_API_KEY"));
        assert!(looks_secret("GH_TOKEN"));
        assert!(looks_secret("db_password"));
        assert!(!looks_secret("PATH"));
    }

    #[test]
    fn redact_all_removes_every_key() {
        let secrets = [
            Secret::new("sk-first-123456"),
            Secret::new("sk-second-78910"),
        ];
        assert_eq!(
            redact_all(&secrets, "a sk-second-78910 b sk-first-123456".to_string()),
            "a [redacted] b [redacted]"
        );
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
