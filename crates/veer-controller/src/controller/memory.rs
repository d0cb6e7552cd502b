//! The allocator veer runs on, giving freed memory back to the system after a pass that
//! built much and let it go, and unmapping code an idle loop does not run.
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
//!
//! **Code pages.** An idle `veer run` with a small repository held 5 MiB of its own memory
//! and 22 MiB of its binary's and libraries' pages: start-up and a revision's load and sync
//! run code the idle polls never touch, and this kernel maps a file's pages a whole folio
//! at a time. After such a pass [`release_code_pages`] unmaps them (the `daemon` bench's
//! idle RSS 27.2 → 16.7 MiB); the pages stay in the page cache and come back on use, a
//! minor fault each.

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

/// A mapping of the program's binary or a shared library that holds only the file's own
/// pages: read-only, and without a page written to since it was mapped (`Anonymous: 0 kB`;
/// the loader's relocated RELRO pages are such writes). Other files' mappings (libgit2's
/// pack windows) are left alone: they come and go while veer runs, and an address freed
/// meanwhile could be reused by a writable mapping.
#[derive(Debug, PartialEq)]
struct FilePages {
    start: usize,
    len: usize,
    resident_kib: u64,
}

/// The mappings of `smaps` (the text of `/proc/<pid>/smaps`) of the binary `exe` or a
/// shared library that hold only their file's pages ([`FilePages`]) and have some resident.
fn file_pages(smaps: &str, exe: &str) -> Vec<FilePages> {
    let program = |path: &str| {
        path == exe
            || (path.starts_with('/') && path.rsplit('/').next().is_some_and(|f| f.contains(".so")))
    };
    let mut out = Vec::new();
    // The mapping being read, when it is one of the program's; its Anonymous line.
    let mut current: Option<FilePages> = None;
    let mut anonymous = 0;
    let mut finish = |m: Option<FilePages>, anonymous: u64| {
        if let Some(m) = m
            && anonymous == 0
            && m.resident_kib > 0
        {
            out.push(m);
        }
    };
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            finish(current.take(), anonymous);
            anonymous = 0;
            let perms = fields.next().unwrap_or_default();
            let path = fields.nth(3).unwrap_or_default();
            current = (!perms.contains('w') && perms.ends_with('p') && program(path)).then(|| {
                FilePages {
                    start,
                    len: end.saturating_sub(start),
                    resident_kib: 0,
                }
            });
            continue;
        }
        let kib = fields
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        match (first, current.as_mut()) {
            ("Rss:", Some(m)) => m.resident_kib = kib,
            ("Anonymous:", Some(_)) => anonymous = kib,
            _ => {}
        }
    }
    finish(current.take(), anonymous);
    out
}

/// Unmap the pages of code and read-only data this process has mapped from its binary and
/// libraries; what it runs again is mapped again from the page cache on first use (a minor
/// fault), as after the kernel reclaimed them under memory pressure. Called after each pass
/// that loaded a revision: start-up (configuration, TLS, the first lists) and a revision's
/// load and sync run code an idle loop never touches, and this kernel maps a file's pages
/// in whole folios, so a small repository's `veer run` had 22 MiB of its 27 MiB RSS in such
/// pages.
/// Only mappings without a page written since mapping are touched: dropping one of those
/// loses nothing. The KiB unmapped; 0 where `/proc/self/smaps` cannot be read.
#[cfg(target_os = "linux")]
pub fn release_code_pages() -> u64 {
    let (Ok(smaps), Ok(exe)) = (
        std::fs::read_to_string("/proc/self/smaps"),
        std::fs::read_link("/proc/self/exe"),
    ) else {
        return 0;
    };
    let mut released = 0;
    for m in file_pages(&smaps, &exe.to_string_lossy()) {
        // SAFETY: the range is one whole mapping of the binary or a library, read-only and
        // holding none but the file's own (clean) pages, so MADV_DONTNEED only drops them
        // from this process's page tables; the next access faults the same bytes in from
        // the page cache. Such mappings live as long as the process (nothing is unloaded)
        // and are not made writable after start-up, so the range cannot have gained written
        // pages, or become another mapping, since smaps was read.
        let done =
            unsafe { libc::madvise(m.start as *mut libc::c_void, m.len, libc::MADV_DONTNEED) };
        if done == 0 {
            released += m.resident_kib;
        }
    }
    released
}

/// Elsewhere: nothing to do.
#[cfg(not(target_os = "linux"))]
pub fn release_code_pages() -> u64 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mappings_holding_their_files_pages_alone_are_released() {
        let smaps = "\
55d0a0000000-55d0a0400000 r--p 00000000 fd:01 42 /usr/bin/veer
Rss:                1580 kB
Anonymous:             0 kB
55d0a0400000-55d0a1400000 r-xp 00400000 fd:01 42 /usr/bin/veer
Rss:                9112 kB
Anonymous:             0 kB
55d0a1400000-55d0a1500000 r--p 01400000 fd:01 42 /usr/bin/veer
Rss:                 424 kB
Anonymous:           424 kB
55d0a1500000-55d0a1600000 rw-p 01500000 fd:01 42 /usr/bin/veer
Rss:                 100 kB
Anonymous:           100 kB
55d0a1600000-55d0a1700000 r--p 00000000 00:00 0
Rss:                   4 kB
Anonymous:             0 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
Rss:                   8 kB
Anonymous:             0 kB
7f0000000000-7f0000100000 r-xp 00000000 fd:01 7 /usr/lib/libc.so.6
Rss:                   0 kB
Anonymous:             0 kB
7f0000100000-7f0000200000 r-xp 00000000 fd:01 8 /usr/lib/libm.so.6
Rss:                 312 kB
Anonymous:             0 kB
7f0000200000-7f0000300000 r--p 00000000 fd:01 9 /srv/cache/objects/pack/pack-1.pack
Rss:                 512 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
";
        assert_eq!(
            file_pages(smaps, "/usr/bin/veer"),
            vec![
                FilePages {
                    start: 0x55d0a0000000,
                    len: 0x400000,
                    resident_kib: 1580
                },
                FilePages {
                    start: 0x55d0a0400000,
                    len: 0x1000000,
                    resident_kib: 9112
                },
                FilePages {
                    start: 0x7f0000100000,
                    len: 0x100000,
                    resident_kib: 312
                },
            ]
        );
    }

    /// This process's own mappings: its code is found and released, and it still runs
    /// after (the pages come back on use).
    #[cfg(target_os = "linux")]
    #[test]
    fn released_code_comes_back_on_use() {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let exe = std::fs::read_link("/proc/self/exe").expect("/proc/self/exe");
        let found = file_pages(&smaps, &exe.to_string_lossy());
        assert!(
            found.iter().any(|m| m.resident_kib > 0),
            "no mapping of the test binary's own code found"
        );
        assert!(release_code_pages() > 0);
        let again = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        // Running the test's next lines mapped some of its code again.
        assert!(!file_pages(&again, &exe.to_string_lossy()).is_empty());
        assert!(file_pages("", "/usr/bin/veer").is_empty());
    }

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
