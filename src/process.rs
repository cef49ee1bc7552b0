//! Settings of the whole process, applied by the `pai` binary (and by the benches that
//! stand in for it) before any work, and undone for the processes it starts.

use std::sync::atomic::{AtomicI32, Ordering};

/// The transparent-huge-page setting `pai` was started with (`PR_GET_THP_DISABLE`), or
/// -1 while `pai` has not changed it.
static STARTED_WITH: AtomicI32 = AtomicI32::new(-1);

/// Asks Linux not to back this process's memory with transparent huge pages; does
/// nothing elsewhere.
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
        let started_with = libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0);
        if started_with >= 0 && libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 {
            STARTED_WITH.store(started_with, Ordering::Relaxed);
        }
    }
}

/// Makes the process `command` starts run with the transparent-huge-page setting `pai`
/// was started with, not the one [`disable_transparent_huge_pages`] chose for `pai`.
pub fn restore_for_child(command: &mut tokio::process::Command) {
    #[cfg(target_os = "linux")]
    {
        let Ok(started_with) = libc::c_ulong::try_from(STARTED_WITH.load(Ordering::Relaxed)) else {
            return;
        };
        // SAFETY: the hook runs in the child between fork and exec, where only
        // async-signal-safe calls are allowed: `prctl` is a plain system call, and the
        // closure allocates nothing and touches only the integer it owns.
        unsafe {
            command.pre_exec(move || {
                libc::prctl(libc::PR_SET_THP_DISABLE, started_with, 0, 0, 0);
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}
