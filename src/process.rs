//! Settings of the whole process, applied by the `pai` binary (and by the benches that
//! stand in for it) before any work, and undone for the processes it starts.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether `pai` turned transparent huge pages off for itself (it does only when they
/// were fully on), so that its children must get them back.
static TURNED_OFF: AtomicBool = AtomicBool::new(false);

/// Asks Linux not to back this process's memory with transparent huge pages; does
/// nothing elsewhere, or where THP is already off for the process in any mode.
///
/// `pai` allocates many small objects and lives briefly. Where THP is `always` (the
/// default of many distributions), every 2 MB region the allocator touches becomes a
/// huge page, resident in full: `pai run` then held about 7 KB per agent, and 4.5 KB
/// without, at the same speed (docs/performance.md). The setting is inherited by child
/// processes, so [`restore_for_child`] gives them back the one `pai` started with.
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: both calls take integers only and read or write no memory of ours. A
    // failure (an old kernel) leaves THP as it was: larger and slower to fault, never
    // wrong.
    unsafe {
        let (zero, one): (libc::c_ulong, libc::c_ulong) = (0, 1);
        let fully_on = libc::prctl(libc::PR_GET_THP_DISABLE, zero, zero, zero, zero) == 0;
        if fully_on && libc::prctl(libc::PR_SET_THP_DISABLE, one, zero, zero, zero) == 0 {
            TURNED_OFF.store(true, Ordering::Relaxed);
        }
    }
}

/// Makes the process `command` starts run with transparent huge pages on again, when
/// [`disable_transparent_huge_pages`] turned them off for `pai`.
///
/// The hook makes the standard library start the child with `fork` rather than
/// `posix_spawn`, which copies `pai`'s page tables: small beside a command that runs a
/// model, or an `exec` step.
pub fn restore_for_child(command: &mut tokio::process::Command) {
    #[cfg(target_os = "linux")]
    if TURNED_OFF.load(Ordering::Relaxed) {
        // SAFETY: the hook runs in the child between fork and exec, where only
        // async-signal-safe calls are allowed: `prctl` is a plain system call, and the
        // closure allocates nothing and captures nothing.
        unsafe {
            command.pre_exec(|| {
                let zero: libc::c_ulong = 0;
                libc::prctl(libc::PR_SET_THP_DISABLE, zero, zero, zero, zero);
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

/// The option of mimalloc's `mi_option_e` (mimalloc.h) that delays giving freed memory
/// back to the system, in milliseconds: the 16th, kept at its place across versions
/// (retired options stay as `deprecated_` placeholders).
const MI_OPTION_PURGE_DELAY: std::os::raw::c_int = 15;

// Links mimalloc into every user of the library (the tests too), for the two functions
// of its own API below; the binary makes it the allocator (src/main.rs).
extern crate mimalloc as _;

extern "C" {
    // mimalloc's own API, from the C library `libmimalloc-sys` builds.
    #[cfg(test)]
    fn mi_option_get(option: std::os::raw::c_int) -> std::os::raw::c_long;
    fn mi_option_set(option: std::os::raw::c_int, value: std::os::raw::c_long);
}

/// Has mimalloc (the `pai` binary's allocator) give freed memory back after 10 ms
/// rather than the second the bundled mimalloc waits by default, unless the user set
/// the delay (`MIMALLOC_PURGE_DELAY`, or its older name `MIMALLOC_RESET_DELAY`). It
/// matters only where `MiMalloc` is the global allocator (the binary, the benches);
/// call it first, before other threads allocate.
///
/// A run frees on one thread what another allocated (the writer frees the manifests the
/// scheduler queued); held for a second, those pages stayed resident through the whole
/// of a short run: the 11,111-node tree peaked at 2.4 KB per node, and 1.9 KB with a
/// 10 ms delay, at the same speed in alternating runs (docs/performance.md).
pub fn return_freed_memory_promptly() {
    if user_set_purge_delay() {
        return;
    }
    // SAFETY: the declaration matches mimalloc.h (`void mi_option_set(mi_option_t,
    // long)`, the enum an `int`), and mimalloc bounds-checks the option. The option
    // table is plain memory that mimalloc reads without locks, so this runs first, as
    // the doc says.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 10) }
}

/// Whether the environment sets mimalloc's purge delay, by either of its names.
fn user_set_purge_delay() -> bool {
    ["MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option index is mimalloc's purge delay: the only option of the bundled
    /// mimalloc whose default is a second, and the one
    /// [`return_freed_memory_promptly`] sets to 10 ms.
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        if user_set_purge_delay() {
            return;
        }
        // SAFETY: matches mimalloc.h (`long mi_option_get(mi_option_t)`); the option
        // is bounds-checked by mimalloc.
        let get = |option| unsafe { mi_option_get(option) };
        assert_eq!(get(MI_OPTION_PURGE_DELAY), 1000, "the bundled default");
        // Its neighbours, whose defaults differ, are not it.
        assert_ne!(get(MI_OPTION_PURGE_DELAY - 1), 1000);
        assert_ne!(get(MI_OPTION_PURGE_DELAY + 1), 1000);
        return_freed_memory_promptly();
        assert_eq!(get(MI_OPTION_PURGE_DELAY), 10);
    }
}
