//! The provider contract (DESIGN §4): a prompt in, an answer out, errors classified as
//! worth retrying or not. `sim` and `replay` need no model; `command` drives an agent
//! CLI (Claude Code, Codex, Ollama, ...), `openai` and `anthropic` speak HTTP. Which
//! provider answers which agent is decided in [`registry`].

pub mod anthropic;
pub mod command;
mod http;
pub mod openai;
pub mod probe;
pub mod registry;
pub mod replay;
pub mod schema;
pub mod secret;
pub mod sim;
pub mod spec;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use crate::check::shape::Shape;

/// What an agent call asks of a provider.
#[derive(Clone, Debug)]
pub struct Request {
    /// The node's id: `execute/orchestrate[src]/coder[login.rs]`.
    pub node: String,
    pub agent: String,
    pub model: Option<String>,
    pub system: Option<String>,
    pub prompt: String,
    pub tools: Vec<String>,
    /// The shape of a structured answer; `Shape::Result` asks for text.
    pub shape: Shape,
    /// The most elements a list answer may have: the `max` of the `for` it feeds.
    pub max_items: Option<usize>,
    /// The agent's `summary` budget: a structured answer must fit it whole, measured
    /// as it enters a prompt (`check::budget::answer_tokens`).
    pub summary: Option<u64>,
    /// Which attempt this is, from 1.
    pub attempt: u32,
}

impl Request {
    /// The model to ask: the agent's, else provider `provider`'s own `model`.
    pub fn model_or<'a>(
        &'a self,
        own: Option<&'a str>,
        provider: &str,
    ) -> Result<&'a str, ProviderError> {
        self.model.as_deref().or(own).ok_or_else(|| {
            ProviderError::fatal(format!(
                "provider `{provider}` has no model; give the agent `model \"...\"` or the provider one"
            ))
        })
    }
}

/// A provider's answer.
#[derive(Clone, Debug, Default)]
pub struct Response {
    pub text: String,
    /// The structured value, for agents that return a record or a list.
    pub value: Option<serde_json::Value>,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    /// Why the answer is only partly done (tools the agent was refused); the node is
    /// then `partial`.
    pub partial: Option<String>,
    /// The provider's id of the conversation (`claude -p`'s `session_id`), for resuming
    /// it by hand.
    pub session: Option<String>,
}

/// Why a call failed.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderError {
    pub message: String,
    /// Worth trying again (a timeout, a 429, a 5xx, a dropped connection).
    pub retryable: bool,
    /// How long the provider asked to be left alone (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// What the failed attempt cost: a server can bill an answer that is no answer
    /// (`content: null`), and `--max-tokens` and `--max-cost` count it.
    pub spent: Spent,
}

/// Tokens and dollars an attempt used.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Spent {
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
}

impl ProviderError {
    /// A failure that another attempt will not fix.
    pub fn fatal(message: impl Into<String>) -> ProviderError {
        ProviderError {
            message: message.into(),
            retryable: false,
            retry_after: None,
            spent: Spent::default(),
        }
    }

    /// A failure worth trying again.
    pub fn transient(message: impl Into<String>) -> ProviderError {
        ProviderError {
            message: message.into(),
            retryable: true,
            retry_after: None,
            spent: Spent::default(),
        }
    }

    /// The same failure, with what the attempt cost.
    pub fn spending(mut self, spent: Spent) -> ProviderError {
        self.spent = spent;
        self
    }
}

/// The future a provider returns.
pub type Answer<'a> = Pin<Box<dyn Future<Output = Result<Response, ProviderError>> + Send + 'a>>;

/// A model provider.
pub trait Provider: Send + Sync {
    /// `sim`, `replay`, ...
    fn name(&self) -> &str;

    /// Answers one request.
    fn complete<'a>(&'a self, request: &'a Request) -> Answer<'a>;
}
