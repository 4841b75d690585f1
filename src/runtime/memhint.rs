//! Hints to the CPU and the kernel about large, randomly accessed tables (the group table's
//! index and states): a prefetch of a cache line that a loop will need a few iterations later,
//! and zeroed allocations that ask for transparent huge pages and are written, not just mapped.
//!
//! Invariant: hints only. Nothing here changes a value: a prefetch never faults (any address
//! may be given), and a refused `madvise` leaves ordinary pages.

/// Tables smaller than this get no huge-page advice (they fit the caches; a 2 MiB page would
/// be mostly unused).
const HUGE_MIN_BYTES: usize = 4 << 20;

/// Asks the CPU to bring the cache line holding `p` into its caches.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing into the program and never faults, so any
    // address (even one out of bounds) is fine.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// A vector of `n` zeros whose pages are faulted in by writing them (a zeroed allocation read
/// before it is written maps the kernel's shared zero page first, and the first write to each
/// page then costs a copy-on-write fault and a TLB shootdown of every thread's CPU), with
/// huge pages asked for when it is large.
pub fn zeroed_vec(n: usize) -> Vec<u64> {
    let mut v: Vec<u64> = Vec::with_capacity(n);
    advise_huge(&v);
    v.resize(n, 0);
    v
}

/// Asks for transparent huge pages over `v`'s buffer when it is large (Linux; elsewhere a
/// no-op). Pages already faulted in stay as they are; later faults in the range (a vector's
/// growth) get huge pages where the kernel can give them. Fewer faults, and fewer TLB misses
/// for a table probed at random.
pub fn advise_huge<T>(v: &Vec<T>) {
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if bytes < HUGE_MIN_BYTES {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_ptr() as usize;
        let (lo, hi) = (
            (start + HUGE - 1) & !(HUGE - 1),
            (start + bytes) & !(HUGE - 1),
        );
        if hi > lo {
            // SAFETY: the range lies inside `v`'s own allocation; MADV_HUGEPAGE changes how the
            // kernel backs those pages, never their contents. A failure (THP disabled) is
            // ignored: the pages stay ordinary.
            unsafe {
                libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_vectors_are_zero_small_and_large() {
        for n in [0, 1, 1000, (HUGE_MIN_BYTES / 8) + 12345] {
            let v = zeroed_vec(n);
            assert_eq!(v.len(), n);
            assert!(v.iter().all(|&x| x == 0));
        }
    }

    #[test]
    fn advice_keeps_the_contents() {
        let mut v: Vec<u64> = (0..(HUGE_MIN_BYTES / 8 * 3) as u64).collect();
        advise_huge(&v);
        v.push(7);
        advise_huge(&v);
        assert!(
            v.iter()
                .take(v.len() - 1)
                .enumerate()
                .all(|(i, &x)| x == i as u64)
        );
        assert_eq!(v.last(), Some(&7));
        // Prefetching anywhere, even past the end, is harmless.
        prefetch(v.as_ptr().wrapping_add(1 << 30));
    }
}
