//! Giving freed memory back to the system after a pass that built much and let it go.
//!
//! glibc's allocator keeps what is freed for the next allocation: it returns pages to the
//! system only from the top of each arena, on its own. A pass that loads a revision or plans
//! every object allocates hundreds of bytes an object and frees them when it ends, so without
//! a trim the RSS between passes stays near the pass's peak (at 10,000 objects, 316 MiB of
//! RSS for 117 MiB of live heap; 154 MiB after `malloc_trim(0)`). Idle passes allocate next
//! to nothing and are not followed by a trim. Elsewhere (musl, macOS) this does nothing.
//!
//! Limiting glibc's arenas (`M_ARENA_MAX`) was measured too and left out: with 1, 2 or 8
//! arenas the RSS between passes at 10,000 objects was the same after the trim.

/// Passes that parsed at least this many files or planned this many objects are followed by
/// a trim: below it, what a pass frees is small beside what the trim costs (a walk over the
/// free chunks of every arena).
pub const TRIM_AFTER_OBJECTS: usize = 1_000;

/// Rollout ticks whose rollouts' states changed this many times or more are followed by a
/// trim too: each judged rollout reads, writes and stores its state (a few KiB each).
pub const TRIM_AFTER_ROLLOUTS: usize = 100;

/// Return the allocator's free memory to the system, as far as it can (`malloc_trim(0)`).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only gives free pages back to the kernel; it touches no live
    // allocation and is thread-safe (it locks each arena in turn).
    unsafe {
        libc::malloc_trim(0);
    }
}
