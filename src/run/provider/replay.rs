//! `replay`: answers from a recorded fixture, the way workflows are tested.
//!
//! ```yaml
//! answers:
//!   - node: research/planner          # an exact node id, or
//!     text: "..."
//!     value: ["speed", "cost"]         # the structured answer of a typed agent
//!   - agent: researcher               # an agent, optionally with a prompt substring
//!     match: "speed"
//!     text: "Speed matters because..."
//!   - agent: flaky
//!     fail_first: 1                   # the first attempt fails (retryable), then this answer
//!     error: "rate limited"
//!     text: "ok"
//!   - agent: broken
//!     error: "the model refused"      # every attempt fails
//!     retryable: false
//!   - agent: slow
//!     delay: 5s                       # answers after this long (for timeouts)
//!     text: "late"
//! ```
//!
//! Entries are tried in order: node ids first, then agents whose `match` is in the
//! prompt, then agents without `match`. A call with no entry fails its node, with the
//! entry to add.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::{Answer, Provider, ProviderError, Request, Response};
use crate::check::budget::tokens_of_bytes;

/// One recorded answer.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default, rename = "match")]
    pub matches: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub retryable: Option<bool>,
    #[serde(default)]
    pub fail_first: u32,
    #[serde(default)]
    pub delay: Option<String>,
    #[serde(default)]
    pub tokens_in: Option<u64>,
    #[serde(default)]
    pub tokens_out: Option<u64>,
    #[serde(default)]
    pub cost_usd: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    answers: Vec<Entry>,
}

/// The replay provider.
#[derive(Debug)]
pub struct Replay {
    entries: Vec<Entry>,
}

impl Replay {
    /// Reads a fixture file.
    pub fn load(path: &Path) -> Result<Replay, String> {
        let text = crate::source::read_text(path)?;
        Replay::parse(&text).map_err(|e| format!("`{}`: {e}", path.display()))
    }

    /// Parses a fixture.
    pub fn parse(text: &str) -> Result<Replay, String> {
        let fixture: Fixture = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        for (i, entry) in fixture.answers.iter().enumerate() {
            if entry.node.is_none() && entry.agent.is_none() {
                return Err(format!(
                    "answer {} names neither a `node` nor an `agent`",
                    i + 1
                ));
            }
            if let Some(delay) = &entry.delay {
                parse_delay(delay).ok_or_else(|| {
                    format!(
                        "answer {}: `delay: {delay}` is not a duration such as `2s`",
                        i + 1
                    )
                })?;
            }
        }
        Ok(Replay {
            entries: fixture.answers,
        })
    }

    fn find(&self, request: &Request) -> Option<&Entry> {
        let by_node = self
            .entries
            .iter()
            .find(|e| e.node.as_deref() == Some(request.node.as_str()));
        by_node
            .or_else(|| {
                self.entries.iter().find(|e| {
                    e.node.is_none()
                        && e.agent.as_deref() == Some(request.agent.as_str())
                        && e.matches
                            .as_ref()
                            .is_some_and(|m| request.prompt.contains(m.as_str()))
                })
            })
            .or_else(|| {
                self.entries.iter().find(|e| {
                    e.node.is_none()
                        && e.agent.as_deref() == Some(request.agent.as_str())
                        && e.matches.is_none()
                })
            })
    }
}

fn parse_delay(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let amount: f64 = number.trim().parse().ok()?;
    let seconds = match unit {
        "ms" => amount / 1000.0,
        "s" => amount,
        "m" => amount * 60.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

impl Provider for Replay {
    fn name(&self) -> &str {
        "replay"
    }

    fn complete<'a>(&'a self, request: &'a Request) -> Answer<'a> {
        Box::pin(async move {
            let Some(entry) = self.find(request) else {
                return Err(ProviderError::fatal(format!(
                    "no replay answer for `{}`; add to the fixture:\n  - node: {}\n    text: \"...\"",
                    request.node, request.node
                )));
            };
            if let Some(delay) = entry.delay.as_deref().and_then(parse_delay) {
                tokio::time::sleep(delay).await;
            }
            let failing = entry.error.is_some()
                && (entry.fail_first == 0 || request.attempt <= entry.fail_first);
            if failing {
                return Err(ProviderError {
                    message: entry.error.clone().unwrap_or_default(),
                    retryable: entry.retryable.unwrap_or(entry.fail_first > 0),
                    retry_after: None,
                    spent: super::Spent::default(),
                });
            }
            let text = match (&entry.text, &entry.value) {
                (Some(text), _) => text.clone(),
                (None, Some(value)) => value.to_string(),
                (None, None) => String::new(),
            };
            Ok(Response {
                tokens_in: entry
                    .tokens_in
                    .unwrap_or_else(|| tokens_of_bytes(request.prompt.len())),
                tokens_out: entry
                    .tokens_out
                    .unwrap_or_else(|| tokens_of_bytes(text.len())),
                cost_usd: entry.cost_usd.unwrap_or(0.0),
                value: entry.value.clone(),
                text,
                ..Response::default()
            })
        })
    }
}
