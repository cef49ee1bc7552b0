//! One agent or exec call: prompt rendering, the provider call with timeout and retries,
//! structured-answer validation, and the summary that flows up.

use std::sync::Arc;
use std::time::Duration;

use handlebars::{Context, Handlebars};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::provider::{Provider, ProviderError, Request, Response, Shape, Spent};
use crate::check::scope::ItemRef;

/// What a call produced, before it becomes a manifest.
#[derive(Clone, Debug, Default)]
pub struct CallResult {
    pub ok: bool,
    pub text: String,
    pub value: Option<Value>,
    pub error: Option<String>,
    pub attempts: u32,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    /// How long the call took, measured where it ran.
    pub duration: Duration,
    /// The hash of the rendered inputs, for `--resume`.
    pub inputs_hash: Option<String>,
    /// Why a valid answer is only partly done (the node is then `partial`).
    pub partial: Option<String>,
    /// The provider's conversation id.
    pub session: Option<String>,
    /// The run limit that kept it from being asked again, when one did.
    pub stopped: Option<String>,
}

impl CallResult {
    /// Adds what one attempt cost, saturating: the counts are a server's, and
    /// 2^64 - 1 wrapped to 0.
    fn spend(&mut self, spent: Spent) {
        self.tokens_in = self.tokens_in.saturating_add(spent.tokens_in);
        self.tokens_out = self.tokens_out.saturating_add(spent.tokens_out);
        self.cost_usd += spent.cost_usd;
    }
}

/// A rendered prompt, its system prompt, and the hash of both with the model.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub prompt: String,
    pub system: Option<String>,
    pub hash: String,
}

/// The names an agent's templates are registered under in the run's registry, made
/// once per agent rather than once per call.
#[derive(Clone, Debug)]
pub struct TemplateNames {
    pub prompt: String,
    pub system: String,
}

impl TemplateNames {
    /// The names of agent `item`'s templates: `module:index:prompt` and `...:system`.
    pub fn of(item: ItemRef) -> TemplateNames {
        let key = format!("{}:{}", item.module.0, item.index);
        TemplateNames {
            prompt: format!("{key}:prompt"),
            system: format!("{key}:system"),
        }
    }
}

/// Renders an agent's templates (registered under `names`) with `data`.
pub fn prepare(
    registry: &Handlebars<'_>,
    names: &TemplateNames,
    data: Value,
    model: Option<&str>,
) -> Result<Prepared, String> {
    // The context owns the data: `render` would copy it whole first, which for a fold
    // over 10,000 results doubled the run's peak memory.
    let context = Context::from(data);
    let prompt = if registry.has_template(&names.prompt) {
        render_named(registry, &names.prompt, &context)?
    } else {
        String::new()
    };
    let system = registry
        .has_template(&names.system)
        .then(|| render_named(registry, &names.system, &context))
        .transpose()?;
    let hash = inputs_hash(&[
        model.unwrap_or(""),
        system.as_deref().unwrap_or(""),
        &prompt,
    ]);
    Ok(Prepared {
        prompt,
        system,
        hash,
    })
}

/// Refuses a prompt larger than the agent's `context`: the checker proves that none
/// is, from bounds; this holds the run to it where a bound was assumed (a file read,
/// a full `output`), and nothing is sent that the model could not hold. What a
/// provider adds for a structured answer (its JSON Schema) and a retry's reason count.
fn within_context(request: &Request, context: Option<u64>) -> Result<(), String> {
    let Some(context) = context else {
        return Ok(());
    };
    let schema = super::provider::schema::instructions(request).len();
    let bytes = request.prompt.len() + request.system.as_ref().map_or(0, String::len) + schema;
    let tokens = crate::check::budget::tokens_of_bytes(bytes);
    if tokens > context {
        let with_schema = if schema > 0 {
            format!(
                " with the JSON Schema its answer must match ({} tokens)",
                crate::diagnostics::thousands(crate::check::budget::tokens_of_bytes(schema))
            )
        } else {
            String::new()
        };
        return Err(format!(
            "the prompt is {} tokens{with_schema}, more than the agent's `context {}`, and was not sent; `pai plan` shows each agent's worst case from what it is handed",
            crate::diagnostics::thousands(tokens),
            crate::diagnostics::thousands(context)
        ));
    }
    Ok(())
}

/// A template registry in strict mode with escaping off.
pub fn registry() -> Handlebars<'static> {
    let mut handlebars = Handlebars::new();
    handlebars.set_strict_mode(true);
    handlebars.register_escape_fn(handlebars::no_escape);
    handlebars
}

/// Renders a registered template. The data is never rendered as a template itself: a
/// model's answer containing `{{x}}` stays literal.
pub fn render_named(
    registry: &Handlebars<'_>,
    name: &str,
    context: &Context,
) -> Result<String, String> {
    // handlebars renders into an 8 KB buffer; keep only what the prompt needs, since
    // thousands of prompts may wait for a provider at once.
    let mut text = registry
        .render_with_context(name, context)
        .map_err(|e| format!("cannot render the prompt: {}", e.to_string().to_lowercase()))?;
    text.shrink_to_fit();
    Ok(text)
}

/// The hash of everything a call's answer depends on, for `--resume`.
pub fn inputs_hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex(hasher.finalize().get(..12).unwrap_or_default())
}

/// `bytes` in lowercase hexadecimal, two digits a byte, in one allocation.
pub(crate) fn hex(bytes: &[u8]) -> String {
    // A table, not `write!("{:02x}")`: the formatter cost about 50 instructions a byte,
    // twice on every call (the inputs hash, `sim`'s tag).
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(2 * bytes.len());
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    text
}

/// How an agent call is made.
#[derive(Clone, Debug)]
pub struct Policy {
    pub timeout: Duration,
    pub retries: u32,
    /// The agent's `summary` budget, in tokens: a structured answer is handed on whole,
    /// so it must fit it (the checker counted it at that size).
    pub summary: u64,
    /// The first backoff; it doubles on each retry, with jitter.
    pub backoff: Duration,
    /// The agent's `context`, which no prompt sent may pass.
    pub context: Option<u64>,
    /// What the run's `--max-tokens` and `--max-cost` left when the call started: no
    /// attempt is made once its earlier attempts have spent that.
    pub left: Left,
}

/// What the run's limits left for one call.
#[derive(Clone, Copy, Debug, Default)]
pub struct Left {
    /// `--max-tokens` and the tokens it left.
    pub tokens: Option<(u64, u64)>,
    /// `--max-cost` and the dollars it left.
    pub cost: Option<(f64, f64)>,
}

impl Left {
    /// The limit `result`'s attempts have reached, if any.
    fn reached(&self, result: &CallResult) -> Option<String> {
        if let Some((max, left)) = self.tokens {
            if result.tokens_in.saturating_add(result.tokens_out) >= left {
                return Some(format!("reached --max-tokens {max}"));
            }
        }
        if let Some((max, left)) = self.cost {
            if result.cost_usd >= left {
                return Some(format!("reached --max-cost {}", super::dollars(max)));
            }
        }
        None
    }
}

/// Calls the provider until it answers validly, retrying transient failures and
/// malformed structured answers.
pub async fn call_agent(
    provider: Arc<dyn Provider>,
    request: Request,
    policy: Policy,
) -> CallResult {
    let started = std::time::Instant::now();
    let mut result = call_agent_inner(provider, request, policy).await;
    result.duration = started.elapsed();
    result
}

async fn call_agent_inner(
    provider: Arc<dyn Provider>,
    mut request: Request,
    policy: Policy,
) -> CallResult {
    let mut result = CallResult::default();
    let mut transient_retries = policy.retries;
    // A malformed structured answer is asked for again once, with what was wrong.
    let mut malformed_retries = 1u32;
    for attempt in 1.. {
        // Checked before every attempt: a retry's prompt carries the reason too.
        if let Err(error) = within_context(&request, policy.context) {
            // On a retry, what was wrong with the answer before stays the news.
            result.error = Some(match result.error.take() {
                Some(previous) => {
                    format!("{previous}; it was not asked again, since with the reason {error}")
                }
                None => error,
            });
            break;
        }
        request.attempt = attempt;
        result.attempts = attempt;
        let answer = tokio::time::timeout(policy.timeout, provider.complete(&request)).await;
        let error = match answer {
            Ok(Ok(response)) => {
                result.spend(Spent {
                    tokens_in: response.tokens_in,
                    tokens_out: response.tokens_out,
                    cost_usd: response.cost_usd,
                });
                result.session = response.session.clone().or(result.session.take());
                let checked =
                    validate(&request.shape, &response, request.max_items).and_then(|value| {
                        let answer = value.as_ref();
                        within_summary(answer, policy.summary).map(|()| value)
                    });
                match checked {
                    Ok(value) => {
                        result.ok = true;
                        result.text = response.text;
                        result.value = value;
                        result.partial = response.partial;
                        result.error = None;
                        return result;
                    }
                    Err(problem) => {
                        result.error = Some(format!("malformed answer: {problem}"));
                        if malformed_retries == 0 {
                            break;
                        }
                        malformed_retries -= 1;
                        if let Some(reason) = policy.left.reached(&result) {
                            result.stopped = Some(reason);
                            break;
                        }
                        // Asked again once only, so the prompt is still the original
                        // here: no copy of it is kept for every call, just in case.
                        request.prompt.push_str(&format!(
                            "\n\nYour previous answer was not valid: {problem}. Answer again with JSON of the requested shape only."
                        ));
                        continue;
                    }
                }
            }
            Ok(Err(error)) => {
                result.spend(error.spent);
                error
            }
            Err(_) => ProviderError::transient(format!(
                "timed out after {}",
                humantime::format_duration(policy.timeout)
            )),
        };
        result.error = Some(error.message.clone());
        if !error.retryable || transient_retries == 0 {
            break;
        }
        transient_retries -= 1;
        if let Some(reason) = policy.left.reached(&result) {
            result.stopped = Some(reason);
            break;
        }
        let wait = backoff(&policy, &request.node, attempt);
        // The provider's own `Retry-After` wins when it asks for longer.
        tokio::time::sleep(error.retry_after.map_or(wait, |asked| asked.max(wait))).await;
    }
    if let (Some(reason), Some(error)) = (&result.stopped, &mut result.error) {
        error.push_str(&format!("; it was not asked again: the run {reason}"));
    }
    result
}

/// Exponential backoff with deterministic jitter (±50%, from the node and attempt).
fn backoff(policy: &Policy, node: &str, attempt: u32) -> Duration {
    let base = policy
        .backoff
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(10));
    let digest = Sha256::digest(format!("{node}#{attempt}").as_bytes());
    let spread = f64::from(digest.first().copied().unwrap_or(128)) / 255.0; // 0..=1
    base.mul_f64(0.5 + spread).min(Duration::from_secs(30))
}

/// Checks a structured answer against its shape; returns the value to keep.
fn validate(
    shape: &Shape,
    response: &Response,
    max_items: Option<usize>,
) -> Result<Option<Value>, String> {
    if *shape == Shape::Result {
        return Ok(None);
    }
    let value = match &response.value {
        Some(value) => value.clone(),
        None => serde_json::from_str(extract_json(&response.text))
            .map_err(|e| format!("the answer is not JSON ({e})"))?,
    };
    check_answer(shape, &value, max_items)?;
    Ok(Some(value))
}

/// Whether `value` has the shape of an answer, and no more elements than `max_items`
/// when a `for` bounds it.
fn check_answer(shape: &Shape, value: &Value, max_items: Option<usize>) -> Result<(), String> {
    check_shape(shape, value, "the answer")?;
    match (max_items, value) {
        (Some(max), Value::Array(items)) if items.len() > max => Err(format!(
            "the answer has {} elements, more than the {max} allowed",
            items.len()
        )),
        _ => Ok(()),
    }
}

/// What an answer recorded by an earlier run must still fit to be reused.
pub(super) struct Fits<'a> {
    pub shape: &'a Shape,
    /// The `max` of the `for` it feeds, if one bounds it.
    pub max_items: Option<usize>,
    /// The agent's `summary` budget.
    pub summary: u64,
}

/// Whether `value`, recorded by an earlier run, is still an answer its agent could give:
/// a `result` agent records none; any other must have one of its shape, within
/// `max_items` when a `for` bounds it, its summary budget and its texts' bound (all of
/// which the checker counted it at).
pub(super) fn still_fits(fits: &Fits<'_>, value: Option<&Value>) -> bool {
    match (fits.shape, value) {
        (Shape::Result, _) => true,
        (_, None) => false,
        (shape, Some(value)) => {
            check_answer(shape, value, fits.max_items).is_ok()
                && within_summary(Some(value), fits.summary).is_ok()
        }
    }
}

/// A structured answer, refused when it is larger than the `summary` budget it is
/// handed on at: a list of 1,000 elements went whole into a prompt whose budget counted
/// its summary. It is measured as it enters a prompt: its JSON, and the fence around
/// each of its strings.
fn within_summary(value: Option<&Value>, summary: u64) -> Result<(), String> {
    if let Some(value) = value {
        let tokens = crate::check::budget::answer_tokens(value);
        if tokens > summary {
            return Err(format!(
                "the answer is {tokens} tokens with the fences its strings enter a prompt in, more than the agent's `summary {summary}`; answer more briefly"
            ));
        }
    }
    Ok(())
}

/// The JSON inside an answer that may wrap it in a Markdown code fence.
fn extract_json(text: &str) -> &str {
    let trimmed = text.trim();
    let Some(start) = trimmed.find("```") else {
        return trimmed;
    };
    let after = &trimmed[start + 3..];
    let body_start = after.find('\n').map_or(0, |i| i + 1);
    let body = &after[body_start..];
    body.find("```").map_or(body, |end| &body[..end]).trim()
}

/// Whether `value` has the shape `shape` (elements and fields included).
pub(crate) fn fits_shape(shape: &Shape, value: &Value) -> bool {
    check_shape(shape, value, "the answer").is_ok()
}

fn check_shape(shape: &Shape, value: &Value, at: &str) -> Result<(), String> {
    let ok = match (shape, value) {
        (Shape::Text | Shape::Path | Shape::Duration | Shape::Result, Value::String(_)) => true,
        (Shape::Number, Value::Number(_)) | (Shape::Bool, Value::Bool(_)) => true,
        (Shape::List { element, text_max }, Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let at = format!("{at}[{i}]");
                check_shape(element, item, &at)?;
                // `list<text max N>`: the checker counted each text at N tokens.
                if let (Some(max), Value::String(text)) = (text_max, item) {
                    let limit = max.saturating_mul(4);
                    if text.len() as u64 > limit {
                        return Err(format!(
                            "{at} is {} bytes, more than the {limit} (`list<text max {max}>`, 4 bytes a token) its type allows; answer each more briefly",
                            text.len()
                        ));
                    }
                }
            }
            true
        }
        (Shape::Record(fields), Value::Object(object)) => {
            for (name, field) in fields {
                let item = object
                    .get(name)
                    .ok_or_else(|| format!("{at} has no field `{name}`"))?;
                check_shape(field, item, &format!("{at}.{name}"))?;
            }
            // A field the type does not declare is handed on all the same (`{{#each r}}`
            // walks it), past what the checker counted.
            if let Some(extra) = object.keys().find(|k| !fields.iter().any(|(n, _)| n == *k)) {
                let shown: String = extra.chars().take(40).collect();
                return Err(format!(
                    "{at} has a field `{shown}` its type does not declare; answer with only {}",
                    crate::diagnostics::backticked(fields.iter().map(|(n, _)| n))
                ));
            }
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{at} should be {}, not {}",
            describe(shape),
            shown_briefly(value)
        ))
    }
}

/// The most characters of a malformed answer quoted back: the reason goes into the
/// prompt that asks again, and a 40,000-character answer quoted whole put the retry's
/// prompt far past what the checker proved.
const QUOTED_ANSWER: usize = 200;

/// `value` as JSON, cut to [`QUOTED_ANSWER`] characters.
fn shown_briefly(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(QUOTED_ANSWER) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

fn describe(shape: &Shape) -> String {
    match shape {
        Shape::Text | Shape::Result => "a string".to_string(),
        Shape::Path => "a path string".to_string(),
        Shape::Duration => "a duration string".to_string(),
        Shape::Number => "a number".to_string(),
        Shape::Bool => "true or false".to_string(),
        Shape::List { element, .. } => format!("a list of {}", describe(element)),
        Shape::Record(fields) => format!(
            "an object with {}",
            crate::diagnostics::backticked(fields.iter().map(|(n, _)| n))
        ),
    }
}

/// The first non-empty line of `text`, cut to `budget` tokens (4 bytes each) at a
/// character boundary. Returns the summary and whether it was cut.
pub fn summarize(text: &str, budget: u64) -> (String, bool) {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let limit = usize::try_from(budget.saturating_mul(4)).unwrap_or(usize::MAX);
    if line.len() <= limit {
        return (line.to_string(), false);
    }
    let mut end = limit;
    while end > 0 && !line.is_char_boundary(end) {
        end -= 1;
    }
    (line[..end].to_string(), true)
}

/// Runs an `exec` step: argv without a shell, in `dir`, with a timeout.
pub async fn call_exec(
    argv: Vec<String>,
    dir: std::path::PathBuf,
    timeout: Duration,
) -> CallResult {
    let started = std::time::Instant::now();
    let mut result = call_exec_inner(argv, dir, timeout).await;
    result.duration = started.elapsed();
    result
}

async fn call_exec_inner(
    argv: Vec<String>,
    dir: std::path::PathBuf,
    timeout: Duration,
) -> CallResult {
    let mut result = CallResult {
        attempts: 1,
        ..CallResult::default()
    };
    let Some((program, args)) = argv.split_first() else {
        result.error = Some("`exec` was given an empty argv".to_string());
        return result;
    };
    let mut command = tokio::process::Command::new(program);
    crate::process::restore_for_child(&mut command);
    command
        .args(args)
        .current_dir(&dir)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = match super::child::Group::spawn(&mut command) {
        Ok(child) => child,
        Err(error) => {
            result.error = Some(format!(
                "cannot run `{program}`: {}",
                error.to_string().to_lowercase()
            ));
            return result;
        }
    };
    match tokio::time::timeout(timeout, super::child::wait_capped(child)).await {
        Err(_) => {
            result.error = Some(format!(
                "`{program}` timed out after {}",
                humantime::format_duration(timeout)
            ))
        }
        Ok(Err(error)) => result.error = Some(error.describe(program)),
        Ok(Ok(output)) => {
            // The step runs with the whole environment: keys it prints are redacted
            // before they reach its manifest, its output or the next prompt.
            let redact = |bytes: &[u8]| {
                crate::run::provider::secret::redact_environment(
                    String::from_utf8_lossy(bytes).into_owned(),
                )
            };
            let stdout = redact(&output.stdout);
            let stderr = redact(&output.stderr);
            result.ok = output.status.success();
            if !result.ok {
                let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                result.error = Some(match output.status.code() {
                    Some(code) => format!("`{program}` exited with status {code}: {first}"),
                    None => format!("`{program}` was killed by a signal: {first}"),
                });
            }
            result.text = match (stdout.trim().is_empty(), stderr.trim().is_empty()) {
                (_, true) => stdout,
                (true, false) => stderr,
                (false, false) => format!("{stdout}\n--- stderr\n{stderr}"),
            };
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorded answer is reused only within everything the checker counted it at:
    /// its shape, its summary budget (with fences) and its texts' bound.
    #[test]
    fn a_recorded_answer_is_reused_only_within_its_bounds() {
        let list = |text_max| Shape::List {
            element: Box::new(Shape::Text),
            text_max,
        };
        let fits = |shape, summary| {
            let fits = Fits {
                shape: &shape,
                max_items: None,
                summary,
            };
            still_fits(
                &fits,
                Some(&serde_json::json!(["twenty bytes of text", "ok"])),
            )
        };
        assert!(fits(list(None), 100));
        assert!(fits(list(Some(5)), 100));
        assert!(!fits(list(Some(4)), 100));
        // 29 bytes of JSON and two fences of 23: 75 bytes, 19 tokens.
        assert!(fits(list(None), 19));
        assert!(!fits(list(None), 18));
        // A bounded list inside a record is held to its bound too.
        let record = |text_max| Shape::Record(vec![("steps".to_string(), list(text_max))]);
        let answer = serde_json::json!({ "steps": ["twenty bytes of text"] });
        let fits = |shape| {
            let fits = Fits {
                shape: &shape,
                max_items: None,
                summary: 100,
            };
            still_fits(&fits, Some(&answer))
        };
        assert!(fits(record(Some(5))));
        assert!(!fits(record(Some(4))));
    }

    #[test]
    fn an_inputs_hash_is_stable_across_versions() {
        // `--resume` compares it with the one in a manifest written by an earlier pai:
        // the 24 hex digits of SHA-256 over each part's length (u64, little-endian) and
        // bytes, as computed independently (Python's hashlib).
        assert_eq!(
            inputs_hash(&["sonnet", "", "Handle i7."]),
            "079069bc9da9a68cbe64803c"
        );
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn summaries_are_the_first_line_cut_at_a_char_boundary() {
        assert_eq!(
            summarize("\n  Done.\nMore", 80),
            ("Done.".to_string(), false)
        );
        let (cut, was_cut) = summarize(&"é".repeat(10), 1);
        assert!(was_cut);
        assert_eq!(cut, "éé");
    }

    #[test]
    fn rendering_is_strict_and_never_escapes() {
        let data = serde_json::json!({ "x": "<b>&", "y": "{{x}}" });
        let mut registry = registry();
        registry
            .register_template_string("t", "{{x}} {{y}}")
            .unwrap();
        registry
            .register_template_string("missing", "{{missing}}")
            .unwrap();
        let context = Context::from(data);
        assert_eq!(
            render_named(&registry, "t", &context).unwrap(),
            "<b>& {{x}}"
        );
        assert!(render_named(&registry, "missing", &context).is_err());
    }

    #[test]
    fn structured_answers_are_checked_against_their_shape() {
        let shape = Shape::list(Shape::Record(vec![("claim".into(), Shape::Text)]));
        let good = Response {
            text: "```json\n[{\"claim\": \"a\"}]\n```".into(),
            ..Response::default()
        };
        assert!(validate(&shape, &good, None).is_ok());
        assert_eq!(
            validate(&shape, &good, Some(0)).unwrap_err(),
            "the answer has 1 elements, more than the 0 allowed"
        );
        let bad = Response {
            text: "[{\"claim\": 1}]".into(),
            ..Response::default()
        };
        assert_eq!(
            validate(&shape, &bad, None).unwrap_err(),
            "the answer[0].claim should be a string, not 1"
        );
        // A huge malformed answer is quoted by its start: the reason goes into the
        // prompt that asks again.
        let huge = Response {
            text: format!("{{\"junk\": \"{}\"}}", "A".repeat(40_000)),
            ..Response::default()
        };
        let reason = validate(&shape, &huge, None).unwrap_err();
        assert!(reason.len() < 400, "{} bytes", reason.len());
        assert!(reason.ends_with('…'), "{reason}");
    }
}
