//! What a provider is, before it is built: the settings of a `provider` declaration,
//! or of one of the providers every program has (`claude`, `openai`, ...).
//!
//! ```text
//! provider local  { kind "openai" url "http://localhost:11434/v1" model "qwen3" }
//! provider opus   { kind "command" preset "claude" model "opus" max-turns 30 }
//! provider hosted { kind "anthropic" key env("WORK_ANTHROPIC_KEY") }
//! ```

use std::path::PathBuf;
use std::time::Duration;

use crate::syntax::ast::{self, Value};

/// How a provider answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sim,
    Replay,
    Command,
    OpenAi,
    Anthropic,
}

impl Kind {
    /// The name written after `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Sim => "sim",
            Kind::Replay => "replay",
            Kind::Command => "command",
            Kind::OpenAi => "openai",
            Kind::Anthropic => "anthropic",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        Some(match text {
            "sim" => Kind::Sim,
            "replay" => Kind::Replay,
            "command" => Kind::Command,
            "openai" => Kind::OpenAi,
            "anthropic" => Kind::Anthropic,
            _ => return None,
        })
    }
}

/// An agent CLI whose flags and output `command` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// `claude -p --output-format json`
    Claude,
    /// `codex exec --json`
    Codex,
    /// `ollama run MODEL`
    Ollama,
    /// `llm -m MODEL`
    Llm,
    /// `gemini --output-format json -p PROMPT`
    Gemini,
}

impl Preset {
    /// Every preset, by the name `preset` takes.
    pub const ALL: &'static [(&'static str, Preset)] = &[
        ("claude", Preset::Claude),
        ("codex", Preset::Codex),
        ("ollama", Preset::Ollama),
        ("llm", Preset::Llm),
        ("gemini", Preset::Gemini),
    ];

    /// The preset called `name`.
    pub fn parse(name: &str) -> Option<Preset> {
        Preset::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, preset)| *preset)
    }

    /// The program it runs.
    pub fn program(self) -> &'static str {
        match self {
            Preset::Claude => "claude",
            Preset::Codex => "codex",
            Preset::Ollama => "ollama",
            Preset::Llm => "llm",
            Preset::Gemini => "gemini",
        }
    }

    /// The environment variables the CLI itself needs, beyond the common ones: its own
    /// key and configuration, never another provider's.
    pub fn env(self) -> &'static [&'static str] {
        match self {
            Preset::Claude => &[
                "ANTHROPIC_API_KEY",
                "ANTHROPIC_AUTH_TOKEN",
                "ANTHROPIC_BASE_URL",
                "CLAUDE_CODE_OAUTH_TOKEN",
                "CLAUDE_CONFIG_DIR",
                // Claude on Bedrock or Vertex authenticates through the cloud's own variables.
                "CLAUDE_CODE_USE_BEDROCK",
                "CLAUDE_CODE_USE_VERTEX",
                "AWS_REGION",
                "AWS_PROFILE",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
                "ANTHROPIC_VERTEX_PROJECT_ID",
                "CLOUD_ML_REGION",
                "GOOGLE_APPLICATION_CREDENTIALS",
            ],
            Preset::Codex => &["OPENAI_API_KEY", "OPENAI_BASE_URL", "CODEX_HOME"],
            Preset::Ollama => &["OLLAMA_HOST"],
            Preset::Llm => &["LLM_USER_PATH"],
            Preset::Gemini => &[
                "GEMINI_API_KEY",
                "GOOGLE_API_KEY",
                "GOOGLE_CLOUD_PROJECT",
                "GOOGLE_CLOUD_LOCATION",
                "GOOGLE_GENAI_USE_VERTEXAI",
                "GOOGLE_APPLICATION_CREDENTIALS",
            ],
        }
    }
}

/// How the prompt reaches a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// On standard input (the default: no length limit, nothing in `ps`).
    Stdin,
    /// As the last argument.
    Argument,
}

/// A provider's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub name: String,
    pub kind: Kind,
    pub preset: Option<Preset>,
    /// The base URL of an HTTP provider.
    pub url: Option<String>,
    /// The model an agent without its own `model` gets.
    pub model: Option<String>,
    /// The environment variable holding the key (never the key).
    pub key: Option<String>,
    /// The program and its leading arguments; a preset's flags follow them.
    pub command: Vec<String>,
    /// More environment variables a command may see.
    pub env: Vec<String>,
    pub input: Input,
    pub fixture: Option<PathBuf>,
    pub latency: Option<Duration>,
    pub timeout: Option<Duration>,
    /// The answer's token limit (`max_tokens`, which Anthropic requires).
    pub max_tokens: Option<u64>,
    /// `claude --max-turns`.
    pub max_turns: Option<u64>,
}

impl Spec {
    fn new(name: &str, kind: Kind) -> Spec {
        Spec {
            name: name.to_string(),
            kind,
            preset: None,
            url: None,
            model: None,
            key: None,
            command: Vec::new(),
            env: Vec::new(),
            input: Input::Stdin,
            fixture: None,
            latency: None,
            timeout: None,
            max_tokens: None,
            max_turns: None,
        }
    }

    fn preset(name: &str, preset: Preset) -> Spec {
        Spec {
            preset: Some(preset),
            command: vec![preset.program().to_string()],
            input: if preset == Preset::Gemini {
                Input::Argument
            } else {
                Input::Stdin
            },
            ..Spec::new(name, Kind::Command)
        }
    }

    /// The provider every program has under `name`, if there is one.
    pub fn builtin(name: &str) -> Option<Spec> {
        if let Some(preset) = Preset::parse(name) {
            let mut spec = Spec::preset(name, preset);
            if preset == Preset::Ollama {
                spec.model = Some("llama3.2".to_string());
            }
            return Some(spec);
        }
        Some(match name {
            "sim" => Spec::new(name, Kind::Sim),
            "replay" => Spec::new(name, Kind::Replay),
            "openai" => Spec {
                url: Some("https://api.openai.com/v1".to_string()),
                model: Some("gpt-4.1-mini".to_string()),
                key: Some("OPENAI_API_KEY".to_string()),
                ..Spec::new(name, Kind::OpenAi)
            },
            "anthropic" => Spec {
                url: Some("https://api.anthropic.com".to_string()),
                model: Some("claude-sonnet-4-5".to_string()),
                key: Some("ANTHROPIC_API_KEY".to_string()),
                ..Spec::new(name, Kind::Anthropic)
            },
            _ => return None,
        })
    }

    /// The names of the providers every program has.
    pub fn builtin_names() -> &'static [&'static str] {
        crate::check::items::BUILTIN_PROVIDERS
    }

    /// The spec of a declaration the checker accepted. Settings it does not set come
    /// from the preset, then from the built-in provider of its kind (`kind "openai"`
    /// with no `url` talks to OpenAI).
    pub fn from_declaration(declaration: &ast::Provider) -> Spec {
        let setting = |key: &str| {
            declaration
                .settings
                .iter()
                .find(|s| s.key.name == key)
                .map(|s| &s.value)
        };
        let text = |key: &str| setting(key).and_then(Value::as_text).map(str::to_string);
        let quantity = |key: &str| match setting(key) {
            Some(Value::Quantity(q)) => Some(q.clone()),
            _ => None,
        };
        let list = |key: &str| setting(key).map_or_else(Vec::new, Value::words);
        let name = declaration.name.name.as_str();
        let preset = text("preset").as_deref().and_then(Preset::parse);
        let kind = match (text("kind").as_deref().and_then(Kind::parse), preset) {
            (Some(kind), _) => kind,
            (None, Some(_)) => Kind::Command,
            (None, None) => Kind::OpenAi,
        };
        let mut spec = match (kind, preset) {
            (Kind::Command, Some(preset)) => Spec::preset(name, preset),
            (Kind::OpenAi, _) => Spec {
                name: name.to_string(),
                ..Spec::builtin("openai").unwrap_or_else(|| Spec::new(name, kind))
            },
            (Kind::Anthropic, _) => Spec {
                name: name.to_string(),
                ..Spec::builtin("anthropic").unwrap_or_else(|| Spec::new(name, kind))
            },
            _ => Spec::new(name, kind),
        };
        if let Some(url) = text("url") {
            // An OpenAI-compatible URL of one's own (Ollama, vLLM, a proxy) needs no key
            // unless one is named; the Messages API always takes one.
            spec.url = Some(url);
            if kind == Kind::OpenAi {
                spec.key = None;
            }
        }
        if let Some(Value::Env(variable, _)) = setting("key") {
            spec.key = Some(variable.value.clone());
        }
        if let Some(model) = text("model") {
            spec.model = Some(model);
        }
        let command = list("command");
        if !command.is_empty() {
            spec.command = command;
        }
        spec.env = list("env");
        match text("input").as_deref() {
            Some("argument") => spec.input = Input::Argument,
            Some("stdin") => spec.input = Input::Stdin,
            _ => {}
        }
        spec.fixture = text("fixture").map(PathBuf::from);
        spec.latency = quantity("latency").and_then(|q| q.as_duration());
        spec.timeout = quantity("timeout").and_then(|q| q.as_duration());
        spec.max_tokens = quantity("max-tokens").and_then(|q| q.as_count());
        spec.max_turns = quantity("max-turns").and_then(|q| q.as_count());
        spec
    }

    /// One line saying what the provider is: `command claude (claude -p)`.
    pub fn describe(&self) -> String {
        let mut parts = vec![self.kind.as_str().to_string()];
        match self.kind {
            Kind::Command => {
                if let Some(program) = self.command.first() {
                    parts.push(format!("`{program}`"));
                }
            }
            Kind::OpenAi | Kind::Anthropic => {
                if let Some(url) = &self.url {
                    parts.push(url.clone());
                }
            }
            Kind::Replay => {
                if let Some(fixture) = &self.fixture {
                    parts.push(fixture.display().to_string());
                }
            }
            Kind::Sim => {}
        }
        if let Some(model) = &self.model {
            parts.push(format!("model {model}"));
        }
        if let Some(key) = &self.key {
            parts.push(format!("key ${key}"));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(source: &str) -> Spec {
        let parsed = crate::syntax::parse(source);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let Some(ast::Item::Provider(provider)) = parsed.file.items.first() else {
            panic!("not a provider")
        };
        Spec::from_declaration(provider)
    }

    #[test]
    fn an_openai_declaration_with_its_own_url_needs_no_key() {
        let spec = declared(
            r#"provider local { kind "openai" url "http://127.0.0.1:11434/v1" model "qwen3" }"#,
        );
        assert_eq!(spec.kind, Kind::OpenAi);
        assert_eq!(spec.url.as_deref(), Some("http://127.0.0.1:11434/v1"));
        assert_eq!(spec.key, None);
        assert_eq!(spec.model.as_deref(), Some("qwen3"));
    }

    #[test]
    fn a_preset_implies_a_command_and_keeps_its_program() {
        let spec = declared(r#"provider opus { preset "claude" model "opus" max-turns 30 }"#);
        assert_eq!(spec.kind, Kind::Command);
        assert_eq!(spec.preset, Some(Preset::Claude));
        assert_eq!(spec.command, vec!["claude".to_string()]);
        assert_eq!(spec.max_turns, Some(30));
    }

    #[test]
    fn anthropic_defaults_to_its_key_variable() {
        let spec = declared(r#"provider hosted { kind "anthropic" }"#);
        assert_eq!(spec.key.as_deref(), Some("ANTHROPIC_API_KEY"));
        let spec = declared(r#"provider hosted { kind "anthropic" key env("WORK_KEY") }"#);
        assert_eq!(spec.key.as_deref(), Some("WORK_KEY"));
    }
}
