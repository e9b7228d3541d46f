//! The read path allocates nothing: a counting global allocator watches grace checks, epoch
//! reads and detach-record clears, hit and miss.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use tether_core::{Access, Engine};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; only a thread-local
// counter is touched besides.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn read_path_does_not_allocate() {
    let engine = Engine::new();
    for i in 0..1000 {
        let v = format!("pvc-{i}");
        engine.publish(&v, "node-a", Access::RWO, None).unwrap();
        if i % 2 == 0 {
            engine.unpublish(&v, Some("node-a")).unwrap();
        }
    }
    let names: Vec<String> = (0..2000).map(|i| format!("pvc-{i}")).collect();
    let grace = Duration::from_secs(30);
    let mut hits = 0;
    let n = allocations_during(|| {
        for v in &names {
            hits += usize::from(engine.is_within_grace_period(v, grace).unwrap());
            engine.epoch(v).unwrap();
        }
    });
    assert_eq!(hits, 500, "half of the first 1000 were detached just now");
    assert_eq!(n, 0, "grace checks and epoch reads allocated {n} times");
    let n = allocations_during(|| {
        for v in &names {
            engine.clear_detach_timestamp(v).unwrap();
        }
    });
    assert_eq!(n, 0, "clearing detach records allocated {n} times");
}
