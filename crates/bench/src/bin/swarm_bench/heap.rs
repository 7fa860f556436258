//! Heap bytes by thread group, so the manager's memory can be told apart from the 5,000
//! agents' in one process (VmHWM covers them all). A global allocator wraps the one `swarmd`
//! uses (mimalloc) and adds or subtracts each allocation's size to the counter of the group
//! of the thread that makes the call; `mark_manager_thread` puts a thread in the manager
//! group (the managers' runtimes call it when they start a thread).
//!
//! Owns only those counters; it must not change how memory is allocated.
//!
//! Why this estimate is fair: the managers and agents share no heap objects (they talk over
//! TCP), so what a manager thread allocates is freed by a manager thread. It counts requested
//! bytes, not pages: allocator overhead and fragmentation are in the RSS figure only.

// The GlobalAlloc trait is unsafe to implement; the bodies only forward to `swarmd`'s allocator
// with the caller's arguments, as its contract requires.
#![allow(unsafe_code)]

// The allocator `swarmd` uses (its `main.rs`), so the bench measures what runs in production.
use mimalloc::MiMalloc as Inner;
use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};

thread_local! {
    // const-initialised and without a destructor, so it is safe to read inside the allocator.
    static MANAGER: Cell<bool> = const { Cell::new(false) };
}

static MANAGER_LIVE: AtomicI64 = AtomicI64::new(0);
static MANAGER_PEAK: AtomicI64 = AtomicI64::new(0);

pub struct Counting;

fn add(delta: i64) {
    if MANAGER.with(Cell::get) {
        let now = MANAGER_LIVE.fetch_add(delta, Ordering::Relaxed) + delta;
        if delta > 0 {
            MANAGER_PEAK.fetch_max(now, Ordering::Relaxed);
        }
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = Inner.alloc(layout);
        if !p.is_null() {
            add(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        Inner.dealloc(ptr, layout);
        add(-(layout.size() as i64));
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = Inner.alloc_zeroed(layout);
        if !p.is_null() {
            add(layout.size() as i64);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = Inner.realloc(ptr, layout, new_size);
        if !p.is_null() {
            add(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

/// Counts the calling thread's allocations as the manager's from now on.
pub fn mark_manager_thread() {
    MANAGER.with(|m| m.set(true));
}

/// Manager heap bytes now and at their peak.
pub fn manager_bytes() -> (i64, i64) {
    (
        MANAGER_LIVE.load(Ordering::Relaxed),
        MANAGER_PEAK.load(Ordering::Relaxed),
    )
}
