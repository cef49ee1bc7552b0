//! What `openai` and `anthropic` share: one pooled HTTP client per provider, and the
//! mapping from an HTTP exchange to an answer or a classified failure.
//!
//! - 429, 5xx (and Anthropic's 529), timeouts and dropped connections are worth another
//!   attempt; `Retry-After` (seconds or an HTTP date) and `retry-after-ms` say when.
//! - 400, 401, 403 and 404 fail at once, with a message that says what to fix.
//! - Nothing here ever formats the key: messages quote at most what the server said,
//!   with the key redacted from it.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::secret::Secret;
use super::ProviderError;

/// A client that keeps connections open between calls, and follows no redirect: the
/// client drops `Authorization` on a redirect to another origin but not Anthropic's
/// `x-api-key`, and either way the prompt would go to whatever host the redirect names.
pub fn client(timeout: Option<Duration>) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout.unwrap_or(Duration::from_secs(600)))
        .user_agent(concat!("pai/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot start the HTTP client: {e}"))
}

/// Who is being called, for messages.
pub struct Endpoint<'a> {
    /// `openai` or `anthropic`: the provider's name.
    pub provider: &'a str,
    pub url: &'a str,
    /// The variable the key came from, named in the help for 401 and 403.
    pub key_variable: Option<&'a str>,
    pub key: Option<&'a Secret>,
}

impl Endpoint<'_> {
    fn redact(&self, text: &str) -> String {
        match self.key {
            Some(key) => key.redact(text),
            None => text.to_string(),
        }
    }

    /// What the server said, for a message: redacted first, then cut, so that a key
    /// across the cut cannot leave its first characters behind.
    fn quote(&self, said: &str) -> String {
        excerpt(&self.redact(said))
    }
}

/// Posts `body` and returns the JSON answer, or the failure classified.
pub async fn post_json(
    request: reqwest::RequestBuilder,
    body: &Value,
    endpoint: &Endpoint<'_>,
) -> Result<Value, ProviderError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| ProviderError::fatal(format!("cannot encode the request: {e}")))?;
    let response = request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(bytes)
        .send()
        .await
        .map_err(|e| transport_error(&e, endpoint))?;
    let status = response.status();
    let retry_after = retry_after(response.headers(), SystemTime::now());
    // The key out of everything the server said, before any of it is parsed, quoted or
    // kept: an answer that repeats the key wrote it into `output.md` and the manifest.
    let text = endpoint.redact(&read_body(response, endpoint).await?);
    if !status.is_success() {
        let mut error = status_error(status.as_u16(), &text, endpoint);
        error.retry_after = retry_after;
        return Err(error);
    }
    serde_json::from_str(&text).map_err(|e| {
        ProviderError::transient(format!(
            "`{}` answered with malformed JSON ({e}): {}",
            endpoint.url,
            endpoint.quote(&text)
        ))
    })
}

/// The most of an answer's body that is read: far more than any model writes, far
/// less than memory. An endpoint that sends more fails the call without a retry.
const MAX_BODY: usize = 16 << 20;

/// The body of `response` as text (UTF-8, invalid bytes replaced), read a chunk at a
/// time up to [`MAX_BODY`].
async fn read_body(
    mut response: reqwest::Response,
    endpoint: &Endpoint<'_>,
) -> Result<String, ProviderError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(&e, endpoint))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ProviderError::fatal(format!(
                "{} at `{}` answered with more than {} MiB",
                endpoint.provider,
                endpoint.url,
                MAX_BODY >> 20
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn transport_error(error: &reqwest::Error, endpoint: &Endpoint<'_>) -> ProviderError {
    let what = if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        "cannot connect".to_string()
    } else {
        // reqwest's chain names the cause: "connection closed before message completed".
        let mut message = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            message = format!("{message}: {cause}");
            source = cause.source();
        }
        message
    };
    ProviderError::transient(format!(
        "{} at `{}`: {}",
        endpoint.provider,
        endpoint.url,
        endpoint.redact(&what)
    ))
}

/// The failure an HTTP status stands for.
fn status_error(status: u16, body: &str, endpoint: &Endpoint<'_>) -> ProviderError {
    let said = server_message(body, endpoint);
    let key_help = match endpoint.key_variable {
        Some(variable) => format!("check the key in `{variable}`"),
        None => "the provider declares no key; add `key env(\"VARIABLE\")`".to_string(),
    };
    let message = match status {
        401 => format!(
            "{} refused the key (401): {said}; {key_help}",
            endpoint.provider
        ),
        403 => format!(
            "{} refused the request (403): {said}; {key_help} and that it may use this model",
            endpoint.provider
        ),
        404 => format!(
            "{} has no such model or path (404 at `{}`): {said}; check `url` and `model`",
            endpoint.provider, endpoint.url
        ),
        400 | 413 | 422 => format!(
            "{} rejected the request ({status}): {said}",
            endpoint.provider
        ),
        300..=399 => format!(
            "{} answered {status}, a redirect, which is not followed (the key would go with it): check `url` (`{}`)",
            endpoint.provider, endpoint.url
        ),
        _ => format!("{} answered {status}: {said}", endpoint.provider),
    };
    // A 429 for an exhausted quota (OpenAI's `insufficient_quota`) will not pass by waiting.
    if status == 429 && body.contains("insufficient_quota") {
        return ProviderError::fatal(format!(
            "{message}; the account's quota is used up: add credit or use another key"
        ));
    }
    if status == 429 || status == 408 || status >= 500 {
        ProviderError::transient(message)
    } else {
        ProviderError::fatal(message)
    }
}

/// The `error.message` of a JSON error body, else the start of the body, quoted.
fn server_message(body: &str, endpoint: &Endpoint<'_>) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("message"))
            .or_else(|| v.get("error"))
            .and_then(Value::as_str)
    });
    match message {
        Some(message) => endpoint.quote(message),
        None if body.trim().is_empty() => "no details".to_string(),
        None => endpoint.quote(body),
    }
}

/// At most 300 characters of `text` on one line.
fn excerpt(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}

/// How long the server asked to wait: `retry-after-ms`, `Retry-After` in seconds, or
/// `Retry-After` as an HTTP date. Capped at five minutes.
/// A token count at `pointer` in a server's answer: a whole number, or one written as
/// a float (`100.0`) or a string (`"100"`), as some compatible servers do; 0 when
/// there is none. A count is never negative, and a huge one saturates.
pub fn usage(answer: &Value, pointer: &str) -> u64 {
    match answer.pointer(pointer) {
        Some(Value::Number(n)) => n.as_u64().unwrap_or_else(|| {
            // Finite and non-negative, rounded up; `as` saturates past u64::MAX.
            n.as_f64()
                .filter(|f| f.is_finite() && *f > 0.0)
                .map_or(0, |f| f.ceil() as u64)
        }),
        Some(Value::String(text)) => text.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let wait = if let Some(ms) = header("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
    {
        Duration::try_from_secs_f64(ms / 1000.0).ok()
    } else {
        let value = header("retry-after")?.trim();
        match value.parse::<f64>() {
            Ok(seconds) => Duration::try_from_secs_f64(seconds).ok(),
            Err(_) => httpdate::parse_http_date(value)
                .ok()
                .map(|at| at.duration_since(now).unwrap_or(Duration::ZERO)),
        }
    }?;
    Some(wait.min(Duration::from_secs(300)))
}

/// The base URL without a trailing slash, joined to `path`.
pub fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_milliseconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(3)));
        headers.insert(
            "retry-after",
            HeaderValue::from_str(&httpdate::fmt_http_date(now + Duration::from_secs(7)))
                .expect("a header value"),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(7)));
        headers.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_millis(250)));
        headers.clear();
        headers.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now), None);
        headers.insert("retry-after", HeaderValue::from_static("86400"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(300)));
    }

    #[test]
    fn auth_failures_are_final_and_name_the_variable_not_the_key() {
        let key = Secret::new("sk-canary-abcdef");
        let endpoint = Endpoint {
            provider: "openai",
            url: "http://127.0.0.1:1/v1",
            key_variable: Some("OPENAI_API_KEY"),
            key: Some(&key),
        };
        let error = status_error(
            401,
            r#"{"error":{"message":"Incorrect API key provided: sk-canary-abcdef"}}"#,
            &endpoint,
        );
        assert!(!error.retryable);
        assert!(
            error.message.contains("`OPENAI_API_KEY`"),
            "{}",
            error.message
        );
        assert!(!error.message.contains("sk-canary"), "{}", error.message);
        assert!(status_error(429, "", &endpoint).retryable);
        assert!(
            !status_error(
                429,
                r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
                &endpoint
            )
            .retryable
        );
        assert!(status_error(503, "", &endpoint).retryable);
        assert!(!status_error(400, "", &endpoint).retryable);
    }

    /// A key that straddles the 300-character cut of a quoted message: it was cut
    /// first and redacted second, so its first characters survived the redaction.
    #[test]
    fn a_key_across_the_cut_of_a_quote_is_redacted_whole() {
        let key = Secret::new("sk-local-canary-ABCDEFGHIJKLMNOP");
        let endpoint = Endpoint {
            provider: "openai",
            url: "http://127.0.0.1:1/v1",
            key_variable: Some("LOCAL_API_KEY"),
            key: Some(&key),
        };
        for padding in [0, 262, 280, 299, 300] {
            let said = format!("{} Bearer {}", "x".repeat(padding), key.expose());
            let body = serde_json::json!({"error": {"message": said}}).to_string();
            let error = status_error(401, &body, &endpoint);
            assert!(!error.message.contains("sk-local"), "{}", error.message);
            assert!(!error.message.contains("sk-l"), "{}", error.message);
            let error = status_error(502, &said, &endpoint);
            assert!(!error.message.contains("sk-l"), "{}", error.message);
        }
    }
}
