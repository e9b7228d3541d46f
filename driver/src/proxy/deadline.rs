//! The deadline of a forwarded call: the incoming call's `grpc-timeout`, else the default.

use std::time::Duration;

use tonic::metadata::MetadataMap;

/// What gRPC calls the header carrying a call's deadline.
const GRPC_TIMEOUT: &str = "grpc-timeout";

/// Parses a `grpc-timeout` value: at most eight digits and a unit (H, M, S, m, u, n), as the
/// gRPC over HTTP/2 protocol writes it.
pub fn parse(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_hours(n),
        "M" => Duration::from_mins(n),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The call's deadline: its `grpc-timeout` if it sent a valid one, else `default`.
pub fn of(metadata: &MetadataMap, default: Duration) -> Duration {
    metadata.get(GRPC_TIMEOUT).and_then(|v| v.to_str().ok()).and_then(parse).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_and_the_refusals() {
        assert_eq!(parse("2H"), Some(Duration::from_hours(2)));
        assert_eq!(parse("3M"), Some(Duration::from_mins(3)));
        assert_eq!(parse("15S"), Some(Duration::from_secs(15)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse("9n"), Some(Duration::from_nanos(9)));
        for bad in ["", "S", "12", "123456789S", "1x", "-1S", "1.5S"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
