//! `pai providers`: whether each provider could answer now — its key set, its CLI on
//! PATH, its endpoint answering — without spending a token.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::http;
use super::secret::Secret;
use super::spec::{Kind, Spec};

/// What a probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    pub detail: String,
}

impl Readiness {
    fn ready(detail: impl Into<String>) -> Readiness {
        Readiness {
            ready: true,
            detail: detail.into(),
        }
    }

    fn missing(detail: impl Into<String>) -> Readiness {
        Readiness {
            ready: false,
            detail: detail.into(),
        }
    }
}

/// Probes one provider. With `offline`, endpoints are not contacted.
pub async fn probe(spec: &Spec, offline: bool) -> Readiness {
    match spec.kind {
        Kind::Sim => Readiness::ready("simulated answers, no model"),
        Kind::Replay => match &spec.fixture {
            Some(fixture) if fixture.is_file() => {
                Readiness::ready(format!("fixture {}", fixture.display()))
            }
            Some(fixture) => Readiness::missing(format!("no fixture at {}", fixture.display())),
            None => Readiness::ready("answers from FILE.replay.yaml or --fixture"),
        },
        Kind::Command => {
            let Some(program) = spec.command.first() else {
                return Readiness::missing("no command");
            };
            match find_program(program, std::env::var_os("PATH").as_deref()) {
                Some(path) => Readiness::ready(format!("{} found", path.display())),
                None => Readiness::missing(format!("`{program}` is not on PATH")),
            }
        }
        Kind::OpenAi | Kind::Anthropic => {
            let key = match &spec.key {
                Some(variable) => match Secret::from_env(variable) {
                    Ok(secret) => Some(secret),
                    Err(problem) => return Readiness::missing(problem),
                },
                None => None,
            };
            let Some(url) = &spec.url else {
                return Readiness::missing("no `url`");
            };
            let key_note = match &spec.key {
                Some(variable) => format!("`{variable}` set"),
                None => "no key needed".to_string(),
            };
            if offline {
                return Readiness::ready(key_note);
            }
            endpoint(spec.kind, url, key.as_ref(), &key_note).await
        }
    }
}

/// Lists the models of an HTTP provider, the one request both APIs answer for free.
async fn endpoint(kind: Kind, base: &str, key: Option<&Secret>, key_note: &str) -> Readiness {
    let Ok(client) = http::client(Some(Duration::from_secs(5))) else {
        return Readiness::missing("cannot start the HTTP client");
    };
    let request = match kind {
        Kind::Anthropic => {
            let request = client
                .get(http::join(base, "v1/models"))
                .header("anthropic-version", "2023-06-01");
            match key {
                Some(key) => request.header("x-api-key", key.expose()),
                None => request,
            }
        }
        _ => {
            let request = client.get(http::join(base, "models"));
            match key {
                Some(key) => request.bearer_auth(key.expose()),
                None => request,
            }
        }
    };
    match request.send().await {
        Ok(response) if response.status().is_success() => {
            Readiness::ready(format!("{key_note}, endpoint answering"))
        }
        Ok(response) => Readiness::missing(format!(
            "{key_note}, but the endpoint answered {}",
            response.status().as_u16()
        )),
        Err(error) if error.is_timeout() => {
            Readiness::missing(format!("`{base}` did not answer within 5s"))
        }
        Err(_) => Readiness::missing(format!("cannot connect to `{base}`")),
    }
}

/// Where `program` would be found: itself when it is a path, else the first executable
/// of that name in `path`.
pub fn find_program(program: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    if program.contains(std::path::MAIN_SEPARATOR) {
        let candidate = Path::new(program);
        return is_executable(candidate).then(|| candidate.to_path_buf());
    }
    std::env::split_paths(path?)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_the_given_path_only() {
        let path = std::env::var_os("PATH");
        assert!(find_program("sh", path.as_deref()).is_some());
        assert_eq!(
            find_program("sh", Some(std::ffi::OsStr::new("/nonexistent"))),
            None
        );
        assert_eq!(find_program("pai-no-such-program", path.as_deref()), None);
    }
}
