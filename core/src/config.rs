//! Run-time settings and their bounds: grace period and default migration timeout.

use std::time::Duration;

use crate::error::{InputField, InvalidInput, Problem};

/// The default grace period: 30 s.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(30);
/// The longest grace period accepted: 1 h.
pub const MAX_GRACE_PERIOD: Duration = Duration::from_secs(3600);
/// The default migration timeout: 5 min.
pub const DEFAULT_MIGRATION_TIMEOUT: Duration = Duration::from_secs(300);
/// The shortest migration timeout; shorter requests are clamped up to it.
pub const MIN_MIGRATION_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest migration timeout; longer requests are clamped down to it.
pub const MAX_MIGRATION_TIMEOUT: Duration = Duration::from_secs(3600);
/// The default interval between reconcile passes, for front ends that schedule them: 5 min.
pub const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(300);

/// Settings that can change while the engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub grace_period: Duration,
    pub default_migration_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self { grace_period: DEFAULT_GRACE_PERIOD, default_migration_timeout: DEFAULT_MIGRATION_TIMEOUT }
    }
}

impl Config {
    /// Checks both settings: a grace period above [`MAX_GRACE_PERIOD`] is refused; the default
    /// migration timeout is clamped like any migration timeout.
    pub fn validated(self) -> Result<Self, InvalidInput> {
        Ok(Self {
            grace_period: check_grace_period(self.grace_period)?,
            default_migration_timeout: clamp_migration_timeout(self.default_migration_timeout),
        })
    }
}

/// Refuses a grace period longer than [`MAX_GRACE_PERIOD`]; zero is allowed (no handoff ever).
pub fn check_grace_period(grace: Duration) -> Result<Duration, InvalidInput> {
    if grace > MAX_GRACE_PERIOD {
        return Err(InvalidInput {
            field: InputField::GracePeriod,
            problem: Problem::OutOfRange { min: Duration::ZERO, max: MAX_GRACE_PERIOD },
        });
    }
    Ok(grace)
}

/// Clamps a migration timeout into [`MIN_MIGRATION_TIMEOUT`] ..= [`MAX_MIGRATION_TIMEOUT`],
/// with one-second resolution (a fraction of a second rounds up). Outcomes report the
/// effective timeout, so a caller sees the clamp.
pub fn clamp_migration_timeout(timeout: Duration) -> Duration {
    let whole = timeout.as_secs().saturating_add(u64::from(timeout.subsec_nanos() > 0));
    Duration::from_secs(whole).clamp(MIN_MIGRATION_TIMEOUT, MAX_MIGRATION_TIMEOUT)
}
