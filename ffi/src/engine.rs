//! The engine handle: making and freeing it, its clock, and its run-time settings.

use std::sync::Arc;
use std::time::Duration;

use tether_core::{Clock, CoarseClock, Config, Engine, ManualClock};

use crate::boundary::{guard, guard_value, handle, Out};
use crate::status::{tether_status, FfiError};
use crate::types::{nanos, tether_config};

/// An engine. Opaque: made by `tether_engine_new` or `tether_engine_new_manual_clock`, freed by
/// `tether_engine_free`. Any number of threads may use one handle at the same time.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct tether_engine {
    pub(crate) engine: Engine,
    /// The clock, when the caller drives it.
    pub(crate) manual: Option<Arc<ManualClock>>,
}

impl tether_engine {
    /// The engine inside (for Rust callers such as benchmarks).
    pub fn inner(&self) -> &Engine {
        &self.engine
    }
}

fn make(
    config: *const tether_config,
    clock: Arc<dyn Clock>,
    manual: Option<Arc<ManualClock>>,
    out: *mut *mut tether_engine,
) -> tether_status {
    guard(|| {
        // SAFETY: the caller promises `out` is NULL or valid for a write (see the exports).
        let out = unsafe { Out::new(out, "out") }?;
        // SAFETY: the caller promises `config` is NULL or points to a readable tether_config.
        let config = unsafe { config.as_ref() }.map_or_else(Config::default, |c| Config::from(*c));
        let engine = Engine::with_config(config, clock)?;
        out.write(Box::into_raw(Box::new(tether_engine { engine, manual })));
        Ok(())
    })
}

/// Makes an engine on the engine's default clock (the kernel's coarse monotonic clock: a few
/// nanoseconds a read, decisions to within one 4 ms tick) and stores its handle in `*out`.
///
/// `config`: the settings, or NULL for the defaults (grace period 30 s, migration timeout
/// 5 min). A grace period above one hour is refused with `TETHER_INVALID_ARGUMENT`; the
/// migration timeout is clamped into 30 s ..= 1 h.
///
/// Ownership: the caller owns the handle and must free it with `tether_engine_free` exactly
/// once. `*out` is written only on success. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_new(
    config: *const tether_config,
    out: *mut *mut tether_engine,
) -> tether_status {
    make(config, Arc::new(CoarseClock::new()), None, out)
}

/// Makes an engine whose clock moves only through `tether_engine_advance_clock`: for tests
/// and replays, which then never need to sleep. `wall_unix_ns` is the wall-clock time the
/// clock starts at (nanoseconds since the Unix epoch), which makes reported times
/// deterministic. Otherwise as `tether_engine_new`.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_new_manual_clock(
    config: *const tether_config,
    wall_unix_ns: u64,
    out: *mut *mut tether_engine,
) -> tether_status {
    let clock = Arc::new(ManualClock::with_wall_time(std::time::UNIX_EPOCH + Duration::from_nanos(wall_unix_ns)));
    make(config, Arc::clone(&clock) as Arc<dyn Clock>, Some(clock), out)
}

/// Frees an engine and everything it holds. NULL is ignored.
///
/// Lifetime: no other thread may use the handle during or after this call; the handle must
/// not be freed twice.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_free(engine: *mut tether_engine) {
    guard_value((), || {
        if !engine.is_null() {
            // SAFETY: the caller promises a live handle from `tether_engine_new*`, freed once,
            // used by no other thread now: it came from `Box::into_raw`.
            drop(unsafe { Box::from_raw(engine) });
        }
    });
}

/// Moves a manual clock forward by `by_ns` nanoseconds. Returns `TETHER_NOT_MANUAL_CLOCK` for
/// an engine on the system clock. Thread-safe: other threads see the old or the new instant.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_advance_clock(engine: *const tether_engine, by_ns: u64) -> tether_status {
    guard(|| {
        // SAFETY: the caller promises a live handle or NULL.
        let clock = unsafe { handle(engine) }?.manual.as_ref().ok_or(FfiError::NotManualClock)?;
        clock.advance(Duration::from_nanos(by_ns));
        Ok(())
    })
}

/// Writes the default settings into `*out` (grace period 30 s, migration timeout 5 min).
#[no_mangle]
pub unsafe extern "C" fn tether_config_default(out: *mut tether_config) -> tether_status {
    guard(|| {
        // SAFETY: the caller promises `out` is NULL or valid for a write.
        unsafe { Out::new(out, "out") }?.write(Config::default().into());
        Ok(())
    })
}

/// Writes the engine's current settings into `*out`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_config(engine: *const tether_engine, out: *mut tether_config) -> tether_status {
    guard(|| {
        // SAFETY: the caller promises a live handle (or NULL) and a writable `out` (or NULL).
        let (engine, out) = unsafe { (handle(engine)?, Out::new(out, "out")?) };
        out.write(engine.engine.config().into());
        Ok(())
    })
}

/// Sets the grace period for later calls, in nanoseconds. Above one hour is refused with
/// `TETHER_INVALID_ARGUMENT` and nothing changes. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_set_grace_period(engine: *const tether_engine, grace_ns: u64) -> tether_status {
    guard(|| {
        // SAFETY: the caller promises a live handle or NULL.
        let engine = unsafe { handle(engine) }?;
        Ok(engine.engine.set_grace_period(Duration::from_nanos(grace_ns))?)
    })
}

/// Sets the default migration timeout for migrations started later, in nanoseconds; clamped
/// into 30 s ..= 1 h. The effective value goes to `*effective_ns` unless it is NULL.
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_set_default_migration_timeout(
    engine: *const tether_engine,
    timeout_ns: u64,
    effective_ns: *mut u64,
) -> tether_status {
    guard(|| {
        // SAFETY: the caller promises a live handle (or NULL) and a writable output (or NULL).
        let (engine, effective) = unsafe { (handle(engine)?, Out::optional(effective_ns)) };
        let set = engine.engine.set_default_migration_timeout(Duration::from_nanos(timeout_ns));
        if let Some(out) = effective {
            out.write(nanos(set));
        }
        Ok(())
    })
}
