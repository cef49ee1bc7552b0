//! `openai`: chat completions against any OpenAI-compatible base URL (OpenAI, Ollama,
//! llama.cpp, vLLM, LM Studio). A structured answer is asked for with
//! `response_format: json_schema`, wrapped in an object since the API wants one at the
//! top; usage tokens come from the answer, cost from the price table.

use std::sync::Arc;

use serde_json::{json, Value};

use super::http::{self, Endpoint};
use super::secret::Secret;
use super::{schema, Answer, Provider, ProviderError, Request, Response, Shape, Spent};
use crate::compile::prices::Prices;

/// An OpenAI-compatible endpoint.
pub struct OpenAi {
    name: String,
    /// `{base}/chat/completions`.
    url: String,
    model: Option<String>,
    key: Option<Secret>,
    key_variable: Option<String>,
    max_tokens: Option<u64>,
    client: reqwest::Client,
    prices: Arc<Prices>,
}

impl OpenAi {
    /// A provider for the base URL `base` (`https://api.openai.com/v1`).
    pub fn new(
        name: &str,
        base: &str,
        model: Option<String>,
        key: Option<(String, Secret)>,
        max_tokens: Option<u64>,
        timeout: Option<std::time::Duration>,
        prices: Arc<Prices>,
    ) -> Result<OpenAi, String> {
        let (key_variable, key) = match key {
            Some((variable, secret)) => (Some(variable), Some(secret)),
            None => (None, None),
        };
        Ok(OpenAi {
            name: name.to_string(),
            url: http::join(base, "chat/completions"),
            model,
            key,
            key_variable,
            max_tokens,
            client: http::client(timeout)?,
            prices,
        })
    }

    fn body(&self, request: &Request, model: &str) -> Value {
        let mut messages = Vec::new();
        if let Some(system) = &request.system {
            messages.push(json!({ "role": "system", "content": system }));
        }
        messages
            .push(json!({ "role": "user", "content": schema::prompt_with_instructions(request) }));
        let mut body = json!({ "model": model, "messages": messages });
        if let Some(max) = self.max_tokens {
            // OpenAI's newer models take only `max_completion_tokens`; compatible servers
            // (Ollama, vLLM, llama.cpp) know `max_tokens`.
            let field = if self.url.contains("api.openai.com") {
                "max_completion_tokens"
            } else {
                "max_tokens"
            };
            body[field] = json!(max);
        }
        if request.shape != Shape::Result {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "schema": {
                        "type": "object",
                        "properties": { "answer": schema::json_schema(&request.shape) },
                        "required": ["answer"],
                        "additionalProperties": false,
                    },
                },
            });
        }
        body
    }
}

impl Provider for OpenAi {
    fn name(&self) -> &str {
        &self.name
    }

    fn complete<'a>(&'a self, request: &'a Request) -> Answer<'a> {
        Box::pin(async move {
            let model = request.model_or(self.model.as_deref(), &self.name)?;
            let mut post = self.client.post(&self.url);
            if let Some(key) = &self.key {
                post = post.bearer_auth(key.expose());
            }
            let endpoint = Endpoint {
                provider: &self.name,
                url: &self.url,
                key_variable: self.key_variable.as_deref(),
                key: self.key.as_ref(),
            };
            let answer = http::post_json(post, &self.body(request, model), &endpoint).await?;
            let tokens_in = http::usage(&answer, "/usage/prompt_tokens");
            let tokens_out = http::usage(&answer, "/usage/completion_tokens");
            // An answer that is no answer is billed all the same.
            let spent = Spent {
                tokens_in,
                tokens_out,
                cost_usd: (self.prices.of(model)).map_or(0.0, |p| p.cost(tokens_in, tokens_out)),
            };
            if let Some(refusal) = answer
                .pointer("/choices/0/message/refusal")
                .and_then(Value::as_str)
            {
                return Err(
                    ProviderError::fatal(format!("the model refused: {refusal}")).spending(spent),
                );
            }
            let Some(text) = answer
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
            else {
                return Err(ProviderError::transient(format!(
                    "`{}` answered without `choices[0].message.content` (pai calls models without tools: a tool call is not an answer)",
                    self.url
                ))
                .spending(spent));
            };
            let cut = answer
                .pointer("/choices/0/finish_reason")
                .and_then(Value::as_str)
                == Some("length");
            let value = (request.shape != Shape::Result)
                .then(|| unwrap_answer(text, &request.shape))
                .flatten();
            Ok(Response {
                text: match &value {
                    Some(value) => value.to_string(),
                    None => text.to_string(),
                },
                value,
                tokens_in,
                tokens_out,
                cost_usd: spent.cost_usd,
                partial: cut.then(|| "the answer was cut at the token limit".to_string()),
                ..Response::default()
            })
        })
    }
}

/// The value inside `{"answer": ...}`. A server that ignores `response_format` sends
/// the answer bare, so a record whose one field is `answer` is kept whole when it, and
/// not what is inside it, has the shape asked for. An answer of another shape is left
/// to the validator, which says what is wrong and asks again.
fn unwrap_answer(text: &str, shape: &Shape) -> Option<Value> {
    let value: Value = serde_json::from_str(text.trim()).ok()?;
    let inner = match &value {
        Value::Object(object) if object.len() == 1 => object.get("answer")?,
        _ => return None,
    };
    if !crate::run::call::fits_shape(shape, inner) && crate::run::call::fits_shape(shape, &value) {
        return Some(value);
    }
    Some(inner.clone())
}
