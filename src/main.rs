//! The `pai` binary: a thin front over the library (see `pai::cli`).

/// mimalloc instead of the system allocator: a run allocates on the scheduler's thread
/// and frees on tokio's workers (and back), where glibc's malloc spent a third of the
/// scheduler's time (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    pai::process::disable_transparent_huge_pages();
    pai::process::return_freed_memory_promptly();
    pai::cli::main()
}
