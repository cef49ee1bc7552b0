//! Lowering + plan-time expansion of a workflow that expands to about 10,000 and
//! 100,000 nodes (`benches/plan_workflow.pai`): time per node. Peak memory per node is
//! measured by `benches/plan-memory.sh` with `/usr/bin/time -v`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn labels(n: usize, prefix: &str) -> String {
    (0..n)
        .map(|i| format!("{prefix}{i}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn plan_bench(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/plan_workflow.pai");
    let outcome = pai::check::check_paths(&[path]).expect("bench workflow is readable");
    assert_eq!(outcome.error_count(), 0, "{:?}", outcome.diagnostics);
    let mut group = c.benchmark_group("plan");
    group.sample_size(10);
    for (groups, items) in [(100, 100), (100, 1000)] {
        let request = pai::compile::Request {
            workflow: Some("wide".to_string()),
            args: vec![
                format!("groups={}", labels(groups, "g")),
                format!("items={}", labels(items, "item-")),
            ],
        };
        let nodes = pai::compile::plan(&outcome, &request)
            .expect("plans")
            .graph
            .node_count();
        group.throughput(Throughput::Elements(nodes as u64));
        group.bench_with_input(BenchmarkId::new("expand", nodes), &request, |b, request| {
            b.iter(|| pai::compile::plan(&outcome, request).expect("plans"))
        });
    }
    group.finish();
}

criterion_group!(benches, plan_bench);
criterion_main!(benches);
