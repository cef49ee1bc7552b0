//! Settings of the whole process, applied by the `pai` binary (and by the benches that
//! stand in for it) before any work.

/// Asks Linux not to back this process's memory with transparent huge pages; does
/// nothing elsewhere.
///
/// `pai` allocates many small objects and lives briefly. Where THP is `always` (the
/// default of many distributions), every 2 MB region the allocator touches becomes a
/// huge page, resident in full: `pai run` then held about 7 KB per agent, and 4.3 KB
/// without, at the same speed (docs/performance.md).
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: `prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)` takes integers only and reads or
    // writes no memory of ours. Failure (an old kernel) leaves THP as it was, which is
    // only slower to fault and larger, never wrong.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
