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
