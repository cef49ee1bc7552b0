//! The scheduler's overhead on two shapes (`benches/run_workflow.pai`): a 10-ary tree of
//! depth 4 (11,111 agent calls) and a flat 10,000-way fan-out, with manifests on.
//!
//! - With `sim` answering in 50 ms and no concurrency limit, the makespan over the
//!   critical path (the longest chain of dependent calls, by measured durations): the
//!   target is at most 1.10.
//! - With `sim` answering at once, the bookkeeping per node (wall time / nodes): the
//!   target is at most 10 µs.
//! - Peak memory per node (VmHWM growth / nodes): the target is at most 2 KB.
//! - The floor: the flat shape as bare tokio tasks that only sleep, measured the same
//!   way (`tokio_floor`), so the flat ratio can be read against what the runtime alone
//!   achieves on the machine.
//!
//! Run with `cargo bench --bench run`; it prints one line per measurement.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pai::run::provider::sim::Sim;

/// The allocator the `pai` binary uses (src/main.rs), so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn peak_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    // `cargo test --benches` runs bench targets with `--test`: stay quick then.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    // As the `pai` binary does (src/main.rs).
    pai::process::disable_transparent_huge_pages();
    pai::process::return_freed_memory_promptly();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/run_workflow.pai");
    let outcome = pai::check::check_paths(&[path]).expect("readable");
    assert_eq!(outcome.error_count(), 0, "{:?}", outcome.diagnostics);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let items = |n: usize| {
        (0..n)
            .map(|i| format!("i{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    // Each shape runs in a process of its own, so its peak memory is its own.
    let Ok(only) = std::env::var("PAI_BENCH_SHAPE") else {
        for shape in ["tree4", "flat", "floor"] {
            let exe = std::env::current_exe().expect("the bench binary");
            let status = std::process::Command::new(exe)
                .env("PAI_BENCH_SHAPE", shape)
                .status()
                .expect("runs");
            assert!(status.success());
        }
        return;
    };
    if only == "floor" {
        tokio_floor(&runtime);
        return;
    }
    // (workflow, items, agent calls, calls on the longest chain)
    let shapes = [
        ("tree4", items(10), 11_111u64, 5u32),
        ("flat", items(10_000), 10_001, 2),
    ];
    for latency in [Duration::ZERO, Duration::from_millis(50)] {
        for (workflow, items, agents, chain) in shapes.iter().filter(|(w, _, _, _)| *w == only) {
            let runs = std::env::temp_dir().join(format!("pai-bench-run-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&runs);
            let options = pai::run::Options {
                runs_dir: runs.clone(),
                run_id: Some(format!("{workflow}-{}", latency.as_millis())),
                jobs: 1_000_000,
                yes: true,
                ..pai::run::Options::default()
            };
            let request = pai::compile::Request {
                workflow: Some(workflow.to_string()),
                args: vec![format!("items={items}")],
            };
            let sim = Arc::new(Sim {
                latency,
                list_len: 3,
            });
            let before = peak_kb();
            let began = std::time::Instant::now();
            let report = runtime
                .block_on(pai::run::run(
                    &outcome,
                    &request,
                    sim,
                    options,
                    &pai::compile::prices::Prices::default(),
                ))
                .expect("runs");
            // Until every manifest is on disk: what `pai run` waits for before it exits.
            let on_disk = began.elapsed().as_secs_f64();
            let after = peak_kb();
            assert_eq!(report.totals.complete, *agents);
            let wall = report.totals.wall_seconds;
            if latency.is_zero() {
                println!(
                    "{workflow}: {agents} agents at zero latency: {:.1} ms wall, {:.2} µs bookkeeping per agent, {:.1} ms until all is on disk, peak memory +{} KB ({:.0} bytes per agent)",
                    wall * 1e3,
                    wall * 1e6 / *agents as f64,
                    on_disk * 1e3,
                    after.saturating_sub(before),
                    after.saturating_sub(before) as f64 * 1024.0 / *agents as f64,
                );
            } else {
                let ideal = latency.as_secs_f64() * f64::from(*chain);
                println!(
                    "{workflow}: {agents} agents at {} ms: makespan {:.1} ms ({:.1} ms until all is on disk); critical path as measured {:.1} ms (ratio {:.3}), as latencies alone {:.1} ms (ratio {:.3})",
                    latency.as_millis(),
                    wall * 1e3,
                    on_disk * 1e3,
                    report.totals.critical_path_seconds * 1e3,
                    wall / report.totals.critical_path_seconds.max(1e-9),
                    ideal * 1e3,
                    wall / ideal,
                );
            }
            let _ = std::fs::remove_dir_all(&runs);
        }
    }
}

/// The flat shape with nothing of pai's: 10,000 tokio tasks that each sleep 50 ms,
/// spawned from the thread that blocks on the runtime as pai's scheduler does, then
/// one more (the fold). Its ratio, measured as pai's is (the longest leaf as its task
/// timed it, plus the fold), is what tokio on this machine allows a process that starts
/// cold: no scheduler can do better with a task per call.
fn tokio_floor(runtime: &tokio::runtime::Runtime) {
    const LEAVES: usize = 10_000;
    let latency = Duration::from_millis(50);
    let (spawned, leaves_done, longest_leaf, fold, makespan) = runtime.block_on(async {
        let began = std::time::Instant::now();
        let mut leaves = tokio::task::JoinSet::new();
        for i in 0..LEAVES {
            // A node id per call, as each of pai's calls carries one.
            let id = format!("flat/leaf-{i}");
            leaves.spawn(async move {
                let start = std::time::Instant::now();
                tokio::time::sleep(latency).await;
                (id, start.elapsed())
            });
        }
        let spawned = began.elapsed();
        let mut longest_leaf = Duration::ZERO;
        while let Some(done) = leaves.join_next().await {
            longest_leaf = longest_leaf.max(done.expect("a leaf").1);
        }
        let leaves_done = began.elapsed();
        let fold = tokio::spawn(async move {
            let start = std::time::Instant::now();
            tokio::time::sleep(latency).await;
            start.elapsed()
        })
        .await
        .expect("the fold");
        (spawned, leaves_done, longest_leaf, fold, began.elapsed())
    });
    let critical = (longest_leaf + fold).as_secs_f64();
    println!(
        "floor: {LEAVES} tokio tasks sleeping {} ms, then one: spawned in {:.1} ms, all done at {:.1} ms, makespan {:.1} ms; critical path as measured {:.1} ms (ratio {:.3}), as latencies alone {:.1} ms (ratio {:.3})",
        latency.as_millis(),
        spawned.as_secs_f64() * 1e3,
        leaves_done.as_secs_f64() * 1e3,
        makespan.as_secs_f64() * 1e3,
        critical * 1e3,
        makespan.as_secs_f64() / critical,
        2.0 * latency.as_secs_f64() * 1e3,
        makespan.as_secs_f64() / (2.0 * latency.as_secs_f64()),
    );
}
