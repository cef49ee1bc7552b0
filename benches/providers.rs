//! What the real providers add over the bare operation they wrap.
//!
//! - HTTP: the `openai` provider (body building, schema, JSON parsing, usage, cost)
//!   against a bare `reqwest` POST of the same body with a reused client, both to the
//!   scripted server of `tests/support/fake_server.rs` on 127.0.0.1. Target: the p99 of
//!   the difference at most 1 ms, with connections reused.
//! - Command: the `command` provider with the `claude` preset (argv, allow-listed
//!   environment, stdin, JSON parsing) against a bare spawn of the same fake CLI with the
//!   same stdin. Target: at most 10% more time.
//!
//! Samples of the two sides alternate, so a noisy neighbour hits both alike. Run with
//! `cargo bench --bench providers`; it prints one line per measurement.

#[path = "../tests/support/fake_server.rs"]
mod fake_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_server::{openai_answer, FakeServer, Reply};
use pai::compile::prices::Prices;
use pai::run::provider::command::Command;
use pai::run::provider::openai::OpenAi;
use pai::run::provider::spec::Spec;
use pai::run::provider::{Provider, Request, Shape};
use tokio::io::AsyncWriteExt;

const HTTP_SAMPLES: usize = 4_000;
const COMMAND_SAMPLES: usize = 300;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index.min(samples.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn request(prompt: &str) -> Request {
    Request {
        node: "bench/agent".to_string(),
        agent: "agent".to_string(),
        model: Some("gpt-4o-mini".to_string()),
        system: Some("Be terse.".to_string()),
        prompt: prompt.to_string(),
        tools: vec!["Read".to_string(), "Edit".to_string()],
        shape: Shape::Result,
        max_items: None,
        summary: None,
        attempt: 1,
    }
}

fn main() {
    // `cargo test --benches` runs bench targets with `--test`: stay quick then.
    let quick = std::env::args().any(|a| a == "--test");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let prompt = "Summarise the module `src/run/executor.rs` in one line. ".repeat(20);
    http(&runtime, &prompt, if quick { 20 } else { HTTP_SAMPLES });
    command(&runtime, &prompt, if quick { 5 } else { COMMAND_SAMPLES });
}

fn http(runtime: &tokio::runtime::Runtime, prompt: &str, samples: usize) {
    let answer = openai_answer("The executor schedules ready nodes.", 300, 12);
    let server = FakeServer::start(vec![Reply::json(answer)]);
    let base = format!("{}/v1", server.url());
    let provider = OpenAi::new(
        "bench",
        &base,
        None,
        None,
        None,
        None,
        Arc::new(Prices::default()),
    )
    .expect("a client");
    let bare = reqwest::Client::new();
    let url = format!("{base}/chat/completions");
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [
            { "role": "system", "content": "Be terse." },
            { "role": "user", "content": prompt },
        ],
    })
    .to_string();
    let request = request(prompt);
    let (mut bare_times, mut provider_times) = (Vec::new(), Vec::new());
    runtime.block_on(async {
        // Warm both pools.
        let _ = bare.post(&url).body(body.clone()).send().await;
        let _ = provider.complete(&request).await;
        for _ in 0..samples {
            let start = Instant::now();
            let response = bare
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("the fake answers");
            let _ = response.bytes().await.expect("a body");
            bare_times.push(start.elapsed());
            let start = Instant::now();
            let answer = provider.complete(&request).await.expect("an answer");
            provider_times.push(start.elapsed());
            assert_eq!(answer.tokens_in, 300);
        }
    });
    let differences: Vec<Duration> = provider_times
        .iter()
        .zip(&bare_times)
        .map(|(p, b)| p.saturating_sub(*b))
        .collect();
    let (mut bare_times, mut provider_times, mut differences) =
        (bare_times, provider_times, differences);
    println!(
        "http: {samples} calls; bare reqwest p50 {:.0} µs p99 {:.0} µs; openai provider p50 {:.0} µs p99 {:.0} µs; added p50 {:.0} µs p99 {:.0} µs; {} connections for {} requests",
        micros(percentile(&mut bare_times, 0.5)),
        micros(percentile(&mut bare_times, 0.99)),
        micros(percentile(&mut provider_times, 0.5)),
        micros(percentile(&mut provider_times, 0.99)),
        micros(percentile(&mut differences, 0.5)),
        micros(percentile(&mut differences, 0.99)),
        server.connections(),
        server.requests().len(),
    );
}

fn command(runtime: &tokio::runtime::Runtime, prompt: &str, samples: usize) {
    let dir = std::env::temp_dir().join(format!("pai-bench-command-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch dir");
    let script = dir.join("fake-claude");
    std::fs::write(
        &script,
        "#!/bin/sh\ncat > /dev/null\necho '{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"done\",\"session_id\":\"s\",\"total_cost_usd\":0.01,\"usage\":{\"input_tokens\":10,\"output_tokens\":2},\"permission_denials\":[]}'\n",
    )
    .expect("write the fake");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let mut spec = Spec::builtin("claude").expect("a preset");
    spec.command = vec![script.display().to_string()];
    let provider = Command::new(&spec, Arc::new(Prices::default())).expect("a provider");
    let request = request(prompt);
    let (mut bare_total, mut provider_total) = (Duration::ZERO, Duration::ZERO);
    runtime.block_on(async {
        for i in 0..samples {
            // Alternate which side goes first, so neither always runs on a warm cache.
            for side in [i % 2, 1 - i % 2] {
                let start = Instant::now();
                if side == 0 {
                    let mut child = tokio::process::Command::new(&script)
                        .stdin(std::process::Stdio::piped())
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .expect("spawns");
                    let mut stdin = child.stdin.take().expect("a pipe");
                    stdin.write_all(prompt.as_bytes()).await.expect("writes");
                    drop(stdin);
                    let output = child.wait_with_output().await.expect("finishes");
                    let _: serde_json::Value =
                        serde_json::from_slice(&output.stdout).expect("JSON");
                    bare_total += start.elapsed();
                } else {
                    let answer = provider.complete(&request).await.expect("an answer");
                    provider_total += start.elapsed();
                    assert_eq!(answer.text, "done");
                }
            }
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "command: {samples} calls; bare spawn {:.0} µs/call; claude preset {:.0} µs/call; ratio {:.3}",
        micros(bare_total) / samples as f64,
        micros(provider_total) / samples as f64,
        provider_total.as_secs_f64() / bare_total.as_secs_f64(),
    );
}
