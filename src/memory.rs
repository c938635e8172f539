//! When freed memory goes back to the operating system, for the allocator the binary uses
//! (mimalloc, `src/main.rs`).
//!
//! By default mimalloc hands freed memory back a second after it is freed (its "purge delay"), and
//! the next large allocation takes fresh pages, which the kernel zeroes on first touch: at
//! ml-latest's size the kernel spent about 5% of a training's CPU zeroing pages
//! (`clear_page_erms` in `perf`). Never handing memory back made the run 7–8 s faster but held
//! 2.54–2.65 GB at its end instead of 1.8 GB (the target is 2.5 GB). So `train` keeps freed
//! memory for reuse while a stage runs ([`hold_freed_memory`]) and hands it back when the stage
//! ends ([`release_freed_memory`], called by `Stage::done` in `progress.rs`): a stage reuses
//! its own pages, and the peak is what one stage holds, as before. Measured: about 2 s of 97 s,
//! the peak unchanged (docs/BENCHMARKS.md).
//!
//! Both only set mimalloc's options or ask it to collect: a program built on this library with
//! another global allocator is unaffected (mimalloc then holds nothing to hand back).

use libmimalloc_sys as mi;

/// mimalloc's `mi_option_purge_delay`: its place in `mi_option_e` of the mimalloc 3 that
/// `libmimalloc-sys` 0.1.49 builds (whose Rust constants name only older options). A test reads
/// its documented default through this number.
const PURGE_DELAY: mi::mi_option_t = 15;

/// The purge delay while freed memory is held: long enough to outlast any stage.
const HELD_MS: std::os::raw::c_long = 3_600_000;

/// Keeps memory freed from now on for reuse by the process until [`release_freed_memory`].
pub fn hold_freed_memory() {
    // SAFETY: setting an option is allowed at any time, from any thread.
    unsafe { mi::mi_option_set(PURGE_DELAY, HELD_MS) }
}

/// Hands the memory freed so far back to the operating system (the pages of large blocks freed
/// by any thread, and this thread's free pages).
pub fn release_freed_memory() {
    // SAFETY: collecting is allowed at any time, from any thread.
    unsafe { mi::mi_collect(true) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_named() {
        // SAFETY: reading an option is allowed at any time.
        let delay = unsafe { mi::mi_option_get(PURGE_DELAY) };
        // mimalloc 3's default (1,000 ms, `src/options.c`), or what `hold_freed_memory` set if a
        // test of this process trained first; the options beside it default to 1 and 0.
        assert!(delay == 1000 || delay == HELD_MS, "{delay}");
        // SAFETY: as above.
        let beside = unsafe {
            [
                mi::mi_option_get(PURGE_DELAY - 1),
                mi::mi_option_get(PURGE_DELAY + 1),
            ]
        };
        assert_eq!(beside, [1, 0]);
        hold_freed_memory();
        // SAFETY: as above.
        assert_eq!(unsafe { mi::mi_option_get(PURGE_DELAY) }, HELD_MS);
        release_freed_memory();
    }
}
