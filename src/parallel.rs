//! How many threads a stage of `pai check` uses for a job of a given size.

/// Jobs smaller than this many bytes run on the calling thread: a thread costs more to
/// start than they take.
const PARALLEL_MIN_BYTES: usize = 128 * 1024;

/// The threads to share out a job over `bytes` of source text: one per core for a big
/// job, one for a small one.
pub(crate) fn threads_for(bytes: usize) -> usize {
    if bytes < PARALLEL_MIN_BYTES {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |cores| cores.get())
}
