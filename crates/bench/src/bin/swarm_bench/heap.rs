//! Heap bytes by thread group, so the manager's memory can be told apart from the 5,000
//! agents' in one process (VmHWM covers them all). A global allocator wraps the one `swarmd`
//! uses (mimalloc) and adds or subtracts each allocation's size to the counter of the group
//! of the thread that makes the call; `mark_manager_thread` puts a thread in the manager
//! group (the managers' runtimes call it when they start a thread), `mark_joiner_thread` in
//! the group of the manager the `join` scenario adds, so its cost is seen on its own.
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

/// Which counter a thread's allocations go to.
const OTHER: u8 = 0;
const MANAGER: u8 = 1;
/// The manager the `join` scenario adds, counted apart from the others.
const JOINER: u8 = 2;

thread_local! {
    // const-initialised and without a destructor, so it is safe to read inside the allocator.
    static GROUP: Cell<u8> = const { Cell::new(OTHER) };
}

/// Live and peak bytes per group (index = group; OTHER's are not kept).
static LIVE: [AtomicI64; 3] = [AtomicI64::new(0), AtomicI64::new(0), AtomicI64::new(0)];
static PEAK: [AtomicI64; 3] = [AtomicI64::new(0), AtomicI64::new(0), AtomicI64::new(0)];

pub struct Counting;

fn add(delta: i64) {
    let g = usize::from(GROUP.with(Cell::get));
    if g == usize::from(OTHER) {
        return;
    }
    if let (Some(live), Some(peak)) = (LIVE.get(g), PEAK.get(g)) {
        let now = live.fetch_add(delta, Ordering::Relaxed) + delta;
        if delta > 0 {
            peak.fetch_max(now, Ordering::Relaxed);
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
    GROUP.with(|g| g.set(MANAGER));
}

/// Counts the calling thread's allocations as the joining manager's from now on.
pub fn mark_joiner_thread() {
    GROUP.with(|g| g.set(JOINER));
}

fn bytes(group: u8) -> (i64, i64) {
    let g = usize::from(group);
    let read = |a: &[AtomicI64; 3]| a.get(g).map_or(0, |x| x.load(Ordering::Relaxed));
    (read(&LIVE), read(&PEAK))
}

/// Manager heap bytes now and at their peak (the joining manager's apart).
pub fn manager_bytes() -> (i64, i64) {
    bytes(MANAGER)
}

/// The joining manager's heap bytes now and at their peak.
pub fn joiner_bytes() -> (i64, i64) {
    bytes(JOINER)
}
