//! Real providers through the real binary: `openai` and `anthropic` against scripted
//! servers on 127.0.0.1, `command` against fake CLIs that print the JSON shapes of
//! `claude -p` and `codex exec --json`. Nothing here reaches beyond loopback.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::fake_server::{anthropic_answer, openai_answer, FakeServer, Reply};

/// A scratch directory with a workflow in it, removed when the test ends.
struct Scratch(support::scratch::Scratch);

impl Scratch {
    fn new(name: &str) -> Scratch {
        Scratch(support::scratch::Scratch::new(&format!("providers-{name}")))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    /// An executable shell script standing in for an agent CLI.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.write(name, &format!("#!/bin/sh\n{body}\n"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        path
    }

    fn runs(&self) -> PathBuf {
        self.path("runs")
    }

    /// The manifest of node `id` in the only run.
    fn manifest(&self, id: &str) -> serde_yaml::Value {
        let mut path = only_run(&self.runs());
        for segment in id.split('/') {
            path.push(segment);
        }
        let text = std::fs::read_to_string(path.join("manifest.yaml"))
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        serde_yaml::from_str(&text).expect("manifest parses")
    }

    /// `pai run FILE` with `env` set, writing runs here.
    fn run(&self, file: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pai"));
        command
            .arg("run")
            .arg(file)
            .args(["--runs-dir", self.runs().to_str().expect("utf-8")])
            .args(["-q", "--yes"])
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("PAI_PROVIDER")
            .env_remove("OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY");
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().expect("pai runs")
    }
}

fn only_run(runs: &Path) -> PathBuf {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(runs)
        .expect("runs dir exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    entries.pop().expect("a run")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A workflow whose one agent, `judge`, answers a record through `provider`.
fn judge_workflow(provider: &str, agent_settings: &str) -> String {
    format!(
        r#"{provider}

type Verdict {{
  ok: bool,
  reason: text
}}

agent judge(claim: text max 200) -> Verdict {{
  provider api
  model "gpt-4o-mini"
  context 8k
  summary 100
  {agent_settings}
  prompt "Judge {{{{claim}}}}"
}}

workflow main(claim: text max 200) -> Verdict {{
  return judge(claim: claim)
}}
"#
    )
}

fn openai_provider(server: &FakeServer) -> String {
    format!(
        r#"provider api {{
  kind "openai"
  url "{}/v1"
  key env("PAI_TEST_OPENAI_KEY")
}}"#,
        server.url()
    )
}

/// A workflow that runs one `step` per element of `items` through `provider`.
fn fan_out_workflow(provider: &str, model: &str) -> String {
    format!(
        r#"{provider}

agent step(n: text max 10) {{
  provider api
  model "{model}"
  context 4k
  summary 20
  prompt "Step {{{{n}}}}"
}}

workflow main(items: list<text max 10> max 20) {{
  let done = for n in items max 20 {{ step(n: n) }}
  return done
}}
"#
    )
}

/// The judge workflow on an `anthropic` provider at `server`, with `extra` provider
/// settings and `agent_settings`.
fn anthropic_judge(server: &FakeServer, extra: &str, agent_settings: &str) -> String {
    let provider = format!(
        "provider api {{\n  kind \"anthropic\"\n  url \"{}\"\n  key env(\"PAI_TEST_ANTHROPIC_KEY\"){extra}\n}}",
        server.url()
    );
    judge_workflow(&provider, agent_settings)
        .replace("model \"gpt-4o-mini\"", "model \"claude-sonnet-4-5\"")
}

const VERDICT: &str = r#"{"answer":{"ok":true,"reason":"it holds"}}"#;
const KEY: (&str, &str) = ("PAI_TEST_OPENAI_KEY", "sk-test-openai-0000");

#[test]
fn openai_answers_a_structured_call_with_usage_and_cost() {
    let scratch = Scratch::new("openai-ok");
    let server = FakeServer::start(vec![Reply::json(openai_answer(VERDICT, 1_000, 200))]);
    let file = scratch.write(
        "judge.pai",
        &judge_workflow(&openai_provider(&server), "retries 0"),
    );
    let output = scratch.run(&file, &["--arg", "claim=water is wet"], &[KEY]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let judge = scratch.manifest("main/judge");
    assert_eq!(judge["status"], "complete");
    assert_eq!(judge["value"]["reason"], "it holds");
    assert_eq!(judge["tokens"]["input"], 1_000);
    assert_eq!(judge["tokens"]["output"], 200);
    // gpt-4o-mini: $0.15 in and $0.60 out per million tokens.
    let cost = judge["cost_usd"].as_f64().expect("a cost");
    assert!((cost - 0.00027).abs() < 1e-9, "{cost}");
    let root = scratch.manifest("main");
    assert_eq!(root["subtree"]["agent_calls"], 1);
    assert_eq!(root["subtree"]["tokens"]["input"], 1_000);

    let requests = server.requests();
    let first = requests.first().expect("a request");
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/v1/chat/completions");
    assert_eq!(
        first.header("authorization"),
        Some("Bearer sk-test-openai-0000")
    );
    let body = first.json();
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["properties"]["answer"]["required"],
        serde_json::json!(["ok", "reason"])
    );
    let prompt = body["messages"][0]["content"].as_str().expect("a prompt");
    assert!(prompt.starts_with("Judge "), "{prompt}");
    assert!(prompt.contains("water is wet"), "{prompt}");
}

#[test]
fn one_run_reuses_its_connection_across_calls() {
    let scratch = Scratch::new("openai-reuse");
    let server = FakeServer::start(vec![Reply::json(openai_answer("fine", 10, 5))]);
    let file = scratch.write(
        "many.pai",
        &fan_out_workflow(&openai_provider(&server), "local"),
    );
    let items: Vec<String> = (0..12).map(|i| format!("s{i}")).collect();
    let output = scratch.run(
        &file,
        &["--arg", &format!("items={}", items.join(",")), "-j", "1"],
        &[KEY],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(server.requests().len(), 12);
    // hyper hands a connection back to its pool from a task of its own once a response
    // is read, so a call that starts the instant the one before it ended can now and
    // then beat it there and open a second connection (about 1 run in 30; two such
    // races in one run, about 1 in 2,000).
    assert!(
        server.connections() <= 2,
        "calls in sequence share their connections: {} for 12 calls",
        server.connections()
    );
}

#[test]
fn the_run_provider_serves_agents_without_one_and_sim_overrides_all() {
    let scratch = Scratch::new("choice");
    let server = FakeServer::start(vec![Reply::json(openai_answer("From the server.", 10, 5))]);
    let file = scratch.write(
        "choice.pai",
        &format!(
            r#"{}

agent plain(x: text max 10) {{
  model "local"
  context 1k
  summary 20
  prompt "{{{{x}}}}"
}}

workflow main(x: text max 10) {{
  return plain(x: x)
}}
"#,
            openai_provider(&server)
        ),
    );
    let output = scratch.run(
        &file,
        &["--arg", "x=a", "--run-id", "a"],
        &[KEY, ("PAI_PROVIDER", "api")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("provider: api"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        scratch.manifest("main/plain")["summary"],
        "From the server."
    );
    assert_eq!(server.requests().len(), 1);

    std::fs::remove_dir_all(scratch.runs()).expect("clean runs");
    let declared = scratch.write(
        "declared.pai",
        &judge_workflow(&openai_provider(&server), "retries 0"),
    );
    let output = scratch.run(
        &declared,
        &["--arg", "claim=b", "--provider", "sim"],
        &[KEY],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        server.requests().len(),
        1,
        "`--provider sim` calls no model"
    );

    let output = scratch.run(&file, &["--arg", "x=a", "--provider", "nope"], &[KEY]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("unknown provider `nope`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn max_cost_counts_what_the_provider_really_charged() {
    let scratch = Scratch::new("max-cost");
    // Each answer reports a million prompt tokens: $0.15 with gpt-4o-mini.
    let server = FakeServer::start(vec![Reply::json(openai_answer("ok", 1_000_000, 0))]);
    let file = scratch.write(
        "spend.pai",
        &fan_out_workflow(&openai_provider(&server), "gpt-4o-mini"),
    );
    let output = scratch.run(
        &file,
        &["--arg", "items=a,b,c,d,e", "-j", "1", "--max-cost", "0.2"],
        &[KEY],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("reached --max-cost"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        server.requests().len(),
        2,
        "the third call would pass $0.20"
    );
    let run: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(only_run(&scratch.runs()).join("run.yaml")).expect("run.yaml"),
    )
    .expect("parses");
    let spent = run["totals"]["cost_usd"].as_f64().expect("a total");
    assert!((spent - 0.30).abs() < 1e-9, "{spent}");
}

/// A provider's key is kept out of what an `exec` step prints (its manifest, its
/// output and the next prompt) whatever its variable is called: only variables named
/// like credentials were redacted, and `LLM_GATEWAY_CRED` is not.
#[test]
fn a_declared_key_never_leaves_through_an_exec_step() {
    let scratch = Scratch::new("key-in-exec");
    let server = FakeServer::start(vec![Reply::json(openai_answer("ok", 10, 2))]);
    let file = scratch.write(
        "leak.pai",
        &format!(
            r#"provider gw {{
  kind "openai"
  url "{}/v1"
  model "gpt-4o-mini"
  key env("PAI_TEST_GATEWAY_CRED")
}}

agent a(e: result) -> result {{
  provider gw
  context 64k
  summary 40 tokens
  prompt "{{{{e.summary}}}}"
}}

workflow main() -> result {{
  return a(e: exec(["printenv", "PAI_TEST_GATEWAY_CRED"]))
}}
"#,
            server.url()
        ),
    );
    let value = "gw-live-0123456789abcdef";
    let output = scratch.run(&file, &[], &[("PAI_TEST_GATEWAY_CRED", value)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut files = vec![only_run(&scratch.runs())];
    let mut read = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .expect("dir")
                    .map(|e| e.expect("entry").path()),
            );
        } else {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(!text.contains(value), "{}", path.display());
            read += 1;
        }
    }
    assert!(read > 3, "{read} files");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let sent = requests[0].json().to_string();
    assert!(sent.contains("[redacted]"), "{sent}");
    assert!(!sent.contains(value));
}

/// A billed attempt that fails counts against `--max-cost` before the call is asked
/// again: retries stop at the limit (six attempts spent 15 times the limit).
#[test]
fn retries_stop_at_the_run_limits() {
    let scratch = Scratch::new("max-cost-retries");
    // Every attempt is billed a million prompt tokens ($0.15 with gpt-4o-mini) and
    // answers nothing.
    let billed = serde_json::json!({
        "choices": [],
        "usage": { "prompt_tokens": 1_000_000, "completion_tokens": 0 },
    })
    .to_string();
    let server = FakeServer::start(vec![Reply::json(billed)]);
    let file = scratch.write(
        "retry.pai",
        &judge_workflow(&openai_provider(&server), "retries 5"),
    );
    let output = scratch.run(&file, &["--arg", "claim=b", "--max-cost", "0.2"], &[KEY]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(server.requests().len(), 2, "$0.30 spent after two");
    let run: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(only_run(&scratch.runs()).join("run.yaml")).expect("run.yaml"),
    )
    .expect("parses");
    assert_eq!(run["stopped"], "reached --max-cost $0.20");
    let error = scratch.manifest("main/judge")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.ends_with("it was not asked again: the run reached --max-cost $0.20"),
        "{error}"
    );
}

#[test]
fn an_answer_cut_at_the_token_limit_makes_the_node_partial() {
    let scratch = Scratch::new("openai-length");
    let cut = serde_json::json!({
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": "Half an ans" }, "finish_reason": "length" }],
        "usage": { "prompt_tokens": 10, "completion_tokens": 4 },
    })
    .to_string();
    let server = FakeServer::start(vec![Reply::json(cut)]);
    let file = scratch.write(
        "plain.pai",
        &format!(
            r#"{}

agent plain(x: text max 10) {{
  provider api
  model "local"
  context 1k
  summary 20
  prompt "{{{{x}}}}"
}}

workflow main(x: text max 10) {{
  return plain(x: x)
}}
"#,
            openai_provider(&server)
        ),
    );
    let output = scratch.run(&file, &["--arg", "x=a"], &[KEY]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let plain = scratch.manifest("main/plain");
    assert_eq!(plain["status"], "partial");
    assert_eq!(
        plain["partial_reason"],
        "the answer was cut at the token limit"
    );
    // A partial agent is counted: it was in no total ("0 agents").
    assert!(
        stderr(&output).contains(": 1 agent (0 complete, 1 partial, 0 failed, 0 waiting)"),
        "{}",
        stderr(&output)
    );
    let run: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(only_run(&scratch.runs()).join("run.yaml")).expect("run.yaml"),
    )
    .expect("parses");
    assert_eq!(run["totals"]["partial"], 1);
}

#[test]
fn a_429_waits_for_retry_after_then_succeeds() {
    let scratch = Scratch::new("openai-429");
    let server = FakeServer::start(vec![
        Reply::status(429, r#"{"error":{"message":"slow down"}}"#).header("retry-after", "1"),
        Reply::json(openai_answer(VERDICT, 10, 5)),
    ]);
    let file = scratch.write(
        "judge.pai",
        &judge_workflow(&openai_provider(&server), "retries 2"),
    );
    let output = scratch.run(&file, &["--arg", "claim=x"], &[KEY]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let judge = scratch.manifest("main/judge");
    assert_eq!(judge["attempts"], 2);
    let requests = server.requests();
    let gap = requests[1].at - requests[0].at;
    assert!(
        gap >= std::time::Duration::from_millis(950),
        "the retry came {gap:?} after a `Retry-After: 1`"
    );
}

#[test]
fn server_errors_are_retried_and_then_fail_the_node_with_the_status() {
    let scratch = Scratch::new("openai-500");
    let server = FakeServer::start(vec![Reply::status(500, r#"{"error":{"message":"boom"}}"#)]);
    let file = scratch.write(
        "judge.pai",
        &judge_workflow(&openai_provider(&server), "retries 2"),
    );
    let output = scratch.run(&file, &["--arg", "claim=x"], &[KEY]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let judge = scratch.manifest("main/judge");
    assert_eq!(judge["status"], "failed");
    assert_eq!(judge["attempts"], 3);
    let error = judge["error"].as_str().expect("an error");
    assert!(error.contains("500") && error.contains("boom"), "{error}");
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn malformed_json_and_a_closed_connection_are_retried() {
    let scratch = Scratch::new("openai-flaky");
    let server = FakeServer::start(vec![
        Reply::json("{not json"),
        Reply::Close,
        Reply::json(openai_answer(VERDICT, 10, 5)),
    ]);
    let file = scratch.write(
        "judge.pai",
        &judge_workflow(&openai_provider(&server), "retries 3"),
    );
    let output = scratch.run(&file, &["--arg", "claim=x"], &[KEY]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let judge = scratch.manifest("main/judge");
    assert_eq!(judge["status"], "complete");
    assert_eq!(judge["attempts"], 3);
}

#[test]
fn a_response_slower_than_the_timeout_fails_the_node() {
    let scratch = Scratch::new("openai-slow");
    let server = FakeServer::start(vec![Reply::Delay(
        std::time::Duration::from_secs(3),
        Box::new(Reply::json(openai_answer(VERDICT, 10, 5))),
    )]);
    let file = scratch.write(
        "judge.pai",
        &judge_workflow(&openai_provider(&server), "retries 0\n  timeout 300ms"),
    );
    let output = scratch.run(&file, &["--arg", "claim=x"], &[KEY]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let judge = scratch.manifest("main/judge");
    assert_eq!(judge["status"], "failed");
    let error = judge["error"].as_str().expect("an error");
    assert!(error.contains("timed out"), "{error}");
}

#[test]
fn a_refused_key_fails_at_once_naming_the_variable_never_the_key() {
    let scratch = Scratch::new("openai-401");
    let server = FakeServer::start(vec![Reply::status(
        401,
        r#"{"error":{"message":"Incorrect API key provided: sk-test-openai-0000"}}"#,
    )]);
    let file = scratch.write(
        "judge.pai",
        &judge_workflow(&openai_provider(&server), "retries 3"),
    );
    let output = scratch.run(&file, &["--arg", "claim=x"], &[KEY]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let judge = scratch.manifest("main/judge");
    assert_eq!(judge["attempts"], 1, "a 401 is not retried");
    let error = judge["error"].as_str().expect("an error");
    assert!(error.contains("`PAI_TEST_OPENAI_KEY`"), "{error}");
    assert!(!error.contains("sk-test-openai-0000"), "{error}");
}

#[test]
fn a_missing_key_stops_the_run_before_it_starts() {
    let scratch = Scratch::new("openai-nokey");
    let server = FakeServer::start(vec![Reply::json(openai_answer(VERDICT, 10, 5))]);
    let file = scratch.write(
        "judge.pai",
        &judge_workflow(&openai_provider(&server), "retries 0"),
    );
    let output = scratch.run(&file, &["--arg", "claim=x"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("`PAI_TEST_OPENAI_KEY` is not set"), "{text}");
    assert!(text.contains("help: export PAI_TEST_OPENAI_KEY="), "{text}");
    assert!(server.requests().is_empty());
}

#[test]
fn a_malformed_structured_answer_is_retried_once_with_the_reason() {
    let scratch = Scratch::new("openai-shape");
    let server = FakeServer::start(vec![Reply::json(openai_answer(
        r#"{"answer":{"ok":"yes"}}"#,
        10,
        5,
    ))]);
    let file = scratch.write(
        "judge.pai",
        &judge_workflow(&openai_provider(&server), "retries 3"),
    );
    let output = scratch.run(&file, &["--arg", "claim=x"], &[KEY]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let judge = scratch.manifest("main/judge");
    assert_eq!(
        judge["attempts"], 2,
        "malformed answers are asked for again once"
    );
    let requests = server.requests();
    let second = requests[1].json();
    let prompt = second["messages"][0]["content"].as_str().expect("a prompt");
    assert!(
        prompt.contains("Your previous answer was not valid"),
        "{prompt}"
    );
}

#[test]
fn anthropic_sends_its_headers_and_records_usage() {
    let scratch = Scratch::new("anthropic");
    let server = FakeServer::start(vec![Reply::json(anthropic_answer(
        r#"{"ok":false,"reason":"no"}"#,
        2_000,
        100,
    ))]);
    let file = scratch.write(
        "judge.pai",
        &anthropic_judge(
            &server,
            "\n  max-tokens 1k",
            "retries 0\n  system \"Be terse.\"",
        ),
    );
    let output = scratch.run(
        &file,
        &["--arg", "claim=x"],
        &[("PAI_TEST_ANTHROPIC_KEY", "sk-ant-test-1111")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let judge = scratch.manifest("main/judge");
    assert_eq!(judge["value"]["ok"], false);
    assert_eq!(judge["tokens"]["input"], 2_000);
    // sonnet: $3 in and $15 out per million tokens.
    let cost = judge["cost_usd"].as_f64().expect("a cost");
    assert!((cost - 0.0075).abs() < 1e-9, "{cost}");
    let request = &server.requests()[0];
    assert_eq!(request.path, "/v1/messages");
    assert_eq!(request.header("x-api-key"), Some("sk-ant-test-1111"));
    assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
    let body = request.json();
    assert_eq!(body["max_tokens"], 1_000);
    assert_eq!(body["system"], "Be terse.");
}

/// An HTTP answer that repeats the key (a model that was shown it, a proxy that echoes
/// headers) has it redacted before it is kept: it reached `output.md`, the manifest
/// and standard output (command providers' answers already were).
#[test]
fn an_http_answer_that_repeats_the_key_is_redacted() {
    let scratch = Scratch::new("openai-echo-key");
    let said = format!(
        r#"{{"answer":{{"ok":true,"reason":"your key is {}"}}}}"#,
        KEY.1
    );
    let server = FakeServer::start(vec![Reply::json(openai_answer(&said, 10, 5))]);
    let file = scratch.write(
        "judge.pai",
        &judge_workflow(&openai_provider(&server), "retries 0"),
    );
    let output = scratch.run(&file, &["--arg", "claim=x"], &[KEY]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let judge = scratch.manifest("main/judge");
    assert_eq!(judge["value"]["reason"], "your key is [redacted]");
    assert!(!String::from_utf8_lossy(&output.stdout).contains(KEY.1));
    let answer = std::fs::read_to_string(only_run(&scratch.runs()).join("main/judge/output.md"))
        .expect("the answer");
    assert!(!answer.contains(KEY.1), "{answer}");
}

/// An Anthropic answer with no text (only a `tool_use` block, or no blocks) is not an
/// answer, as for `openai`: it completed its node with an empty output. An error body
/// that comes with a 200 is quoted.
#[test]
fn an_anthropic_answer_without_text_is_no_answer() {
    let tool_use = serde_json::json!({
        "type": "message",
        "content": [{ "type": "tool_use", "id": "t1", "name": "x", "input": {} }],
        "stop_reason": "tool_use",
        "usage": { "input_tokens": 5, "output_tokens": 5 },
    })
    .to_string();
    let error = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    for (reply, says) in [
        (tool_use.as_str(), "stop reason `tool_use`"),
        (error, "Overloaded"),
    ] {
        let scratch = Scratch::new("anthropic-no-text");
        let server = FakeServer::start(vec![Reply::json(reply)]);
        let file = scratch.write("judge.pai", &anthropic_judge(&server, "", "retries 0"));
        let output = scratch.run(
            &file,
            &["--arg", "claim=x"],
            &[("PAI_TEST_ANTHROPIC_KEY", "sk-ant-test-3333")],
        );
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        let judge = scratch.manifest("main/judge");
        assert_eq!(judge["status"], "failed");
        let error = judge["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{error}");
    }
}

/// An answer that is no answer (`content: null`) is billed all the same, and counted:
/// fifteen such attempts, 30,000 tokens by the server's count, read `0 tokens; $0.0000`
/// and `--max-tokens` never tripped.
#[test]
fn tokens_of_failed_attempts_are_counted() {
    let scratch = Scratch::new("openai-null-content");
    let null_content = serde_json::json!({
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": null }, "finish_reason": "tool_calls" }],
        "usage": { "prompt_tokens": 1_000, "completion_tokens": 1_000 },
    })
    .to_string();
    let server = FakeServer::start(vec![Reply::json(null_content)]);
    let file = scratch.write(
        "judge.pai",
        &judge_workflow(&openai_provider(&server), "retries 2"),
    );
    let output = scratch.run(&file, &["--arg", "claim=x"], &[KEY]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(server.requests().len(), 3);
    let judge = scratch.manifest("main/judge");
    assert_eq!(judge["status"], "failed");
    assert_eq!(judge["tokens"]["input"], 3_000);
    assert_eq!(judge["tokens"]["output"], 3_000);
    let error = judge["error"].as_str().unwrap_or_default();
    assert!(error.contains("a tool call is not an answer"), "{error}");
}

/// A provider endpoint that redirects is not followed: the key (Anthropic's
/// `x-api-key`, which the HTTP client does not drop on a redirect to another origin)
/// and the prompt went to whatever host the redirect named.
#[test]
fn a_redirect_is_not_followed_with_the_key() {
    let scratch = Scratch::new("redirect");
    let elsewhere = FakeServer::start(vec![Reply::json(anthropic_answer("stolen", 10, 1))]);
    let server = FakeServer::start(vec![
        Reply::status(307, "").header("location", &format!("{}/v1/messages", elsewhere.url()))
    ]);
    let file = scratch.write("judge.pai", &anthropic_judge(&server, "", "retries 0"));
    let output = scratch.run(
        &file,
        &["--arg", "claim=x"],
        &[("PAI_TEST_ANTHROPIC_KEY", "sk-ant-redirect-2222")],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
    let error = scratch.manifest("main/judge")["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("307"), "{error}");
}

/// A workflow whose one agent runs through the command provider `cli`.
fn command_workflow(provider_settings: &str) -> String {
    format!(
        r#"provider cli {{
  kind "command"
  {provider_settings}
}}

agent coder(task: text max 200) {{
  provider cli
  model "sonnet"
  tools [Read, Edit]
  context 8k
  summary 40
  retries 0
  system "You write code."
  prompt "Do {{{{task}}}}"
}}

workflow main(task: text max 200) {{
  return coder(task: task)
}}
"#
    )
}

const CLAUDE_OK: &str = r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":1200,"num_turns":2,"result":"Added the login page.\nDetails follow.","session_id":"5f0e-session","total_cost_usd":0.0421,"usage":{"input_tokens":120,"cache_creation_input_tokens":0,"cache_read_input_tokens":3000,"output_tokens":450},"permission_denials":[]}"#;

#[test]
fn claude_preset_passes_flags_and_stdin_and_reads_the_result() {
    let scratch = Scratch::new("claude-ok");
    let args = scratch.path("args.txt");
    let stdin = scratch.path("stdin.txt");
    let cli = scratch.script(
        "fake-claude",
        &format!(
            "printf '%s\\n' \"$@\" > '{}'\ncat > '{}'\ncat <<'EOF'\n{CLAUDE_OK}\nEOF",
            args.display(),
            stdin.display()
        ),
    );
    let file = scratch.write(
        "code.pai",
        &command_workflow(&format!(
            "preset \"claude\"\n  command [\"{}\"]\n  max-turns 7",
            cli.display()
        )),
    );
    let output = scratch.run(&file, &["--arg", "task=add a login page"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let argv = std::fs::read_to_string(&args).expect("the fake saw its args");
    let argv: Vec<&str> = argv.lines().collect();
    assert_eq!(
        argv,
        [
            "-p",
            "--output-format",
            "json",
            "--model",
            "sonnet",
            "--append-system-prompt",
            "You write code.",
            "--allowedTools",
            "Read,Edit",
            "--max-turns",
            "7"
        ]
    );
    let prompt = std::fs::read_to_string(&stdin).expect("the fake read stdin");
    assert_eq!(prompt, "Do add a login page");
    let coder = scratch.manifest("main/coder");
    assert_eq!(coder["status"], "complete");
    assert_eq!(coder["summary"], "Added the login page.");
    assert_eq!(coder["session"], "5f0e-session");
    assert_eq!(coder["tokens"]["input"], 3_120);
    assert_eq!(coder["tokens"]["output"], 450);
    assert_eq!(coder["cost_usd"], 0.0421);
}

#[test]
fn claude_is_error_fails_and_permission_denials_make_the_node_partial() {
    let scratch = Scratch::new("claude-shapes");
    let failing = scratch.script(
        "claude-error",
        r#"cat > /dev/null
echo '{"type":"result","subtype":"success","is_error":true,"result":"Invalid API key · Please run /login","session_id":"s","total_cost_usd":0,"usage":{"input_tokens":0,"output_tokens":0}}'"#,
    );
    let file = scratch.write(
        "error.pai",
        &command_workflow(&format!(
            "preset \"claude\"\n  command [\"{}\"]",
            failing.display()
        )),
    );
    let output = scratch.run(&file, &["--arg", "task=x", "--run-id", "a"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let coder = scratch.manifest("main/coder");
    assert_eq!(coder["status"], "failed");
    let error = coder["error"].as_str().expect("an error");
    assert!(error.contains("Invalid API key"), "{error}");

    std::fs::remove_dir_all(scratch.runs()).expect("clean runs");
    let denied = scratch.script(
        "claude-denied",
        r#"cat > /dev/null
echo '{"type":"result","subtype":"success","is_error":false,"result":"Wrote half of it.","session_id":"s2","total_cost_usd":0.01,"usage":{"input_tokens":10,"output_tokens":5},"permission_denials":[{"tool_name":"Bash","tool_use_id":"toolu_1","tool_input":{"command":"npm test"}},{"tool_name":"Write","tool_use_id":"toolu_2","tool_input":{"file_path":"/etc/x"}}]}'"#,
    );
    let file = scratch.write(
        "denied.pai",
        &command_workflow(&format!(
            "preset \"claude\"\n  command [\"{}\"]",
            denied.display()
        )),
    );
    let output = scratch.run(&file, &["--arg", "task=x", "--run-id", "b"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let coder = scratch.manifest("main/coder");
    assert_eq!(coder["status"], "partial");
    assert_eq!(
        coder["partial_reason"],
        "claude was refused 2 tool uses: Bash, Write"
    );
    assert_eq!(scratch.manifest("main")["status"], "partial");
}

#[test]
fn codex_preset_reads_jsonl_and_prices_its_tokens() {
    let scratch = Scratch::new("codex");
    let cli = scratch.script(
        "fake-codex",
        r#"cat > /dev/null
cat <<'EOF'
{"type":"thread.started","thread_id":"0199-thread"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"item_0","type":"reasoning","text":"**Planning**"}}
{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"ls","aggregated_output":"src\n","exit_code":0,"status":"completed"}}
{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"Refactored the parser."}}
{"type":"turn.completed","usage":{"input_tokens":10000,"cached_input_tokens":4000,"output_tokens":1000}}
EOF"#,
    );
    let file = scratch.write(
        "code.pai",
        &command_workflow(&format!(
            "preset \"codex\"\n  command [\"{}\"]",
            cli.display()
        ))
        .replace("model \"sonnet\"", "model \"gpt-5\""),
    );
    let output = scratch.run(&file, &["--arg", "task=x"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let coder = scratch.manifest("main/coder");
    assert_eq!(coder["summary"], "Refactored the parser.");
    assert_eq!(coder["session"], "0199-thread");
    assert_eq!(coder["tokens"]["input"], 10_000);
    // gpt-5: $1.25 in and $10 out per million tokens.
    let cost = coder["cost_usd"].as_f64().expect("a cost");
    assert!((cost - 0.0225).abs() < 1e-9, "{cost}");

    std::fs::remove_dir_all(scratch.runs()).expect("clean runs");
    let failing = scratch.script(
        "codex-failed",
        r#"cat > /dev/null
echo '{"type":"thread.started","thread_id":"t"}'
echo '{"type":"turn.failed","error":{"message":"unexpected status 401 Unauthorized"}}'
exit 1"#,
    );
    let file = scratch.write(
        "failed.pai",
        &command_workflow(&format!(
            "preset \"codex\"\n  command [\"{}\"]",
            failing.display()
        )),
    );
    let output = scratch.run(&file, &["--arg", "task=x"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let error = scratch.manifest("main/coder")["error"]
        .as_str()
        .expect("an error")
        .to_string();
    assert!(error.contains("401 Unauthorized"), "{error}");
}

#[test]
fn exit_codes_stderr_missing_programs_and_timeouts_are_clear_errors() {
    let scratch = Scratch::new("command-errors");
    let crashing = scratch.script("crashing", "echo 'model not found: tinyllama' >&2\nexit 3");
    let file = scratch.write(
        "crash.pai",
        &command_workflow(&format!("command [\"{}\"]", crashing.display())),
    );
    let output = scratch.run(&file, &["--arg", "task=x", "--run-id", "a"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let error = scratch.manifest("main/coder")["error"]
        .as_str()
        .expect("an error")
        .to_string();
    assert!(
        error.contains("exited with status 3: model not found: tinyllama"),
        "{error}"
    );

    std::fs::remove_dir_all(scratch.runs()).expect("clean runs");
    let file = scratch.write(
        "missing.pai",
        &command_workflow("command [\"pai-no-such-cli\"]"),
    );
    let output = scratch.run(&file, &["--arg", "task=x", "--run-id", "b"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let error = scratch.manifest("main/coder")["error"]
        .as_str()
        .expect("an error")
        .to_string();
    assert!(
        error.contains("`pai-no-such-cli`: it is not on PATH"),
        "{error}"
    );

    std::fs::remove_dir_all(scratch.runs()).expect("clean runs");
    let sleepy = scratch.script("sleepy", "sleep 5\necho late");
    let file = scratch.write(
        "slow.pai",
        &command_workflow(&format!(
            "command [\"{}\"]\n  timeout 300ms",
            sleepy.display()
        )),
    );
    let output = scratch.run(&file, &["--arg", "task=x", "--run-id", "c"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let error = scratch.manifest("main/coder")["error"]
        .as_str()
        .expect("an error")
        .to_string();
    assert!(error.contains("did not finish within 300ms"), "{error}");
}

/// A CLI that fails with the key near the end of a long complaint: its message was cut
/// to its last 300 characters before the key was redacted, so the key's last
/// characters reached the manifest and the terminal.
#[test]
fn a_key_across_the_cut_of_a_command_failure_is_redacted_whole() {
    let canary = format!("sk-canary-{}-0123456789abcdef", std::process::id());
    let scratch = Scratch::new("canary-cut");
    let complain = scratch.script(
        "complain",
        &format!(
            "cat > /dev/null\necho \"$CUT_API_KEY {}\" >&2\nexit 1",
            "x".repeat(274)
        ),
    );
    let file = scratch.write(
        "cut.pai",
        &format!(
            r#"provider cli {{
  kind "command"
  command ["{}"]
  key env("CUT_API_KEY")
}}

agent judge(claim: text max 100) {{
  provider cli
  context 4k
  summary 40
  prompt "Judge {{{{claim}}}}"
}}

workflow main(claim: text max 100) {{
  return judge(claim: claim)
}}
"#,
            complain.display()
        ),
    );
    let output = scratch.run(
        &file,
        &["--arg", "claim=x"],
        &[("CUT_API_KEY", &canary), ("PAI_PROVIDER", "")],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let error = scratch.manifest("main/judge")["error"]
        .as_str()
        .expect("an error")
        .to_string();
    assert!(error.contains("[redacted]"), "{error}");
    assert!(!error.contains("0123456789abcdef"), "{error}");
    assert!(!stderr(&output).contains("0123456789abcdef"));
}

#[test]
fn a_canary_key_reaches_no_file_trace_output_or_other_provider() {
    let canary = format!("sk-canary-{}-7f3a", std::process::id());
    let scratch = Scratch::new("canary");
    // The HTTP provider is refused once (its message quotes the key back) and then answers.
    let server = FakeServer::start(vec![
        Reply::status(
            503,
            format!(r#"{{"error":{{"message":"overloaded for key {canary}"}}}}"#),
        ),
        Reply::json(openai_answer("Judged.", 10, 5)),
    ]);
    // The command provider prints its whole environment as its answer.
    let env_dump = scratch.script("env-dump", "cat > /dev/null\nenv");
    let file = scratch.write(
        "canary.pai",
        &format!(
            r#"provider api {{
  kind "openai"
  url "{}/v1"
  key env("OPENAI_API_KEY")
}}

provider cli {{
  kind "command"
  command ["{}"]
}}

agent judge(claim: text max 100) {{
  provider api
  model "gpt-4o-mini"
  context 4k
  summary 40
  retries 2
  prompt "Judge {{{{claim}}}}"
}}

agent dump(claim: text max 100) {{
  provider cli
  context 4k
  summary 40
  prompt "Dump {{{{claim}}}}"
}}

workflow main(claim: text max 100) {{
  let env = dump(claim: claim)
  let verdict = judge(claim: claim) after env
  return verdict
}}
"#,
            server.url(),
            env_dump.display()
        ),
    );
    let trace = scratch.path("trace.json");
    let output = scratch.run(
        &file,
        &[
            "--arg",
            "claim=x",
            "--trace",
            trace.to_str().expect("utf-8"),
        ],
        &[("OPENAI_API_KEY", &canary), ("PAI_PROVIDER", "")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // The key was used...
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some(format!("Bearer {canary}").as_str())
    );
    // ...and the command's environment dump was written, without it.
    let dump = std::fs::read_to_string(only_run(&scratch.runs()).join("main/dump/output.md"))
        .expect("the dump's output");
    assert!(dump.contains("PATH="), "{dump}");
    let mut leaks = Vec::new();
    let mut stack = vec![scratch.runs(), trace];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(
                std::fs::read_dir(&path)
                    .expect("readable")
                    .filter_map(|e| e.ok().map(|e| e.path())),
            );
        } else if std::fs::read_to_string(&path).is_ok_and(|text| text.contains(&canary)) {
            leaks.push(path);
        }
    }
    assert!(leaks.is_empty(), "the canary leaked into {leaks:?}");
    for stream in [&output.stdout, &output.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(&canary));
    }
    let providers = Command::new(env!("CARGO_BIN_EXE_pai"))
        .args(["providers", file.to_str().expect("utf-8")])
        .env("OPENAI_API_KEY", &canary)
        .output()
        .expect("pai providers runs");
    let listed = String::from_utf8_lossy(&providers.stdout);
    assert!(listed.contains("api"), "{listed}");
    assert!(!listed.contains(&canary));
}

#[test]
fn providers_lists_declarations_and_whether_each_is_ready() {
    let scratch = Scratch::new("list");
    let server = FakeServer::start(vec![Reply::json(r#"{"data":[]}"#)]);
    let file = scratch.write(
        "list.pai",
        &format!(
            r#"provider local {{
  kind "openai"
  url "{}/v1"
  model "qwen3"
}}

provider gone {{
  kind "openai"
  url "http://127.0.0.1:9/v1"
}}

provider tool {{
  kind "command"
  command ["pai-no-such-cli"]
}}

agent a(x: text max 10) {{
  provider local
  context 1k
  prompt "{{{{x}}}}"
}}

workflow main(x: text max 10) {{
  return a(x: x)
}}
"#,
            server.url()
        ),
    );
    let output = Command::new(env!("CARGO_BIN_EXE_pai"))
        .args(["providers", file.to_str().expect("utf-8")])
        .env_remove("OPENAI_API_KEY")
        .env_remove("PAI_PROVIDER")
        .output()
        .expect("pai providers runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let listed = String::from_utf8_lossy(&output.stdout);
    let line = |name: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no `{name}` in\n{listed}"))
            .to_string()
    };
    assert!(line("local").contains("ready"), "{listed}");
    assert!(line("gone").contains("missing"), "{listed}");
    assert!(line("tool").contains("missing"), "{listed}");
    assert!(line("openai").contains("missing"), "{listed}");
    assert!(line("sim").contains("(default)"), "{listed}");
    assert!(
        listed.contains("no key needed, endpoint answering"),
        "{listed}"
    );
    assert_eq!(server.requests()[0].path, "/v1/models");
}

/// A provider named with 70,000 characters: the listing padded names with `{:width$}`,
/// which panics past a width of 65,535.
#[test]
fn providers_lists_a_provider_with_a_very_long_name() {
    let scratch = Scratch::new("long-name");
    let name = format!("p{}", "x".repeat(70_000));
    let file = scratch.write(
        "long.pai",
        &format!("provider {name} {{\n  kind \"sim\"\n}}\n"),
    );
    let output = Command::new(env!("CARGO_BIN_EXE_pai"))
        .args(["providers", file.to_str().expect("utf-8"), "--offline"])
        .env_remove("PAI_PROVIDER")
        .output()
        .expect("pai providers runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let listed = String::from_utf8_lossy(&output.stdout);
    let line = listed
        .lines()
        .find(|l| l.starts_with(&name))
        .unwrap_or_else(|| panic!("no long name listed"));
    assert!(line.contains("ready"), "{}", &line[name.len()..]);
    // The built-ins are padded to the longest name.
    let sim = listed
        .lines()
        .find(|l| l.starts_with("sim "))
        .expect("sim listed");
    assert_eq!(sim.find("ready"), Some(name.len() + 2), "{sim:.80}");
}

/// An endpoint that answers with more than `pai` reads (17 MiB here) fails the call
/// without a retry, rather than being read whole into memory however large it is.
#[test]
fn an_answer_larger_than_sixteen_mebibytes_fails_the_call() {
    let scratch = Scratch::new("openai-huge");
    let huge = "x".repeat(17 << 20);
    let server = FakeServer::start(vec![Reply::json(openai_answer(&huge, 1, 1))]);
    let file = scratch.write(
        "judge.pai",
        &judge_workflow(&openai_provider(&server), "retries 2"),
    );
    let output = scratch.run(&file, &["--arg", "claim=water is wet"], &[KEY]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let judge = scratch.manifest("main/judge");
    assert_eq!(judge["status"], "failed");
    let error = judge["error"].as_str().unwrap_or_default();
    assert!(error.contains("answered with more than 16 MiB"), "{error}");
    assert_eq!(server.requests().len(), 1, "retried");
}

/// A server that ignores `response_format` answers bare: a record whose one field is
/// named `answer` was unwrapped to that field and failed validation on every attempt.
/// And some compatible servers write usage as floats or strings, which read as 0.
#[test]
fn a_bare_record_named_answer_and_usage_written_as_text_are_read() {
    let scratch = Scratch::new("openai-bare");
    let mut bare: serde_json::Value =
        serde_json::from_str(&openai_answer(r#"{"answer":"yes, it holds"}"#, 0, 0)).unwrap();
    bare["usage"] = serde_json::json!({ "prompt_tokens": "1000", "completion_tokens": 199.2 });
    let wrapped = openai_answer(r#"{"answer":{"answer":"wrapped"}}"#, 7, 3);
    let server = FakeServer::start(vec![Reply::json(bare.to_string()), Reply::json(wrapped)]);
    let workflow = judge_workflow(&openai_provider(&server), "retries 0")
        .replace("ok: bool,\n  reason: text", "answer: text")
        .replace("workflow main(claim: text max 200) -> Verdict {\n  return judge(claim: claim)\n}", "workflow main(claim: text max 200) -> list<Verdict> {\n  let first = judge(claim: claim)\n  let second = judge(claim: claim) after first\n  return [first, second]\n}");
    let file = scratch.write("judge.pai", &workflow);
    let output = scratch.run(&file, &["--arg", "claim=x"], &[KEY]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let first = scratch.manifest("main/judge");
    assert_eq!(first["attempts"], 1, "{first:?}");
    assert_eq!(first["value"]["answer"], "yes, it holds");
    assert_eq!(first["tokens"]["input"], 1_000);
    assert_eq!(first["tokens"]["output"], 200);
    let second = scratch.manifest("main/judge#2");
    assert_eq!(second["value"]["answer"], "wrapped");
}
