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
            shape => Some(within_element_tokens(
                self.value(
                    shape,
                    &request.agent,
                    &tag,
                    0,
                    request.max_items.unwrap_or(usize::MAX),
                ),
                request.max_element_tokens,
            )),
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

    fn value(
        &self,
        shape: &Shape,
        agent: &str,
        tag: &str,
        index: usize,
        max_items: usize,
    ) -> serde_json::Value {
        use serde_json::Value;
        match shape {
            Shape::Text | Shape::Result => Value::String(format!("{agent} {tag} #{index}")),
            Shape::Path => Value::String(format!("sim/{agent}-{index}.txt")),
            Shape::Number => Value::from(index as u64 + 1),
            Shape::Bool => Value::Bool(index.is_multiple_of(2)),
            Shape::Duration => Value::String(format!("{}s", index + 1)),
            Shape::List(element) => Value::Array(
                (0..self.list_len.min(max_items))
                    .map(|i| self.value(element, agent, tag, i, usize::MAX))
                    .collect(),
            ),
            Shape::Record(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(name, shape)| {
                        (
                            name.clone(),
                            self.value(shape, agent, tag, index, usize::MAX),
                        )
                    })
                    .collect(),
            ),
        }
    }
}

/// The texts of a list answer cut to `max` tokens each (4 bytes a token), as the run
/// holds a `list<text max N>` answer to.
fn within_element_tokens(value: serde_json::Value, max: Option<u64>) -> serde_json::Value {
    use serde_json::Value;
    let (max, items) = match (max, value) {
        (Some(max), Value::Array(items)) => (max, items),
        (_, value) => return value,
    };
    let limit = usize::try_from(max.saturating_mul(4)).unwrap_or(usize::MAX);
    Value::Array(
        items
            .into_iter()
            .map(|item| match item {
                Value::String(mut text) if text.len() > limit => {
                    let mut end = limit;
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    text.truncate(end);
                    Value::String(text)
                }
                other => other,
            })
            .collect(),
    )
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
            max_element_tokens: None,
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
}
