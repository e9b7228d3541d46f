//! Loom models of the state read and written outside one entry guard: the detach stamp and the counters.

use loom::sync::Arc;
use loom::thread;

use crate::record::DetachStamp;
use crate::stats::Counter;

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

/// Two threads counting the same outcome lose no increment.
#[test]
fn concurrent_increments_are_all_counted() {
    loom::model(|| {
        let c = Arc::new(Counter::default());
        let c2 = Arc::clone(&c);
        let t = thread::spawn(move || {
            c2.incr();
            c2.incr();
        });
        c.incr();
        t.join().unwrap();
        assert_eq!(c.get(), 3);
    });
}
