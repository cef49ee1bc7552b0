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
        let digest = Sha256::digest(format!("{}\n{}", request.agent, request.prompt).as_bytes());
        let tag: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        let value = match &request.shape {
            Shape::Result => None,
            shape => Some(self.value(
                shape,
                &request.agent,
                &tag,
                0,
                request.max_items.unwrap_or(usize::MAX),
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
            Shape::Bool => Value::Bool(index % 2 == 0),
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
