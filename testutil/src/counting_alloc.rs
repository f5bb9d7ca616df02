//! A counting global allocator: `System`, remembering the largest single allocation each
//! thread asks for, so a test can bound what decoding hostile bytes reserves at once. The
//! type lives here once; each binary that measures declares it as its allocator:
//! `#[global_allocator] static ALLOCATOR: CountingAlloc = CountingAlloc;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

/// `System`, noting the largest size each thread asks for (per thread, so tests running in
/// parallel do not see each other's allocations). Read it with [`largest_allocation`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: allocations during thread teardown must not panic.
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

// SAFETY: every call is forwarded unchanged to `System`; noting the size neither allocates
// nor unwinds.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f`; returns its result and the largest single allocation it made on this thread.
///
/// # Panics
///
/// When [`CountingAlloc`] is not this binary's global allocator: every bound on the result
/// would then hold without measuring anything.
pub fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|largest| largest.set(0));
    drop(black_box(Box::new(black_box(0u8))));
    assert!(
        LARGEST.with(Cell::get) > 0,
        "allocations are not counted: declare `#[global_allocator] static ALLOCATOR: \
         CountingAlloc = CountingAlloc;` in this test binary"
    );
    LARGEST.with(|largest| largest.set(0));
    let result = f();
    (result, LARGEST.with(Cell::get))
}
