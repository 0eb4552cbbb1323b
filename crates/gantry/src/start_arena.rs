//! The start-up arena: a global allocator that serves a command's small allocations from one
//! static region by bumping an offset, until the command closes it, and passes everything
//! else to the system allocator.
//!
//! `gantry run` makes ~8,000 small allocations before its first job starts (the spec's names,
//! needs and commands, the run's job records, the first step's audit records), and the C
//! allocator serves each from a cold heap (~170 instructions, a 16-byte header, 32 bytes at
//! least). Here each costs a compare-and-swap and takes its own size. The arena is opened by
//! the entry point for `gantry run` only and closed once the run's first jobs are started;
//! other commands, `serve` above all, never use it.
//!
//! The invariant that keeps it sound: every byte at or above `next` is free. An allocation
//! takes `[start, start + size)` by moving `next` from at most `start` to `start + size`; a
//! free gives back only the block that ends at `next` (moving it back to the block's start);
//! anything else freed is left where it is, lost until the process ends. The region is in
//! `.bss`, so pages not reached cost nothing.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};

/// Largest allocation the arena serves; larger ones (a read file, a long list's buffer) go
/// to the system allocator, so their growth leaves no garbage here.
pub const LARGEST: usize = 16 * 1024;

/// Alignment of the region's start: no allocation asks for more.
const PAGE: usize = 4096;

#[repr(C, align(4096))]
struct Region<const N: usize>(UnsafeCell<[u8; N]>);

/// An arena of `N` bytes in front of the system allocator.
pub struct StartArena<const N: usize> {
    region: Region<N>,
    /// Offset of the first free byte.
    next: AtomicUsize,
    open: AtomicBool,
}

// SAFETY: the region's bytes are handed out through `next` only, each range to one caller
// (the compare-and-swap orders them); the arena never reads or writes them itself.
unsafe impl<const N: usize> Sync for StartArena<N> {}

impl<const N: usize> Default for StartArena<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> StartArena<N> {
    /// A closed arena (everything goes to the system allocator until [`Self::open`]).
    pub const fn new() -> Self {
        StartArena {
            region: Region(UnsafeCell::new([0; N])),
            next: AtomicUsize::new(0),
            open: AtomicBool::new(false),
        }
    }

    /// Small allocations are served here from now on, until [`Self::close`] or until full.
    pub fn open(&self) {
        self.open.store(true, Relaxed);
    }

    /// Allocations go to the system allocator from now on; what the arena holds stays valid.
    pub fn close(&self) {
        self.open.store(false, Relaxed);
    }

    /// Bytes handed out (and not given back at the end).
    pub fn used(&self) -> usize {
        self.next.load(Relaxed)
    }

    fn base(&self) -> usize {
        self.region.0.get() as usize
    }

    fn owns(&self, ptr: *mut u8) -> bool {
        (ptr as usize).wrapping_sub(self.base()) < N
    }

    /// A fresh block, or `None` when closed, too large or full.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        if layout.size() > LARGEST || layout.align() > PAGE || !self.open.load(Relaxed) {
            return None;
        }
        // Acquire and release on `next`: a block freed by one thread and taken by another is
        // handed over with what the first wrote to it.
        let mut cur = self.next.load(Acquire);
        loop {
            // The base is page-aligned, so aligning the offset aligns the address; alignments
            // are powers of two (a mask, not a division).
            let mask = layout.align() - 1;
            let start = cur.checked_add(mask)? & !mask;
            let end = start.checked_add(layout.size()).filter(|&e| e <= N)?;
            match self.next.compare_exchange_weak(cur, end, AcqRel, Acquire) {
                Ok(_) => return Some((self.base() + start) as *mut u8),
                Err(now) => cur = now,
            }
        }
    }
}

// SAFETY: blocks are disjoint (see the module's invariant), aligned as asked and inside the
// region; pointers the arena does not own go to `System` with their layout unchanged.
//
// Not inlined: with link-time optimisation every allocation site in the program took its own
// copy of these (the executable's code grew by 1.2 MB, and `gantry serve` kept 1.6 MB more
// of it resident); one copy costs a call.
unsafe impl<const N: usize> GlobalAlloc for StartArena<N> {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(p) => p,
            // SAFETY: the caller's layout, as the caller promised it.
            None => unsafe { System.alloc(layout) },
        }
    }

    #[inline(never)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(p) => {
                // SAFETY: a fresh block of `layout.size()` bytes (it may hold a freed block's
                // bytes).
                unsafe { p.write_bytes(0, layout.size()) };
                p
            }
            // SAFETY: as in `alloc`.
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.owns(ptr) {
            // Given back only if it is the last block; otherwise left in place.
            let start = ptr as usize - self.base();
            let _ = self
                .next
                .compare_exchange(start + layout.size(), start, AcqRel, Relaxed);
        } else {
            // SAFETY: a block `System` handed out, with its layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(ptr) {
            // SAFETY: a block `System` handed out, with its layout and the caller's new size.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let start = ptr as usize - self.base();
        // The last block grows or shrinks where it is, while the arena is open.
        if new_size <= LARGEST
            && start + new_size <= N
            && self.open.load(Relaxed)
            && self
                .next
                .compare_exchange(start + layout.size(), start + new_size, AcqRel, Relaxed)
                .is_ok()
        {
            return ptr;
        }
        if new_size <= layout.size() {
            // A smaller block inside this one: the rest is lost, the block stays valid.
            return ptr;
        }
        // SAFETY: `new_size` is non-zero (larger than the old size), with the old alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as above.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the old size and do not overlap (the new one
            // is fresh).
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size());
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Small = StartArena<{ 64 * 1024 }>;

    fn arena() -> Box<Small> {
        let a = Box::new(Small::new());
        a.open();
        a
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn blocks_are_aligned_disjoint_and_inside_the_region() {
        let a = arena();
        let mut blocks = Vec::new();
        for (i, align) in [1, 8, 16, 64, 4096, 2, 32]
            .into_iter()
            .cycle()
            .take(60)
            .enumerate()
        {
            let l = layout(1 + i * 7, align);
            let p = unsafe { a.alloc(l) };
            assert!(a.owns(p), "block {i} came from the arena");
            assert_eq!(p as usize % align, 0);
            unsafe { p.write_bytes(i as u8, l.size()) };
            blocks.push((p, l, i as u8));
        }
        // Each block still holds its own bytes: none overlapped another.
        for (p, l, v) in &blocks {
            let s = unsafe { std::slice::from_raw_parts(*p, l.size()) };
            assert!(s.iter().all(|b| b == v));
        }
    }

    #[test]
    fn only_the_last_block_is_given_back() {
        let a = arena();
        let x = unsafe { a.alloc(layout(24, 8)) };
        let y = unsafe { a.alloc(layout(24, 8)) };
        let used = a.used();
        unsafe { a.dealloc(x, layout(24, 8)) };
        assert_eq!(a.used(), used, "a block in the middle stays taken");
        unsafe { a.dealloc(y, layout(24, 8)) };
        assert_eq!(a.used(), used - 24);
        assert_eq!(
            unsafe { a.alloc(layout(24, 8)) },
            y,
            "the freed end is reused"
        );
    }

    #[test]
    fn realloc_grows_the_last_block_in_place_and_copies_any_other() {
        let a = arena();
        let x = unsafe { a.alloc(layout(16, 8)) };
        unsafe { x.write_bytes(7, 16) };
        let x2 = unsafe { a.realloc(x, layout(16, 8), 48) };
        assert_eq!(x2, x, "the last block grows where it is");
        let y = unsafe { a.alloc(layout(8, 8)) };
        let x3 = unsafe { a.realloc(x2, layout(48, 8), 96) };
        assert_ne!(x3, x2, "a block with another after it moves");
        assert!(
            unsafe { std::slice::from_raw_parts(x3, 16) }
                .iter()
                .all(|&b| b == 7)
        );
        assert!(x3 as usize > y as usize);
        // Shrinking keeps the block.
        assert_eq!(unsafe { a.realloc(y, layout(8, 8), 4) }, y);
    }

    #[test]
    fn large_blocks_full_arenas_and_closed_arenas_use_the_system_allocator() {
        let a = Box::new(StartArena::<4096>::new());
        let closed = unsafe { a.alloc(layout(8, 8)) };
        assert!(!a.owns(closed), "closed until opened");
        unsafe { a.dealloc(closed, layout(8, 8)) };
        a.open();
        let big = unsafe { a.alloc(layout(LARGEST + 1, 8)) };
        assert!(!a.owns(big));
        unsafe { a.dealloc(big, layout(LARGEST + 1, 8)) };
        let fill = unsafe { a.alloc(layout(4000, 8)) };
        assert!(a.owns(fill));
        let over = unsafe { a.alloc(layout(200, 8)) };
        assert!(!a.owns(over), "a full arena passes the request on");
        // A block from the arena grown past what is left moves to the system allocator, bytes
        // and all.
        unsafe { fill.write_bytes(3, 4000) };
        let moved = unsafe { a.realloc(fill, layout(4000, 8), 9000) };
        assert!(!a.owns(moved));
        assert!(
            unsafe { std::slice::from_raw_parts(moved, 4000) }
                .iter()
                .all(|&b| b == 3)
        );
        unsafe {
            a.dealloc(moved, layout(9000, 8));
            a.dealloc(over, layout(200, 8));
        }
        a.close();
        let after = unsafe { a.alloc(layout(8, 8)) };
        assert!(!a.owns(after));
        unsafe { a.dealloc(after, layout(8, 8)) };
    }

    #[test]
    fn zeroed_blocks_are_zero_even_where_a_freed_block_was() {
        let a = arena();
        let x = unsafe { a.alloc(layout(64, 8)) };
        unsafe { x.write_bytes(0xff, 64) };
        unsafe { a.dealloc(x, layout(64, 8)) };
        let z = unsafe { a.alloc_zeroed(layout(64, 8)) };
        assert_eq!(z, x);
        assert!(
            unsafe { std::slice::from_raw_parts(z, 64) }
                .iter()
                .all(|&b| b == 0)
        );
    }

    #[test]
    fn threads_get_disjoint_blocks() {
        let a: &'static Small = Box::leak(arena());
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..300 {
                        let l = layout(8 + i % 24, 8);
                        let p = unsafe { a.alloc(l) };
                        unsafe { p.write_bytes(t, l.size()) };
                        // Some are given back at once (the last block, when no one came after).
                        if i % 3 == 0 {
                            unsafe { a.dealloc(p, l) };
                        } else {
                            mine.push((p as usize, l));
                        }
                    }
                    (t, mine)
                })
            })
            .collect();
        for h in threads {
            let (t, mine) = h.join().unwrap();
            for (p, l) in mine {
                let s = unsafe { std::slice::from_raw_parts(p as *const u8, l.size()) };
                assert!(
                    s.iter().all(|&b| b == t),
                    "thread {t}'s block was overwritten"
                );
            }
        }
    }
}
