//! Time: the injectable clock the engine reads, a monotonic default and a manual clock for tests.
//!
//! Instants are `u64` nanoseconds on the clock's own monotonic scale; [`NEVER`] is the
//! sentinel for "no such instant". A wall-clock step cannot move a monotonic instant, so it
//! can neither open nor close a grace window. Reports turn instants into wall-clock times
//! through the clock's [`Clock::anchor`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Nanoseconds on a clock's monotonic scale.
pub type Nanos = u64;

/// The sentinel instant meaning "never happened".
pub const NEVER: Nanos = u64::MAX;

/// Where both built-in clocks start their scale: about 13 days after zero, so that instants
/// restored from a snapshot that predate this process can still be represented.
pub const ORIGIN: Nanos = 1 << 50;

/// A source of monotonic instants, shared by every thread of an engine.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant. Never goes backwards.
    fn now(&self) -> Nanos;

    /// One instant and the wall-clock time it corresponds to; the two scales advance together.
    fn anchor(&self) -> (Nanos, SystemTime);

    /// The wall-clock time of instant `at`.
    fn wall_time(&self, at: Nanos) -> SystemTime {
        let (instant, wall) = self.anchor();
        if at >= instant {
            wall.checked_add(nanos_to_duration(at - instant)).unwrap_or(wall)
        } else {
            wall.checked_sub(nanos_to_duration(instant - at)).unwrap_or(SystemTime::UNIX_EPOCH)
        }
    }
}

/// Saturating conversion of a duration to nanoseconds.
pub fn duration_to_nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(NEVER - 1)
}

/// Conversion of nanoseconds to a duration.
pub const fn nanos_to_duration(n: Nanos) -> Duration {
    Duration::from_nanos(n)
}

/// The default clock: the operating system's monotonic clock (`Instant`).
#[derive(Debug)]
pub struct MonotonicClock {
    start: Instant,
    wall_at_start: SystemTime,
}

impl MonotonicClock {
    /// A clock whose scale starts now, at [`ORIGIN`].
    pub fn new() -> Self {
        Self { start: Instant::now(), wall_at_start: SystemTime::now() }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Nanos {
        ORIGIN.saturating_add(duration_to_nanos(self.start.elapsed()))
    }

    fn anchor(&self) -> (Nanos, SystemTime) {
        (ORIGIN, self.wall_at_start)
    }
}

/// The engine's default clock: the kernel's coarse monotonic clock (Linux
/// `CLOCK_MONOTONIC_COARSE`), read from the vDSO in a few nanoseconds, at the resolution of
/// the kernel tick (4 ms on the project's machines). A grace period or migration timeout is
/// decided to within one tick, which is what lets the grace check stay near the cost of the
/// map lookup. Elsewhere than Linux it is [`MonotonicClock`].
#[derive(Debug)]
pub struct CoarseClock {
    #[cfg(target_os = "linux")]
    start: Nanos,
    #[cfg(target_os = "linux")]
    wall_at_start: SystemTime,
    #[cfg(not(target_os = "linux"))]
    inner: MonotonicClock,
}

#[cfg(target_os = "linux")]
fn coarse_raw() -> Nanos {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    // The monotonic clock counts from boot: never negative, far from overflowing u64 nanoseconds.
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
}

impl CoarseClock {
    /// A clock whose scale starts now, at [`ORIGIN`].
    pub fn new() -> Self {
        #[cfg(target_os = "linux")]
        return Self { start: coarse_raw(), wall_at_start: SystemTime::now() };
        #[cfg(not(target_os = "linux"))]
        return Self { inner: MonotonicClock::new() };
    }
}

impl Default for CoarseClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for CoarseClock {
    #[cfg(target_os = "linux")]
    fn now(&self) -> Nanos {
        ORIGIN.saturating_add(coarse_raw().saturating_sub(self.start))
    }

    #[cfg(target_os = "linux")]
    fn anchor(&self) -> (Nanos, SystemTime) {
        (ORIGIN, self.wall_at_start)
    }

    #[cfg(not(target_os = "linux"))]
    fn now(&self) -> Nanos {
        self.inner.now()
    }

    #[cfg(not(target_os = "linux"))]
    fn anchor(&self) -> (Nanos, SystemTime) {
        self.inner.anchor()
    }
}

/// A clock that moves only when the caller says so: for tests and replays, never sleeping.
///
/// Thread-safe: [`ManualClock::advance`] may race with readers, who see either instant.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicU64,
    wall_at_origin: SystemTime,
}

impl ManualClock {
    /// A manual clock at [`ORIGIN`], whose wall time there is the current system time.
    pub fn new() -> Self {
        Self::with_wall_time(SystemTime::now())
    }

    /// A manual clock at [`ORIGIN`] whose wall time there is `wall`: fully deterministic.
    pub fn with_wall_time(wall: SystemTime) -> Self {
        Self { now: AtomicU64::new(ORIGIN), wall_at_origin: wall }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = duration_to_nanos(by);
        // Saturate below NEVER so the clock can never read as the sentinel.
        let _ =
            self.now.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| Some(t.saturating_add(by).min(NEVER - 1)));
    }

    /// How far the clock has moved since it was made.
    pub fn elapsed(&self) -> Duration {
        nanos_to_duration(self.now.load(Ordering::Acquire) - ORIGIN)
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Nanos {
        self.now.load(Ordering::Acquire)
    }

    fn anchor(&self) -> (Nanos, SystemTime) {
        (ORIGIN, self.wall_at_origin)
    }
}
