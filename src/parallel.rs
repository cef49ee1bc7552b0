//! How many threads a stage of `pai check` uses for a job of a given size.

/// Jobs smaller than this many bytes run on the calling thread. Starting a thread
/// costs about what parsing 1 KB does; below this size the shared job would gain
/// less than a few percent.
const PARALLEL_MIN_BYTES: usize = 32 * 1024;

/// The threads to share out a job over `bytes` of source text: one per core for a big
/// job, one for a small one.
pub(crate) fn threads_for(bytes: usize) -> usize {
    if bytes < PARALLEL_MIN_BYTES {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |cores| cores.get())
}

/// Applies `work` to `items` cut into at most `threads` runs of consecutive items, one
/// thread a run (the first on the calling thread), and returns each run's result in
/// order. A panic in a run is raised again here.
pub(crate) fn map_runs<I: Sync, R: Send>(
    items: &[I],
    threads: usize,
    work: impl Fn(&[I]) -> R + Sync,
) -> Vec<R> {
    let per_thread = items.len().div_ceil(threads.max(1)).max(1);
    let mut runs = items.chunks(per_thread);
    let first = runs.next().unwrap_or_default();
    std::thread::scope(|scope| {
        let others: Vec<_> = runs.map(|run| scope.spawn(|| work(run))).collect();
        let mut results = vec![work(first)];
        for other in others {
            results.push(
                other
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        results
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_come_back_in_order_whatever_the_threads() {
        let items: Vec<u32> = (0..10).collect();
        for threads in [0, 1, 2, 3, 20] {
            let runs = map_runs(&items, threads, |run: &[u32]| run.to_vec());
            assert!(runs.len() <= threads.max(1), "{threads}: {runs:?}");
            assert_eq!(runs.concat(), items, "{threads} threads");
        }
        assert_eq!(map_runs(&[] as &[u32], 2, |run: &[u32]| run.len()), vec![0]);
    }
}
