//! How many threads a stage of `pai check` uses for a job of a given size, and how
//! the job is shared out between them.

use std::sync::atomic::{AtomicUsize, Ordering};

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

/// The stack of each thread started: a main thread's, since the passes shared out
/// recurse as deep as the source nests (pest on 256 brackets, the workflow analysis).
const STACK: usize = 8 * 1024 * 1024;

/// Applies `work` to each of `items` on up to `threads` threads (one of them the
/// calling thread) and returns the results in the order of `items`. Each thread takes
/// the next item no thread has taken yet, so items of uneven cost, or a thread that
/// starts late, still leave the threads finishing together. A panic in `work` is
/// raised again here.
pub(crate) fn map_each<I: Sync, R: Send>(
    items: &[I],
    threads: usize,
    work: impl Fn(&I) -> R + Sync,
) -> Vec<R> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    // Each thread's results, with the index of each item it took.
    let take = || {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(index) else {
                break;
            };
            done.push((index, work(item)));
        }
        done
    };
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        // A thread that cannot be started leaves its share to the others.
        let others: Vec<_> = (1..threads)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .stack_size(STACK)
                    .spawn_scoped(scope, take)
                    .ok()
            })
            .collect();
        let mut all = take();
        for other in others {
            all.extend(
                other
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        all
    });
    results.sort_unstable_by_key(|&(index, _)| index);
    results.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order_whatever_the_threads() {
        let items: Vec<u32> = (0..100).collect();
        for threads in [0, 1, 2, 3, 200] {
            // Uneven work, so threads take items out of order.
            let doubled = map_each(&items, threads, |&n| {
                if n % 7 == 0 {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
                n * 2
            });
            let expected: Vec<u32> = items.iter().map(|n| n * 2).collect();
            assert_eq!(doubled, expected, "{threads} threads");
        }
        assert!(map_each(&[] as &[u32], 2, |&n| n).is_empty());
    }

    #[test]
    fn every_thread_takes_work() {
        let items: Vec<u32> = (0..64).collect();
        let seen = std::sync::Mutex::new(std::collections::HashSet::new());
        let both = || seen.lock().map(|s| s.len()).unwrap_or(0) >= 2;
        // Each item waits until the other thread has taken one (10 s at most in all),
        // so the first thread cannot take them all however late the second starts.
        let start = std::time::Instant::now();
        map_each(&items, 2, |_| {
            seen.lock()
                .map(|mut s| s.insert(std::thread::current().id()))
                .ok();
            while !both() && start.elapsed() < std::time::Duration::from_secs(10) {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        });
        assert!(both());
    }

    #[test]
    #[should_panic(expected = "item 7")]
    fn a_panic_in_work_is_raised_again() {
        let items: Vec<u32> = (0..16).collect();
        map_each(&items, 2, |&n| if n == 7 { panic!("item 7") } else { n });
    }
}
