//! `command`: any CLI as a provider. The argv is built without a shell, the prompt goes
//! on standard input (or as the last argument), and the child sees only an allow-list
//! of environment variables, so keys meant for other providers never reach it.
//!
//! Presets know the flags and output of agent CLIs:
//! - `claude`: `claude -p --output-format json`, reading `result`, `is_error`,
//!   `subtype`, `total_cost_usd`, `usage`, `session_id` and `permission_denials`;
//! - `codex`: `codex exec --json`, reading the JSONL events (the last agent message,
//!   usage from `turn.completed`, older builds' `item_type` too);
//! - `gemini`: `gemini --output-format json -p PROMPT`, reading `response` and `stats`;
//! - `ollama` (`ollama run MODEL`) and `llm` (`llm -m MODEL`), whose output is the
//!   answer.
//!
//! Without a preset, standard output is the answer.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::secret::{self, Secret};
use super::spec::{Input, Preset, Spec};
use super::{schema, Answer, Provider, ProviderError, Request, Response};
use crate::check::budget::tokens_of_bytes;
use crate::compile::prices::Prices;
use crate::run::child::{wait_capped, CaptureError, Group};

/// Variables every command sees, when set: what a program needs to find its files,
/// its locale and a proxy. Nothing here holds a key.
const COMMON_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TERM",
    "TZ",
    "TMPDIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "XDG_STATE_HOME",
    "XDG_RUNTIME_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "SYSTEMROOT",
];

/// An agent CLI.
pub struct Command {
    name: String,
    preset: Option<Preset>,
    program: String,
    leading: Vec<String>,
    model: Option<String>,
    input: Input,
    timeout: Option<Duration>,
    max_turns: Option<u64>,
    /// The variables the child sees, with their values read once at start.
    env: Vec<(String, String)>,
    /// Values of passed variables that look like keys, redacted from messages.
    secrets: Vec<Secret>,
    prices: Arc<Prices>,
}

impl Command {
    /// A command provider from its spec.
    pub fn new(spec: &Spec, prices: Arc<Prices>) -> Result<Command, String> {
        let Some((program, leading)) = spec.command.split_first() else {
            return Err(format!("provider `{}` has an empty `command`", spec.name));
        };
        let mut names: Vec<&str> = COMMON_ENV.to_vec();
        if let Some(preset) = spec.preset {
            names.extend(preset.env());
        }
        names.extend(spec.key.as_deref());
        names.extend(spec.env.iter().map(String::as_str));
        names.sort_unstable();
        names.dedup();
        let env: Vec<(String, String)> = names
            .iter()
            .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
            .collect();
        let secrets = env
            .iter()
            // The declared key whatever it looks like; other credential-named values
            // only when long enough to be one (`MAX_TOKENS=4096` would blank numbers
            // in the answer's JSON).
            .filter(|(name, value)| {
                spec.key.as_deref() == Some(name.as_str())
                    || secret::is_environment_secret(name, value)
            })
            .map(|(_, value)| Secret::new(value.clone()))
            .collect();
        Ok(Command {
            name: spec.name.clone(),
            preset: spec.preset,
            program: program.clone(),
            leading: leading.to_vec(),
            model: spec.model.clone(),
            input: spec.input,
            timeout: spec.timeout,
            max_turns: spec.max_turns,
            env,
            secrets,
            prices,
        })
    }

    /// The program this provider runs.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The arguments after the program for `request`, whose full prompt is `prompt`.
    pub fn args(&self, request: &Request, prompt: &str) -> Vec<String> {
        let model = request.model.as_deref().or(self.model.as_deref());
        let mut args = self.leading.clone();
        let as_argument = self.input == Input::Argument;
        let mut push = |items: &[&str]| args.extend(items.iter().map(|s| s.to_string()));
        match self.preset {
            Some(Preset::Claude) => {
                push(&["-p", "--output-format", "json"]);
                if let Some(model) = model {
                    push(&["--model", model]);
                }
                if let Some(system) = &request.system {
                    push(&["--append-system-prompt", system]);
                }
                if !request.tools.is_empty() {
                    push(&["--allowedTools", &request.tools.join(",")]);
                }
                if let Some(turns) = self.max_turns {
                    push(&["--max-turns", &turns.to_string()]);
                }
                if as_argument {
                    push(&["--", prompt]);
                }
            }
            Some(Preset::Codex) => {
                push(&["exec", "--json"]);
                if let Some(model) = model {
                    push(&["--model", model]);
                }
                if as_argument {
                    push(&["--", prompt]);
                } else {
                    push(&["-"]);
                }
            }
            Some(Preset::Gemini) => {
                push(&["--output-format", "json"]);
                if let Some(model) = model {
                    push(&["--model", model]);
                }
                if as_argument {
                    // One argument, so a prompt starting with `-` is never read as a flag.
                    push(&[&format!("--prompt={prompt}")]);
                }
            }
            Some(Preset::Ollama) => {
                push(&["run", model.unwrap_or("llama3.2")]);
                if as_argument {
                    push(&["--", prompt]);
                }
            }
            Some(Preset::Llm) => {
                if let Some(model) = model {
                    push(&["-m", model]);
                }
                if let Some(system) = &request.system {
                    push(&["-s", system]);
                }
                if as_argument {
                    push(&["--", prompt]);
                }
            }
            None => {
                if as_argument {
                    push(&[prompt]);
                }
            }
        }
        args
    }

    /// The prompt the CLI receives: the system prompt goes in front for CLIs without a
    /// flag for it, and a structured answer's schema after.
    fn prompt(&self, request: &Request) -> String {
        let prompt = schema::prompt_with_instructions(request);
        let has_system_flag = matches!(self.preset, Some(Preset::Claude | Preset::Llm));
        match &request.system {
            Some(system) if !has_system_flag => format!("{system}\n\n{prompt}"),
            _ => prompt,
        }
    }

    fn redact(&self, text: &str) -> String {
        secret::redact_all(&self.secrets, text.to_string())
    }

    async fn spawn(&self, args: &[String], stdin: Option<&[u8]>) -> Result<Output, ProviderError> {
        let mut command = tokio::process::Command::new(&self.program);
        crate::process::restore_for_child(&mut command);
        command
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Dropping the call (a timeout, Ctrl-C) kills the child.
            .kill_on_drop(true);
        let mut child = Group::spawn(&mut command).map_err(|e| self.spawn_error(&e))?;
        let mut pipe = child.child.stdin.take();
        let write = async {
            if let (Some(pipe), Some(bytes)) = (pipe.as_mut(), stdin) {
                // A CLI that exits without reading its input is judged by its exit code.
                let _ = pipe.write_all(bytes).await;
                let _ = pipe.shutdown().await;
            }
            drop(pipe);
        };
        let (_, output) = tokio::join!(write, wait_capped(child));
        let output = output.map_err(|error| match error {
            // An answer that large would come back as large.
            CaptureError::TooMuch(_) => ProviderError::fatal(error.describe(&self.program)),
            CaptureError::Io(_) => ProviderError::transient(error.describe(&self.program)),
        })?;
        // An agent with a shell could print the key it was given. What the CLI printed is
        // redacted here, before anything parses, cuts or quotes it: a message cut first
        // and redacted second kept the start of a key that straddled the cut.
        Ok(Output {
            status: output.status,
            stdout: self.redact(&String::from_utf8_lossy(&output.stdout)),
            stderr: self.redact(&String::from_utf8_lossy(&output.stderr)),
        })
    }

    fn spawn_error(&self, error: &std::io::Error) -> ProviderError {
        let message = match error.kind() {
            std::io::ErrorKind::NotFound => format!(
                "cannot run `{}`: it is not on PATH; install it, or give provider `{}` the full path with `command [\"/path/to/{}\"]`",
                self.program, self.name, self.program
            ),
            std::io::ErrorKind::PermissionDenied => {
                format!("cannot run `{}`: permission denied", self.program)
            }
            _ if error.raw_os_error() == Some(7) => format!(
                "cannot run `{}`: the prompt is too long for an argument; use `input \"stdin\"`",
                self.program
            ),
            _ => format!(
                "cannot run `{}`: {}",
                self.program,
                error.to_string().to_lowercase()
            ),
        };
        ProviderError::fatal(message)
    }

    /// Turns what the CLI printed into an answer.
    fn answer(&self, request: &Request, output: &Output) -> Result<Response, ProviderError> {
        let parsed = match self.preset {
            Some(Preset::Claude) => claude(&output.stdout),
            Some(Preset::Codex) => codex(&output.stdout),
            Some(Preset::Gemini) => gemini(&output.stdout),
            Some(Preset::Ollama | Preset::Llm) | None => None,
        };
        let failed = !output.status.success();
        let mut response = match parsed {
            Some(Ok(response)) if !failed => response,
            Some(Err(error)) => return Err(self.reported(error)),
            _ if failed => return Err(self.exit_error(output)),
            Some(Ok(_)) | None => {
                if self
                    .preset
                    .is_some_and(|p| !matches!(p, Preset::Ollama | Preset::Llm))
                {
                    return Err(ProviderError::transient(format!(
                        "`{}` printed no answer this provider understands: {}",
                        self.program,
                        excerpt(&output.stdout)
                    )));
                }
                Response {
                    text: output.stdout.trim().to_string(),
                    ..Response::default()
                }
            }
        };
        if response.tokens_in == 0 && response.tokens_out == 0 {
            response.tokens_in = tokens_of_bytes(
                request.prompt.len() + request.system.as_ref().map_or(0, String::len),
            );
            response.tokens_out = tokens_of_bytes(response.text.len());
        }
        if response.cost_usd == 0.0 && self.preset != Some(Preset::Ollama) {
            let model = request
                .model
                .as_deref()
                .or(self.model.as_deref())
                .or(match self.preset {
                    Some(Preset::Codex) => Some("gpt-5"),
                    _ => None,
                });
            if let Some(price) = model.and_then(|m| self.prices.of(m)) {
                response.cost_usd = price.cost(response.tokens_in, response.tokens_out);
            }
        }
        // Again after parsing: a key JSON escaped in what was printed (`\/` for `/`)
        // reads back whole only now.
        response.text = self.redact(&response.text);
        response.partial = response.partial.map(|p| self.redact(&p));
        response.session = response.session.map(|s| self.redact(&s));
        Ok(response)
    }

    fn reported(&self, error: Reported) -> ProviderError {
        let message = format!(
            "`{}` reported an error: {}",
            self.program,
            self.redact(&error.message)
        );
        if error.final_ || !transient_words(&error.message) {
            ProviderError::fatal(message)
        } else {
            ProviderError::transient(message)
        }
    }

    fn exit_error(&self, output: &Output) -> ProviderError {
        let said = match excerpt(&output.stderr) {
            text if text.is_empty() => excerpt(&output.stdout),
            text => text,
        };
        let how = match output.status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_string(),
        };
        let message = if said.is_empty() {
            format!("`{}` {how}", self.program)
        } else {
            format!("`{}` {how}: {said}", self.program)
        };
        if transient_words(&said) {
            ProviderError::transient(message)
        } else {
            ProviderError::fatal(message)
        }
    }
}

impl Provider for Command {
    fn name(&self) -> &str {
        &self.name
    }

    fn complete<'a>(&'a self, request: &'a Request) -> Answer<'a> {
        Box::pin(async move {
            let prompt = self.prompt(request);
            let args = self.args(request, &prompt);
            let stdin = (self.input == Input::Stdin).then_some(prompt.as_bytes());
            let output = match self.timeout {
                Some(limit) => tokio::time::timeout(limit, self.spawn(&args, stdin))
                    .await
                    .map_err(|_| {
                        ProviderError::transient(format!(
                            "`{}` did not finish within {}",
                            self.program,
                            humantime::format_duration(limit)
                        ))
                    })??,
                None => self.spawn(&args, stdin).await?,
            };
            self.answer(request, &output)
        })
    }
}

/// What a child printed.
struct Output {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

/// An error the CLI reported in its own output.
struct Reported {
    message: String,
    /// Another attempt will not help (`error_max_turns`).
    final_: bool,
}

/// `claude -p --output-format json`: one result object (or, with `--verbose`, an array
/// of messages ending in one).
fn claude(stdout: &str) -> Option<Result<Response, Reported>> {
    let parsed: Value = serde_json::from_str(stdout.trim()).ok()?;
    let result = match parsed {
        Value::Array(messages) => messages
            .into_iter()
            .rev()
            .find(|m| m.get("type").and_then(Value::as_str) == Some("result"))?,
        object => object,
    };
    // Some other JSON (a config dump, an unrelated tool) is not an answer.
    if result.get("type").and_then(Value::as_str) != Some("result")
        && result.get("result").is_none()
    {
        return None;
    }
    let text = result.get("result").and_then(Value::as_str).unwrap_or("");
    let subtype = result.get("subtype").and_then(Value::as_str).unwrap_or("");
    let is_error = result
        .get("is_error")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if is_error || (!subtype.is_empty() && subtype != "success") {
        let message = match (subtype, text) {
            ("error_max_turns", _) => {
                return Some(Err(Reported {
                    message: "it ran out of turns (`error_max_turns`); raise the provider's `max-turns` or split the task".to_string(),
                    final_: true,
                }))
            }
            (_, "") => format!("`{subtype}`"),
            ("success" | "", text) => excerpt(text),
            (subtype, text) => format!("`{subtype}`: {}", excerpt(text)),
        };
        return Some(Err(Reported {
            message,
            final_: false,
        }));
    }
    let usage = |field: &str| {
        result
            .pointer(&format!("/usage/{field}"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let denials: Vec<String> = result
        .get("permission_denials")
        .and_then(Value::as_array)
        .map(|denials| {
            denials
                .iter()
                .map(|d| {
                    d.get("tool_name")
                        .and_then(Value::as_str)
                        .unwrap_or("a tool")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Ok(Response {
        text: text.to_string(),
        tokens_in: usage("input_tokens")
            .saturating_add(usage("cache_creation_input_tokens"))
            .saturating_add(usage("cache_read_input_tokens")),
        tokens_out: usage("output_tokens"),
        cost_usd: result
            .get("total_cost_usd")
            .and_then(Value::as_f64)
            .filter(|c| c.is_finite() && *c >= 0.0)
            .unwrap_or(0.0),
        partial: (!denials.is_empty()).then(|| {
            format!(
                "claude was refused {} tool use{}: {}",
                denials.len(),
                if denials.len() == 1 { "" } else { "s" },
                denials.join(", ")
            )
        }),
        session: result
            .get("session_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        ..Response::default()
    }))
}

/// `codex exec --json`: JSONL events. The answer is the last agent message; usage is
/// summed over `turn.completed`.
fn codex(stdout: &str) -> Option<Result<Response, Reported>> {
    let mut response = Response::default();
    let mut message = None;
    let mut last_error: Option<String> = None;
    let mut seen = false;
    for line in stdout.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        seen = true;
        let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "thread.started" => {
                response.session = event
                    .get("thread_id")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            "item.completed" => {
                let Some(item) = event.get("item") else {
                    continue;
                };
                let item_kind = item
                    .get("type")
                    .or_else(|| item.get("item_type"))
                    .and_then(Value::as_str);
                if matches!(item_kind, Some("agent_message" | "assistant_message")) {
                    message = item.get("text").and_then(Value::as_str).map(str::to_string);
                }
            }
            "turn.completed" => {
                let usage = |field: &str| {
                    event
                        .pointer(&format!("/usage/{field}"))
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                };
                response.tokens_in = response.tokens_in.saturating_add(usage("input_tokens"));
                response.tokens_out = response.tokens_out.saturating_add(usage("output_tokens"));
            }
            "turn.failed" => {
                let said = event
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .or(last_error.as_deref())
                    .unwrap_or("no details");
                return Some(Err(Reported {
                    message: excerpt(said),
                    final_: false,
                }));
            }
            // Codex reports a lost stream as `error` and reconnects by itself: it only
            // matters if the turn then fails or ends without an answer.
            "error" => {
                last_error = event
                    .get("message")
                    .or_else(|| event.pointer("/error/message"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            _ => {}
        }
    }
    if !seen {
        return None;
    }
    match (message, last_error) {
        (Some(text), _) => {
            response.text = text;
            Some(Ok(response))
        }
        (None, Some(error)) => Some(Err(Reported {
            message: excerpt(&error),
            final_: false,
        })),
        (None, None) => None,
    }
}

/// `gemini --output-format json`: `response`, token counts per model under `stats`, or
/// an `error` object.
fn gemini(stdout: &str) -> Option<Result<Response, Reported>> {
    let parsed: Value = serde_json::from_str(stdout.trim()).ok()?;
    if let Some(error) = parsed.get("error").filter(|e| !e.is_null()) {
        let said = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no details");
        let message = match error.get("code").and_then(Value::as_u64) {
            Some(code) => format!("{} (code {code})", excerpt(said)),
            None => excerpt(said),
        };
        return Some(Err(Reported {
            message,
            final_: false,
        }));
    }
    let text = parsed.get("response").and_then(Value::as_str)?;
    let mut response = Response {
        text: text.to_string(),
        ..Response::default()
    };
    if let Some(models) = parsed.pointer("/stats/models").and_then(Value::as_object) {
        for stats in models.values() {
            let count = |field: &str| {
                stats
                    .pointer(&format!("/tokens/{field}"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            };
            response.tokens_in = response.tokens_in.saturating_add(count("prompt"));
            response.tokens_out = response.tokens_out.saturating_add(count("candidates"));
        }
    }
    Some(Ok(response))
}

/// Whether a message reads like a failure that passes: rate limits, overload, 5xx,
/// timeouts, dropped connections. Status codes count as whole numbers only (`500`, not
/// the `500` in `250000`), and an explicit 4xx other than 408 and 429 is final.
fn transient_words(message: &str) -> bool {
    let lower = message.to_lowercase();
    let codes: Vec<u16> = lower
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| n.len() == 3)
        .filter_map(|n| n.parse().ok())
        .collect();
    if codes
        .iter()
        .any(|c| (400..500).contains(c) && *c != 408 && *c != 429)
    {
        return false;
    }
    codes.iter().any(|c| matches!(c, 408 | 429 | 500..=599))
        || [
            "rate limit",
            "rate_limit",
            "overloaded",
            "timed out",
            "timeout",
            "connection reset",
            "econnreset",
            "temporarily",
        ]
        .iter()
        .any(|word| lower.contains(word))
}

/// The last 300 characters of `text` that matter, on one line.
fn excerpt(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let count = line.chars().count();
    if count <= 300 {
        return line;
    }
    let skip = line.char_indices().nth(count - 300).map_or(0, |(at, _)| at);
    format!("…{}", &line[skip..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_is_error_fails_even_when_the_subtype_says_success() {
        let out = r#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: 529 overloaded","session_id":"s1"}"#;
        let Some(Err(error)) = claude(out) else {
            panic!("an error")
        };
        assert!(error.message.contains("529"));
        assert!(transient_words(&error.message));
    }

    #[test]
    fn claude_permission_denials_make_the_answer_partial() {
        let out = r#"{"type":"result","subtype":"success","is_error":false,"result":"done","total_cost_usd":0.0123,
            "usage":{"input_tokens":10,"cache_read_input_tokens":90,"output_tokens":7},"session_id":"s1",
            "permission_denials":[{"tool_name":"Bash","tool_use_id":"t1","tool_input":{"command":"rm -rf /"}}]}"#;
        let Some(Ok(response)) = claude(out) else {
            panic!("an answer")
        };
        assert_eq!(response.text, "done");
        assert_eq!((response.tokens_in, response.tokens_out), (100, 7));
        assert_eq!(response.cost_usd, 0.0123);
        assert_eq!(response.session.as_deref(), Some("s1"));
        assert_eq!(
            response.partial.as_deref(),
            Some("claude was refused 1 tool use: Bash")
        );
    }

    #[test]
    fn codex_reads_the_last_agent_message_and_sums_usage_in_both_formats() {
        let out = [
            r#"{"type":"thread.started","thread_id":"t-1"}"#,
            r#"{"type":"item.completed","item":{"id":"item_0","type":"reasoning","text":"thinking"}}"#,
            r#"{"type":"item.completed","item":{"id":"item_1","item_type":"assistant_message","text":"first"}}"#,
            r#"{"type":"turn.completed","usage":{"input_tokens":120,"cached_input_tokens":20,"output_tokens":30}}"#,
            r#"{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"final"}}"#,
            r#"{"type":"turn.completed","usage":{"input_tokens":5,"output_tokens":6}}"#,
        ]
        .join("\n");
        let Some(Ok(response)) = codex(&out) else {
            panic!("an answer")
        };
        assert_eq!(response.text, "final");
        assert_eq!((response.tokens_in, response.tokens_out), (125, 36));
        assert_eq!(response.session.as_deref(), Some("t-1"));
        let failed = r#"{"type":"turn.failed","error":{"message":"stream error: 503"}}"#;
        assert!(matches!(codex(failed), Some(Err(e)) if e.message.contains("503")));
    }

    #[test]
    fn gemini_reads_response_and_token_stats() {
        let out = r#"{"response":"hi","stats":{"models":{"gemini-2.5-pro":{"tokens":{"prompt":11,"candidates":3,"total":14}}}}}"#;
        let Some(Ok(response)) = gemini(out) else {
            panic!("an answer")
        };
        assert_eq!(
            (
                response.text.as_str(),
                response.tokens_in,
                response.tokens_out
            ),
            ("hi", 11, 3)
        );
        let error = r#"{"error":{"type":"ApiError","message":"quota exceeded","code":429}}"#;
        assert!(
            matches!(gemini(error), Some(Err(e)) if e.message == "quota exceeded (code 429)" && transient_words(&e.message))
        );
    }

    fn argv(preset: &str, model: Option<&str>) -> Vec<String> {
        let mut spec = Spec::builtin(preset).expect("a preset");
        spec.model = None;
        let provider = Command::new(&spec, Arc::new(Prices::default())).expect("a provider");
        let request = Request {
            node: "n".into(),
            agent: "a".into(),
            model: model.map(str::to_string),
            system: Some("SYS".into()),
            prompt: "PROMPT".into(),
            tools: Vec::new(),
            shape: super::super::Shape::Result,
            max_items: None,
            summary: None,
            attempt: 1,
        };
        let prompt = provider.prompt(&request);
        provider.args(&request, &prompt)
    }

    #[test]
    fn each_preset_builds_its_cli_arguments() {
        assert_eq!(
            argv("codex", Some("gpt-5")),
            ["exec", "--json", "--model", "gpt-5", "-"]
        );
        assert_eq!(argv("ollama", Some("qwen3")), ["run", "qwen3"]);
        assert_eq!(argv("ollama", None), ["run", "llama3.2"]);
        assert_eq!(argv("llm", Some("4o")), ["-m", "4o", "-s", "SYS"]);
        // gemini takes the prompt as `-p`, with the system prompt in front.
        assert_eq!(
            argv("gemini", None),
            ["--output-format", "json", "--prompt=SYS\n\nPROMPT"]
        );
    }

    #[test]
    fn codex_stream_errors_are_not_failures_when_the_turn_completes() {
        let out = [
            r#"{"type":"error","message":"Reconnecting... 1/5 (stream disconnected before completion)"}"#,
            r#"{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"done"}}"#,
            r#"{"type":"turn.completed","usage":{"input_tokens":1,"output_tokens":1}}"#,
        ]
        .join("\n");
        assert!(matches!(codex(&out), Some(Ok(r)) if r.text == "done"));
        let lost = r#"{"type":"error","message":"stream disconnected: 503"}"#;
        assert!(matches!(codex(lost), Some(Err(e)) if e.message.contains("503")));
    }

    #[test]
    fn status_codes_count_as_whole_numbers_and_4xx_is_final() {
        assert!(transient_words("API Error: 529 overloaded"));
        assert!(transient_words("HTTP 503 from upstream"));
        assert!(!transient_words(
            "API Error: 400 prompt is too long: 250000 tokens > 200000"
        ));
        assert!(!transient_words("read 1500 lines"));
        assert!(transient_words("request timed out"));
    }

    #[test]
    fn a_json_object_that_is_not_a_result_is_not_a_claude_answer() {
        assert!(claude("{}").is_none());
        assert!(claude(r#"{"version":"1.0"}"#).is_none());
    }
}
