//! Hints to the CPU and the kernel about large, randomly accessed tables (the group table's
//! index and states): a prefetch of a cache line that a loop will need a few iterations later,
//! and [`Words`], an array whose large buffers sit on transparent huge pages.
//!
//! Invariant: hints only. Nothing here changes a value: a prefetch never faults (any address
//! may be given), a refused `madvise` leaves ordinary pages, and `Words` holds what a
//! `Vec<u64>` would — except the words its owner gave up with [`Words::discard_prefix`], which
//! read as zeros afterwards.

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

const HUGE: usize = 2 << 20;

/// A growable array of words for the large tables of the group operator (its index and
/// states): like a `Vec<u64>`, but a buffer of [`HUGE_MIN_BYTES`] or more is aligned to 2 MiB
/// and asks for transparent huge pages before its pages are first touched, so that a table
/// probed at random takes one page fault and one TLB entry per 2 MiB instead of per 4 KiB.
/// New words are written as zeros (never mapped from the kernel's zero page first: a write to
/// such a page costs a copy-on-write fault and a TLB shootdown of every thread's CPU).
///
/// On Linux such a large buffer is a mapping of its own, and it grows by `mremap`: its pages
/// move to the larger (2 MiB-aligned) place without a copy, so a growth neither copies the
/// words, nor faults in and zeroes a second set of pages, nor holds the old and the new buffer
/// at once; the capacity past the length is address space only until it is written. Smaller
/// buffers (and every buffer elsewhere) come from the global allocator and grow by copying.
pub struct Words {
    ptr: std::ptr::NonNull<u64>,
    len: usize,
    cap: usize,
    /// Bytes at the start of the buffer whose pages were given back ([`Words::discard_prefix`]).
    discarded: usize,
}

// SAFETY: `Words` owns its buffer, as a `Vec<u64>` does.
unsafe impl Send for Words {}
// SAFETY: as for `Vec<u64>`: shared access only reads.
unsafe impl Sync for Words {}

impl Default for Words {
    fn default() -> Words {
        Words::new()
    }
}

/// Whether a buffer of `bytes` is a mapping of its own (grown by `mremap`), not the global
/// allocator's.
#[inline]
fn mapped(bytes: usize) -> bool {
    cfg!(target_os = "linux") && bytes >= HUGE_MIN_BYTES
}

impl Words {
    pub const fn new() -> Words {
        Words {
            ptr: std::ptr::NonNull::dangling(),
            len: 0,
            cap: 0,
            discarded: 0,
        }
    }

    /// `n` zero words.
    pub fn zeroed(n: usize) -> Words {
        let mut w = Words::new();
        w.push_zeros(n);
        w
    }

    fn layout(cap: usize) -> std::alloc::Layout {
        let bytes = Words::bytes_of(cap);
        let align = if bytes >= HUGE_MIN_BYTES { HUGE } else { 64 };
        std::alloc::Layout::from_size_align(bytes, align).unwrap_or_else(|_| capacity_overflow())
    }

    fn bytes_of(cap: usize) -> usize {
        cap.checked_mul(8)
            .filter(|&b| b <= isize::MAX as usize - HUGE)
            .unwrap_or_else(|| capacity_overflow())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The bytes of the buffer less those given back by [`Words::discard_prefix`].
    pub fn bytes(&self) -> usize {
        self.cap * 8 - self.discarded
    }

    pub fn as_ptr(&self) -> *const u64 {
        self.ptr.as_ptr()
    }

    /// Forgets the words, keeping the buffer.
    pub fn clear(&mut self) {
        self.len = 0;
        self.discarded = 0;
    }

    /// Gives the pages of the first `n` words back to the kernel, for an owner that never
    /// reads those words again (a group table's states once written out): the whole 2 MiB
    /// pages among them of a buffer on its own mapping (Linux), nothing otherwise. They read as
    /// zeros afterwards. An operator after the group (a sort holding its output) then reuses
    /// that memory instead of adding to it (`bench/RESULTS.md`, 2026-12-03: group → sort at 10M
    /// rows peaks 21% lower).
    pub fn discard_prefix(&mut self, n: usize) {
        #[cfg(target_os = "linux")]
        if mapped(Words::bytes_of(self.cap)) {
            // The buffer starts on a 2 MiB boundary (`reserve`).
            let hi = (n.min(self.len) * 8) & !(HUGE - 1);
            if hi > self.discarded {
                // SAFETY: `discarded..hi` lies inside our own mapping (below `len` words);
                // MADV_DONTNEED on private anonymous memory frees its pages, which read as
                // zeros after (the owner reads none of them again). A failure is ignored: the
                // pages stay.
                unsafe {
                    libc::madvise(
                        (self.ptr.as_ptr() as usize + self.discarded) as *mut libc::c_void,
                        hi - self.discarded,
                        libc::MADV_DONTNEED,
                    );
                }
                self.discarded = hi;
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = n;
    }

    /// The capacity a push of `more` words leads to: the same, or doubled (at least what is
    /// needed, at least 4), as a `Vec` grows.
    fn grown(&self, more: usize) -> usize {
        let need = self
            .len
            .checked_add(more)
            .unwrap_or_else(|| capacity_overflow());
        if need <= self.cap {
            self.cap
        } else {
            need.max(self.cap * 2).max(4)
        }
    }

    /// The bytes a push of `more` words would allocate (0 if they fit).
    pub fn growth_bytes(&self, more: usize) -> usize {
        (self.grown(more) - self.cap) * 8
    }

    /// Appends `n` zero words.
    pub fn push_zeros(&mut self, n: usize) {
        let cap = self.grown(n);
        if cap != self.cap {
            self.reallocate(cap);
        }
        // SAFETY: `len + n <= cap` words are allocated; the new ones are written before use.
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(self.len), 0, n) };
        self.len += n;
    }

    // Out of line: `push_zeros` runs once a group, a growth once per doubling.
    #[cold]
    #[inline(never)]
    fn reallocate(&mut self, cap: usize) {
        let (old, bytes) = (Words::bytes_of(self.cap), Words::bytes_of(cap));
        if mapped(old) {
            self.ptr = remap(self.ptr, old, bytes);
            self.cap = cap;
            return;
        }
        let new = if mapped(bytes) {
            map(bytes)
        } else {
            let layout = Words::layout(cap);
            // SAFETY: `cap > 0` here (a push of at least one word), so the layout is not
            // empty.
            let new = unsafe { std::alloc::alloc(layout) } as *mut u64;
            let Some(new) = std::ptr::NonNull::new(new) else {
                std::alloc::handle_alloc_error(layout)
            };
            if layout.size() >= HUGE_MIN_BYTES {
                advise_range(new.as_ptr() as usize, layout.size());
            }
            new
        };
        if self.cap > 0 {
            // SAFETY: the old buffer holds `len` initialized words, the new one room for
            // `cap >= len`; they do not overlap; the old one came from the global allocator
            // (not `mapped`, checked above) with this layout.
            unsafe {
                std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), new.as_ptr(), self.len);
                std::alloc::dealloc(self.ptr.as_ptr() as *mut u8, Words::layout(self.cap));
            }
        }
        self.ptr = new;
        self.cap = cap;
    }
}

#[cold]
fn capacity_overflow() -> ! {
    panic!("group table: capacity overflow")
}

/// The failure of a mapping of `bytes` (as the global allocator's failure is reported).
#[cold]
fn map_failed(bytes: usize) -> ! {
    std::alloc::handle_alloc_error(
        std::alloc::Layout::from_size_align(bytes, HUGE).unwrap_or_else(|_| capacity_overflow()),
    )
}

/// A fresh 2 MiB-aligned private anonymous mapping of `bytes` (a multiple of 8, at least
/// [`HUGE_MIN_BYTES`]), read-write if `rw`, else address space only; the kernel rounds its
/// length up to whole pages.
#[cfg(target_os = "linux")]
fn reserve(bytes: usize, rw: bool) -> std::ptr::NonNull<u64> {
    let span = bytes + HUGE;
    let prot = if rw {
        libc::PROT_READ | libc::PROT_WRITE
    } else {
        libc::PROT_NONE
    };
    // SAFETY: a new anonymous mapping at an address the kernel picks: it aliases nothing.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            span,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        map_failed(bytes);
    }
    let start = p as usize;
    let aligned = (start + HUGE - 1) & !(HUGE - 1);
    let end = (aligned + bytes + PAGE - 1) & !(PAGE - 1);
    let tail = (start + span + PAGE - 1) & !(PAGE - 1);
    // SAFETY: the mapping just made is `start..tail` (`span` rounded up to pages); both
    // ranges are page-aligned and inside it (`aligned - start <= HUGE - PAGE`, so `end <=
    // tail - PAGE`), and nothing refers to them.
    unsafe {
        if aligned > start {
            libc::munmap(p, aligned - start);
        }
        if tail > end {
            libc::munmap(end as *mut libc::c_void, tail - end);
        }
    }
    // SAFETY: `aligned` is in the mapping, so not null.
    unsafe { std::ptr::NonNull::new_unchecked(aligned as *mut u64) }
}

const PAGE: usize = 4096;

/// A new read-write buffer of `bytes` on its own mapping, asking for huge pages.
#[cfg(target_os = "linux")]
fn map(bytes: usize) -> std::ptr::NonNull<u64> {
    let p = reserve(bytes, true);
    advise_mapping(p.as_ptr() as usize, bytes);
    p
}

/// The buffer `p` of `old` bytes (made by [`map`] or [`remap`]) grown to `new` bytes, moved
/// (with its pages, not copied) to a 2 MiB-aligned place.
#[cfg(target_os = "linux")]
fn remap(p: std::ptr::NonNull<u64>, old: usize, new: usize) -> std::ptr::NonNull<u64> {
    let to = reserve(new, false);
    // SAFETY: `p..p + old` is our own mapping (nothing else refers to it once moved: `Words`
    // owns it); `to..to + new` is a reservation of ours that MREMAP_FIXED replaces. The moved
    // pages keep their contents, and the new ones read as zeros.
    let q = unsafe {
        libc::mremap(
            p.as_ptr() as *mut libc::c_void,
            old,
            new,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            to.as_ptr() as *mut libc::c_void,
        )
    };
    if q == libc::MAP_FAILED {
        map_failed(new);
    }
    advise_mapping(q as usize, new);
    to
}

/// Asks for transparent huge pages over the whole of our own mapping `start..start + bytes`
/// (its last partial 2 MiB too: advising only the whole 2 MiB pages would split the mapping in
/// two, and `mremap` moves only a range of one mapping). A failure is ignored, as in
/// [`advise_range`].
#[cfg(target_os = "linux")]
fn advise_mapping(start: usize, bytes: usize) {
    // SAFETY: the range (rounded up to pages) is one mapping of ours; MADV_HUGEPAGE changes how
    // the kernel backs its pages, never their contents.
    unsafe {
        libc::madvise(
            start as *mut libc::c_void,
            (bytes + PAGE - 1) & !(PAGE - 1),
            libc::MADV_HUGEPAGE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn map(_: usize) -> std::ptr::NonNull<u64> {
    unreachable!("only Linux maps its own buffers")
}

#[cfg(not(target_os = "linux"))]
fn remap(_: std::ptr::NonNull<u64>, _: usize, _: usize) -> std::ptr::NonNull<u64> {
    unreachable!("only Linux maps its own buffers")
}

impl Words {
    /// The words as bytes (little-endian on the machines we run on; the owner reads back only
    /// what it wrote through [`Words::as_bytes_mut`], so byte order never shows).
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `len` initialized words at `ptr` are `8 * len` initialized bytes, and `u8`
        // has no alignment or validity requirement.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr() as *const u8, self.len * 8) }
    }

    /// The words as bytes, to write.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `as_bytes`; any byte pattern is a valid `u64`, and `&mut self` is
        // unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr() as *mut u8, self.len * 8) }
    }
}

impl std::ops::Deref for Words {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        // SAFETY: `len` initialized words at `ptr` (dangling and aligned when 0).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for Words {
    fn deref_mut(&mut self) -> &mut [u64] {
        // SAFETY: as for `deref`, and `&mut self` is unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Words {
    fn drop(&mut self) {
        if self.cap == 0 {
            return;
        }
        let bytes = Words::bytes_of(self.cap);
        if mapped(bytes) {
            #[cfg(target_os = "linux")]
            // SAFETY: our own mapping of `bytes` (made by `map` or `remap`), not used again.
            unsafe {
                libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, bytes);
            }
        } else {
            // SAFETY: allocated in `reallocate` with this layout.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr() as *mut u8, Words::layout(self.cap)) };
        }
    }
}

/// Asks for transparent huge pages over the whole 2 MiB pages inside `start..start + bytes`
/// (Linux; elsewhere a no-op). Pages already faulted in stay as they are.
fn advise_range(start: usize, bytes: usize) {
    #[cfg(target_os = "linux")]
    {
        let (lo, hi) = (
            (start + HUGE - 1) & !(HUGE - 1),
            (start + bytes) & !(HUGE - 1),
        );
        if hi > lo {
            // SAFETY: the range lies inside one allocation of ours; MADV_HUGEPAGE changes how
            // the kernel backs those pages, never their contents. A failure (THP disabled) is
            // ignored: the pages stay ordinary.
            unsafe {
                libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_grow_like_a_vector_small_and_large() {
        for n in [0, 1, 1000, (HUGE_MIN_BYTES / 8) + 12345] {
            let w = Words::zeroed(n);
            assert_eq!(w.len(), n);
            assert!(w.iter().all(|&x| x == 0));
        }
        let mut w = Words::new();
        let mut v: Vec<u64> = Vec::new();
        let mut x = 1u64;
        // Past the huge-page size: the buffer moves to a 2 MiB-aligned one and keeps its words.
        while v.len() < HUGE_MIN_BYTES / 8 * 2 {
            let n = (x % 7 + 1) as usize;
            assert_eq!(w.growth_bytes(n) > 0, w.len() + n > w.capacity());
            w.push_zeros(n);
            let at = w.len() - 1;
            w[at] = x;
            v.extend(std::iter::repeat_n(0, n - 1));
            v.push(x);
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
        }
        assert_eq!(&w[..], &v[..]);
        assert_eq!(w.as_ptr() as usize % HUGE, 0);
        w.clear();
        assert!(w.is_empty());
        w.push_zeros(3);
        assert_eq!(&w[..], &[0, 0, 0]);
        // Large buffers grow by moving their pages (Linux): the words stay, the new ones are
        // zeros, the buffer stays 2 MiB-aligned.
        let mut w = Words::zeroed(HUGE_MIN_BYTES / 8 + 1);
        for (i, x) in w.iter_mut().enumerate() {
            *x = i as u64 * 3 + 1;
        }
        for _ in 0..3 {
            let n = w.len();
            w.push_zeros(n);
            assert_eq!(w.as_ptr() as usize % HUGE, 0);
            assert!(w[n..].iter().all(|&x| x == 0));
            let first = &w[..HUGE_MIN_BYTES / 8 + 1];
            assert!(
                first
                    .iter()
                    .enumerate()
                    .all(|(i, &x)| x == i as u64 * 3 + 1)
            );
        }
        // Prefetching anywhere, even past the end, is harmless.
        prefetch(w.as_ptr().wrapping_add(1 << 30));
        drop(w);
    }

    /// `discard_prefix` gives back the whole 2 MiB pages of the prefix (Linux: they read as
    /// zeros after), keeps every word after them, asks nothing again for a shorter prefix, and
    /// a cleared buffer holds what is pushed into it again.
    #[test]
    fn discarding_a_prefix_keeps_the_rest() {
        let page = HUGE / 8;
        let mut w = Words::zeroed(page * 4);
        for (i, x) in w.iter_mut().enumerate() {
            *x = i as u64 + 1;
        }
        w.discard_prefix(page * 2 + 5);
        w.discard_prefix(page);
        assert_eq!(w.len(), page * 4);
        assert!(
            w[page * 2..]
                .iter()
                .enumerate()
                .all(|(i, &x)| x == (page * 2 + i) as u64 + 1)
        );
        if cfg!(target_os = "linux") {
            assert!(w[..page * 2].iter().all(|&x| x == 0));
            assert_eq!(w.bytes(), w.capacity() * 8 - 2 * HUGE);
        }
        w.clear();
        w.push_zeros(page * 3);
        w[0] = 7;
        assert_eq!((w[0], w[1], w[page * 3 - 1]), (7, 0, 0));
    }
}
