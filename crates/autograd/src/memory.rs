//! Process-wide memory settings for tape workloads.

/// Asks the C allocator to keep freed memory for reuse instead of handing big blocks back
/// to the OS.
///
/// A training step frees and reallocates the same large tensors every step. With glibc's
/// defaults each of them is a fresh `mmap`, and first touching its pages costs a page
/// fault per 4 KiB: at `T = 100` the spiking auto-encoder spent more time in the kernel
/// than in its own code (4.2 s per step against 2.6 s with this). Kept blocks are reused
/// from the heap instead, at the price of some fragmentation: that step's peak RSS is
/// 666 MiB against 551 MiB without. Call it once, at the start of a program; it is a
/// no-op where the allocator is not glibc's.
pub fn retain_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator tunables; any value is accepted or refused.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        // One heap for all threads: blocks freed by one thread serve the next step's
        // allocations on another (per-thread arenas kept 5 % more at the peak).
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
