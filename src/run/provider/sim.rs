//! `sim`: deterministic answers derived from the agent and its prompt, with optional
//! latency. The default when no provider is configured; every run says so.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{Answer, Provider, Request, Response, Shape};
use crate::check::budget::tokens_of_bytes;

/// The simulated provider.
#[derive(Clone, Debug)]
pub struct Sim {
    pub latency: Duration,
    /// How many elements a simulated list has.
    pub list_len: usize,
}

impl Default for Sim {
    fn default() -> Sim {
        Sim {
            latency: Duration::ZERO,
            list_len: 3,
        }
    }
}

impl Sim {
    fn answer(&self, request: &Request) -> Response {
        // The agent and the prompt, hashed without copying the prompt (a fold's is large).
        let digest = Sha256::new()
            .chain_update(request.agent.as_bytes())
            .chain_update(b"\n")
            .chain_update(request.prompt.as_bytes())
            .finalize();
        let tag = crate::run::call::hex(digest.get(..4).unwrap_or_default());
        let value = match &request.shape {
            Shape::Result => None,
            shape => {
                let make = |list_len: usize| {
                    self.value(
                        shape,
                        &request.agent,
                        &tag,
                        0,
                        request.max_items.unwrap_or(usize::MAX),
                        list_len,
                    )
                };
                Some(match request.summary {
                    Some(summary) => self.within_summary(&make, summary),
                    None => make(self.list_len),
                })
            }
        };
        let text = match &value {
            Some(value) => value.to_string(),
            None => format!(
                "{} finished ({tag}).\n\nSimulated answer of `{}` to a prompt of {} bytes.",
                request.agent,
                request.agent,
                request.prompt.len()
            ),
        };
        Response {
            tokens_in: tokens_of_bytes(
                request.prompt.len() + request.system.as_ref().map_or(0, String::len),
            ),
            tokens_out: tokens_of_bytes(text.len()),
            text,
            value,
            cost_usd: 0.0,
            ..Response::default()
        }
    }

    /// The answer made with `make` (lists of the length given) small enough for the
    /// agent's `summary` budget, as a model asked to answer more briefly would: its
    /// lists as long as fits, up to `--sim-list`, then its texts halved until it fits or
    /// they are empty (a record whose smallest JSON passes the budget stays as it is,
    /// and the run says so). The length is found by doubling then halving the
    /// interval, so no answer much larger than the budget is ever made: a list of lists
    /// at `--sim-list 10000` made whole first held gigabytes.
    fn within_summary(
        &self,
        make: &dyn Fn(usize) -> serde_json::Value,
        summary: u64,
    ) -> serde_json::Value {
        use crate::check::budget::answer_tokens;
        let fits = |value: &serde_json::Value| answer_tokens(value) <= summary;
        let (mut fit, mut over) = (0, None);
        let mut len = 1;
        while len <= self.list_len {
            if !fits(&make(len)) {
                over = Some(len);
                break;
            }
            fit = len;
            if len == self.list_len {
                break;
            }
            len = len.saturating_mul(2).min(self.list_len);
        }
        if let Some(mut over) = over {
            while over - fit > 1 {
                let mid = fit + (over - fit) / 2;
                if fits(&make(mid)) {
                    fit = mid;
                } else {
                    over = mid;
                }
            }
        }
        let mut value = make(fit);
        while !fits(&value) && halve_texts(&mut value) {}
        value
    }

    fn value(
        &self,
        shape: &Shape,
        agent: &str,
        tag: &str,
        index: usize,
        max_items: usize,
        list_len: usize,
    ) -> serde_json::Value {
        use serde_json::Value;
        match shape {
            Shape::Text | Shape::Result => Value::String(format!("{agent} {tag} #{index}")),
            Shape::Path => Value::String(format!("sim/{agent}-{index}.txt")),
            Shape::Number => Value::from(index as u64 + 1),
            Shape::Bool => Value::Bool(index.is_multiple_of(2)),
            Shape::Duration => Value::String(format!("{}s", index + 1)),
            Shape::List { element, text_max } => Value::Array(
                (0..list_len.min(max_items))
                    .map(|i| {
                        let item = self.value(element, agent, tag, i, usize::MAX, list_len);
                        within_tokens(item, *text_max)
                    })
                    .collect(),
            ),
            Shape::Record(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(name, shape)| {
                        (
                            name.clone(),
                            self.value(shape, agent, tag, index, usize::MAX, list_len),
                        )
                    })
                    .collect(),
            ),
        }
    }
}

/// A text cut to `max` tokens (4 bytes a token), as the run holds each text of a
/// `list<text max N>` to.
fn within_tokens(value: serde_json::Value, max: Option<u64>) -> serde_json::Value {
    match (value, max) {
        (serde_json::Value::String(mut text), Some(max)) => {
            let mut end = usize::try_from(max.saturating_mul(4)).unwrap_or(usize::MAX);
            if end < text.len() {
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
            }
            serde_json::Value::String(text)
        }
        (value, _) => value,
    }
}

/// Halves every text in `value` (at a character boundary); `false` if all are empty.
fn halve_texts(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(text) if !text.is_empty() => {
            let mut end = text.len() / 2;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            true
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |cut, item| halve_texts(item) | cut),
        Value::Object(fields) => fields
            .values_mut()
            .fold(false, |cut, field| halve_texts(field) | cut),
        _ => false,
    }
}

impl Provider for Sim {
    fn name(&self) -> &str {
        "sim"
    }

    fn complete<'a>(&'a self, request: &'a Request) -> Answer<'a> {
        Box::pin(async move {
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            Ok(self.answer(request))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_tagged_with_a_hash_of_the_agent_and_its_prompt() {
        let request = Request {
            node: "flat/leaf[i7]".to_string(),
            agent: "leaf".to_string(),
            model: None,
            system: None,
            prompt: "Handle i7.".to_string(),
            tools: Vec::new(),
            shape: Shape::Result,
            max_items: None,
            summary: None,
            attempt: 1,
        };
        // The first 4 bytes of SHA-256 over "leaf\nHandle i7." (Python's hashlib):
        // runs recorded with an earlier pai answer alike.
        let response = Sim::default().answer(&request);
        assert!(
            response.text.starts_with("leaf finished (03275032)."),
            "{}",
            response.text
        );
        let other = Request {
            prompt: "Handle i8.".to_string(),
            ..request
        };
        assert!(!Sim::default().answer(&other).text.contains("03275032"));
    }

    /// `sim` answers as a model told to answer more briefly would: within the agent's
    /// `summary` budget, so a file that checks also runs with the default provider (a
    /// list of records in 30 tokens used to fail every attempt).
    #[test]
    fn structured_answers_fit_the_summary_budget() {
        let item = Shape::Record(vec![
            ("name".to_string(), Shape::Text),
            ("tags".to_string(), Shape::list(Shape::Text)),
        ]);
        let request = |summary| Request {
            node: "w/lister".to_string(),
            agent: "lister".to_string(),
            model: None,
            system: None,
            prompt: "List go".to_string(),
            tools: Vec::new(),
            shape: Shape::list(item.clone()),
            max_items: None,
            summary: Some(summary),
            attempt: 1,
        };
        let sim = Sim {
            list_len: 100,
            ..Sim::default()
        };
        for summary in [1, 10, 30, 60, 300, 100_000] {
            let value = sim.answer(&request(summary)).value.expect("structured");
            let tokens = crate::check::budget::answer_tokens(&value);
            assert!(tokens <= summary.max(1), "{tokens} > {summary}: {value}");
            assert!(value.is_array(), "{value}");
        }
        // With room to spare, the answer is as `--sim-list` asks.
        let roomy = sim.answer(&request(1_000_000)).value.expect("structured");
        assert_eq!(roomy.as_array().map(Vec::len), Some(100));
    }

    /// A list of records holding lists, at `--sim-list 10000`, fits a small budget
    /// without being made whole first (10,000 × 10,000 texts).
    #[test]
    fn nested_lists_fit_without_being_made_whole() {
        let item = Shape::Record(vec![
            ("name".to_string(), Shape::Text),
            ("tags".to_string(), Shape::list(Shape::Text)),
        ]);
        let request = Request {
            node: "n/nested".to_string(),
            agent: "nested".to_string(),
            model: None,
            system: None,
            prompt: "Do x".to_string(),
            tools: Vec::new(),
            shape: Shape::list(item),
            max_items: None,
            summary: Some(300),
            attempt: 1,
        };
        let sim = Sim {
            list_len: 10_000,
            ..Sim::default()
        };
        let value = sim.answer(&request).value.expect("structured");
        assert!(
            crate::check::budget::answer_tokens(&value) <= 300,
            "{value}"
        );
        assert!(
            value.as_array().is_some_and(|items| !items.is_empty()),
            "{value}"
        );
    }
}
