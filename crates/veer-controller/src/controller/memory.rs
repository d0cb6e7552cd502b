//! The allocator veer runs on, and giving freed memory back to the system after a pass that
//! built much and let it go.
//!
//! **mimalloc, not glibc's malloc.** A revision is millions of small allocations (every
//! JSON key and short string of 10,000 manifests); glibc puts a 16-byte header on each and
//! rounds it up to 32 bytes at least: at 10,000 objects `veer run` held 88 MiB of malloc'd
//! memory for 71 MiB asked for (heaptrack), and a rollout tick spent about a third of its
//! CPU in `malloc`/`free`/`malloc_consolidate` (about a sixth on mimalloc). mimalloc keeps
//! small objects in size-class pages without headers and frees per thread without locks.
//! The binary declares [`Allocator`] global; the benches do the same, so their figures are
//! the binary's. Tests run on the system allocator (nothing in veer depends on which it
//! is), and so does a build with the `system-alloc` feature, for heaptrack.
//!
//! **Trimming.** Both allocators keep what is freed for the next allocation. A pass that
//! loads a revision or plans every object allocates hundreds of bytes an object and frees
//! them when it ends, so such a pass is followed by [`trim`]: mimalloc's collection, and
//! glibc's `malloc_trim(0)` for what the C libraries (libgit2, OpenSSL) allocated through
//! it. Idle passes allocate next to nothing and are not followed by a trim.

/// The global allocator of `veer` and its benches.
#[cfg(not(feature = "system-alloc"))]
pub use mimalloc::MiMalloc as Allocator;
/// The system allocator, with the `system-alloc` feature: heaptrack and other malloc
/// interposers see only what goes through `malloc`.
#[cfg(feature = "system-alloc")]
pub use std::alloc::System as Allocator;

/// mimalloc's `mi_option_purge_delay` (its `mimalloc.h`, v2 and v3; the crate has no name
/// for it). `tests::purge_delay_is_the_option_it_names` pins it to the version linked.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Set veer's allocator options: call first thing in `main`. Pages freed go back to the
/// system at once, not after mimalloc's default delay (1 s, 10 s for whole regions): a pass
/// frees from several threads, and [`trim`] after it did not get those pages back (at
/// 10,000 objects `veer run`'s steady RSS was 118 MiB with the delay, 110 without). The
/// rollout bench's tick CPU stayed within its run-to-run noise either way, though the kernel
/// now zeroes the pages mimalloc takes back. `MIMALLOC_PURGE_DELAY` in the environment wins.
pub fn configure() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: setting an option only changes when mimalloc purges; any thread may do it.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
    }
}

/// Passes that parsed at least this many files or planned this many objects are followed by
/// a trim: below it, what a pass frees is small beside what the trim costs (a walk over the
/// free memory of every heap).
pub const TRIM_AFTER_OBJECTS: usize = 1_000;

/// Rollout ticks whose rollouts' states changed this many times or more are followed by a
/// trim too: each judged rollout reads, writes and stores its state (a few KiB each).
pub const TRIM_AFTER_ROLLOUTS: usize = 100;

/// Return the allocators' free memory to the system, as far as they can.
pub fn trim() {
    // SAFETY: mi_collect only frees and purges mimalloc's unused pages; it touches no live
    // allocation. When mimalloc is not the global allocator it has next to nothing to do.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only gives free pages back to the kernel; it touches no live
    // allocation and is thread-safe (it locks each arena in turn).
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_delay_is_the_option_it_names() {
        // v3's default purge delay is 1000 ms (v2's 10): another value here means the enum
        // moved and `PURGE_DELAY` sets some other option.
        // SAFETY: reading an option has no effect on allocations.
        let delay = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        assert!(
            std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() || delay == 1000,
            "option {PURGE_DELAY} reads {delay}, not mimalloc's purge delay default"
        );
    }
}
