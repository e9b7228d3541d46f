//! Loom models of the state read and written outside one entry guard: the detach stamp, the
//! counters, the term, the epoch floor and the node table's release of a name.

use loom::sync::Arc;
use loom::thread;

use crate::record::{next_epoch, DetachStamp};
use crate::stats::{Counter, Counters};
use crate::sync::{AtomicU64, Ordering};

/// Two shared-guard clears race: exactly one of them reports that it dropped the stamp.
#[test]
fn concurrent_clears_drop_the_stamp_exactly_once() {
    loom::model(|| {
        let stamp = Arc::new(DetachStamp::at(10));
        let other = Arc::clone(&stamp);
        let t = thread::spawn(move || other.clear());
        let mine = stamp.clear();
        let theirs = t.join().unwrap();
        assert!(mine ^ theirs, "exactly one clear wins");
        assert_eq!(stamp.get(), None);
    });
}

/// A grace check racing a clear sees the stamp whole or not at all, never a torn value.
#[test]
fn grace_check_racing_a_clear_sees_before_or_after() {
    loom::model(|| {
        let stamp = Arc::new(DetachStamp::at(100));
        let other = Arc::clone(&stamp);
        let t = thread::spawn(move || other.clear());
        let seen = stamp.get();
        assert!(seen == Some(100) || seen.is_none(), "saw {seen:?}");
        let within = stamp.within(105, 10);
        // Once a reader has seen the stamp cleared, it never sees it again.
        assert!(seen.is_some() || !within, "a cleared stamp came back");
        t.join().unwrap();
        assert_eq!(stamp.get(), None);
    });
}

/// The active-migrations gauge is raised and lowered inside one volume's entry guard (a mutex
/// here); a reader outside any guard never sees it below zero.
#[test]
fn gauge_changed_under_a_guard_never_reads_negative() {
    loom::model(|| {
        let gauge = Arc::new(Counter::default());
        let guard = Arc::new(loom::sync::Mutex::new(false));
        let (g1, m1) = (Arc::clone(&gauge), Arc::clone(&guard));
        let starter = thread::spawn(move || {
            let mut migrating = m1.lock().unwrap();
            if !*migrating {
                *migrating = true;
                g1.incr();
            }
        });
        let (g2, m2) = (Arc::clone(&gauge), Arc::clone(&guard));
        let ender = thread::spawn(move || {
            let mut migrating = m2.lock().unwrap();
            if *migrating {
                *migrating = false;
                g2.decr();
            }
        });
        let seen = gauge.get();
        assert!(seen <= 1, "gauge read {seen}: it went below zero");
        starter.join().unwrap();
        ender.join().unwrap();
        assert_eq!(gauge.get(), u64::from(*guard.lock().unwrap()));
    });
}

/// Two threads counting the same outcome lose no increment, whether each counts in its own
/// stripe (as two threads of an engine do) or both in one (as threads beyond the stripes do):
/// the reading sums the stripes, and one taken meanwhile is never above what was counted nor
/// below what this thread counted.
#[test]
fn concurrent_increments_are_all_counted() {
    loom::model(|| {
        let c = Arc::new(Counters::default());
        let c2 = Arc::clone(&c);
        let t = thread::spawn(move || {
            c2.stripe(1).attached.add(2);
            c2.stripe(0).attached.incr();
        });
        c.stripe(0).attached.incr();
        let seen = c.read().attached;
        assert!((1..=4).contains(&seen), "read {seen}");
        t.join().unwrap();
        assert_eq!(c.read().attached, 4);
        assert_eq!(c.read().fields().iter().map(|(_, v)| v).sum::<u64>(), 4, "no other field moved");
    });
}

/// A term raised outside any entry guard (`Engine::set_term`) and read inside one by each
/// change: a change ordered after the raise (here through a flag, as a leader serves only
/// after it set its term) issues an epoch of at least `term << 32`; one ordered before may
/// not, and neither wraps or lowers the epoch.
#[test]
fn a_change_after_the_term_is_raised_issues_an_epoch_of_that_term() {
    loom::model(|| {
        let term = Arc::new(AtomicU64::new(0));
        let serving = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let (t, s) = (Arc::clone(&term), Arc::clone(&serving));
        let leader = thread::spawn(move || {
            t.fetch_max(2, Ordering::AcqRel);
            s.store(true, Ordering::Release);
        });
        let guard = loom::sync::Mutex::new(5u64); // one volume's entry and its epoch
        if serving.load(Ordering::Acquire) {
            let mut epoch = guard.lock().unwrap();
            *epoch = next_epoch(*epoch, term.load(Ordering::Acquire)).unwrap();
            assert!(*epoch >= 2 << 32, "a change after the raise saw an older term: epoch {}", *epoch);
        } else {
            let mut epoch = guard.lock().unwrap();
            *epoch = next_epoch(*epoch, term.load(Ordering::Acquire)).unwrap();
            assert!(*epoch == 6 || *epoch == 2 << 32, "epoch {}", *epoch);
        }
        leader.join().unwrap();
    });
}

/// The epoch floor is raised by `forget` and read by the creation of a record, both under the
/// shard lock of the volume: a record made after a forget starts at or above the forgotten
/// epoch, whichever thread gets the lock first.
#[test]
fn a_volume_recreated_after_forget_starts_above_the_forgotten_epoch() {
    loom::model(|| {
        let floor = Arc::new(AtomicU64::new(0));
        // The shard: the volume's epoch if it has a record.
        let shard = Arc::new(loom::sync::Mutex::new(Some(9u64)));
        let (f, sh) = (Arc::clone(&floor), Arc::clone(&shard));
        let forgetter = thread::spawn(move || {
            let mut slot = sh.lock().unwrap();
            if let Some(epoch) = slot.take() {
                f.fetch_max(epoch, Ordering::AcqRel);
            }
        });
        let created = {
            let mut slot = shard.lock().unwrap();
            match *slot {
                Some(epoch) => next_epoch(epoch, 0).unwrap(),
                None => {
                    let epoch = next_epoch(floor.load(Ordering::Acquire), 0).unwrap();
                    *slot = Some(epoch);
                    epoch
                }
            }
        };
        forgetter.join().unwrap();
        assert!(created > 9, "recreated at {created}, not above the forgotten 9");
    });
}

/// The node table's last release racing a pin of the same name (`NodeTable::release` and
/// `NodeTable::pin`): the count drops outside any lock, the name leaves the map only under its
/// shard lock and only at zero holders, and a pin takes its hold under that lock. Whichever
/// order they run in, a name that was pinned stays in the table with its one holder, and a
/// name that was not is gone with none: never a pinned id whose name was removed.
#[test]
fn a_last_release_racing_a_pin_never_removes_a_pinned_name() {
    loom::model(|| {
        let holders = Arc::new(AtomicU64::new(1)); // one slot's count, held by the releaser
        let shard = Arc::new(loom::sync::RwLock::new(true)); // whether the name is in the map
        let (h, sh) = (Arc::clone(&holders), Arc::clone(&shard));
        let releaser = thread::spawn(move || {
            if h.fetch_sub(1, Ordering::AcqRel) == 1 {
                let mut present = sh.write().unwrap();
                if *present && h.load(Ordering::Acquire) == 0 {
                    *present = false;
                }
            }
        });
        let pinned = {
            let present = shard.read().unwrap();
            if *present {
                holders.fetch_add(1, Ordering::AcqRel);
            }
            *present
        };
        releaser.join().unwrap();
        let present = *shard.read().unwrap();
        assert_eq!(present, pinned, "pinned {pinned}, but the name is present: {present}");
        assert_eq!(holders.load(Ordering::Acquire), u64::from(pinned));
    });
}
