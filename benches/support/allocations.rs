//! Counting the allocations veer makes in a bench, when asked (`VEER_BENCH_COUNT_ALLOCATIONS=1`):
//! a count is the same from run to run where CPU time varies by 10 % or more, so it shows a
//! change too small for the CPU figures. Off by default: counting is an atomic add per
//! allocation (a few nanoseconds, some milliseconds in a tick of 1,000 rollouts), which the
//! CPU figures should not carry; off, it costs one relaxed load.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use veer::controller::memory::Allocator;

/// Set to `1` to count.
pub const ENV: &str = "VEER_BENCH_COUNT_ALLOCATIONS";

static ON: AtomicBool = AtomicBool::new(false);
static COUNT: AtomicU64 = AtomicU64::new(0);

/// veer's allocator (the binary's), counting allocations and reallocations while on.
pub struct Counting;

fn counted() {
    if ON.load(Ordering::Relaxed) {
        COUNT.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to veer's allocator with the same arguments; only a counter
// changes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted();
        unsafe { Allocator.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        counted();
        unsafe { Allocator.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { Allocator.dealloc(ptr, layout) };
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counted();
        unsafe { Allocator.realloc(ptr, layout, new_size) }
    }
}

/// Count from now on if the environment asks for it.
pub fn start_if_asked() {
    ON.store(
        std::env::var(ENV).is_ok_and(|v| v == "1"),
        Ordering::Relaxed,
    );
}

/// Allocations (and reallocations) so far; `None` when not counting.
pub fn count() -> Option<u64> {
    ON.load(Ordering::Relaxed)
        .then(|| COUNT.load(Ordering::Relaxed))
}
