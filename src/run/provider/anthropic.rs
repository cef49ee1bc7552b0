//! `anthropic`: the Messages API (`POST {base}/v1/messages`) with its `x-api-key` and
//! `anthropic-version` headers. A structured answer is asked for in the prompt; usage
//! comes from the answer, cost from the price table.

use std::sync::Arc;

use serde_json::{json, Value};

use super::http::{self, Endpoint};
use super::secret::Secret;
use super::{schema, Answer, Provider, ProviderError, Request, Response};
use crate::compile::prices::Prices;

/// The API version every request names.
const VERSION: &str = "2023-06-01";
/// `max_tokens` is required; this is what an agent gets unless its provider says.
const DEFAULT_MAX_TOKENS: u64 = 8_192;

/// The Anthropic Messages API.
pub struct Anthropic {
    name: String,
    /// `{base}/v1/messages`.
    url: String,
    model: Option<String>,
    key: Secret,
    key_variable: String,
    max_tokens: u64,
    client: reqwest::Client,
    prices: Arc<Prices>,
}

impl Anthropic {
    /// A provider for the base URL `base` (`https://api.anthropic.com`).
    pub fn new(
        name: &str,
        base: &str,
        model: Option<String>,
        (key_variable, key): (String, Secret),
        max_tokens: Option<u64>,
        timeout: Option<std::time::Duration>,
        prices: Arc<Prices>,
    ) -> Result<Anthropic, String> {
        Ok(Anthropic {
            name: name.to_string(),
            url: http::join(base, "v1/messages"),
            model,
            key,
            key_variable,
            max_tokens: max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            client: http::client(timeout)?,
            prices,
        })
    }
}

impl Provider for Anthropic {
    fn name(&self) -> &str {
        &self.name
    }

    fn complete<'a>(&'a self, request: &'a Request) -> Answer<'a> {
        Box::pin(async move {
            let model = request.model_or(self.model.as_deref(), &self.name)?;
            let mut body = json!({
                "model": model,
                "max_tokens": self.max_tokens,
                "messages": [{ "role": "user", "content": schema::prompt_with_instructions(request) }],
            });
            if let Some(system) = &request.system {
                body["system"] = json!(system);
            }
            let post = self
                .client
                .post(&self.url)
                .header("x-api-key", self.key.expose())
                .header("anthropic-version", VERSION);
            let endpoint = Endpoint {
                provider: &self.name,
                url: &self.url,
                key_variable: Some(&self.key_variable),
                key: Some(&self.key),
            };
            let answer = http::post_json(post, &body, &endpoint).await?;
            // An error can come with a 200 too (`{"type": "error", ...}`): its message
            // is the one worth quoting.
            if answer.get("type").and_then(Value::as_str) == Some("error") {
                let said = (answer.pointer("/error/message").and_then(Value::as_str))
                    .unwrap_or("no details");
                return Err(ProviderError::transient(format!(
                    "`{}` answered with an error: {said}",
                    self.url
                )));
            }
            let Some(blocks) = answer.get("content").and_then(Value::as_array) else {
                return Err(ProviderError::transient(format!(
                    "`{}` answered without `content`",
                    self.url
                )));
            };
            let texts: Vec<&str> = blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            let usage = |field: &str| super::http::usage(&answer, &format!("/usage/{field}"));
            let tokens_in = usage("input_tokens")
                .saturating_add(usage("cache_creation_input_tokens"))
                .saturating_add(usage("cache_read_input_tokens"));
            let tokens_out = usage("output_tokens");
            let cost_usd = (self.prices.of(model)).map_or(0.0, |p| p.cost(tokens_in, tokens_out));
            // No text at all (only a `tool_use` block, or none) is no answer, as for
            // `openai`: it completed the node with an empty output.
            if texts.is_empty() {
                let reason =
                    (answer.get("stop_reason").and_then(Value::as_str)).unwrap_or("none given");
                // An answer that is no answer is billed all the same.
                let spent = super::Spent {
                    tokens_in,
                    tokens_out,
                    cost_usd,
                };
                return Err(ProviderError::transient(format!(
                    "`{}` answered without text (stop reason `{reason}`); pai calls models without tools, so a tool call is not an answer",
                    self.url
                ))
                .spending(spent));
            }
            let text: String = texts.join("");
            Ok(Response {
                text,
                tokens_in,
                tokens_out,
                cost_usd,
                partial: (answer.get("stop_reason").and_then(Value::as_str) == Some("max_tokens"))
                    .then(|| {
                        format!(
                            "the answer was cut at max_tokens ({}); raise the provider's `max-tokens`",
                            self.max_tokens
                        )
                    }),
                ..Response::default()
            })
        })
    }
}
