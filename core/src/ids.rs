//! The rules for volume and node identifiers, written once for every front end.

use crate::error::{InputField, InvalidInput, Problem};

/// The longest identifier accepted, in bytes: the CSI specification's limit for string fields.
pub const MAX_ID_LEN: usize = 128;

/// Checks that `id` is a usable volume identifier: non-empty, no NUL, at most [`MAX_ID_LEN`] bytes.
pub fn check_volume_id(id: &str) -> Result<(), InvalidInput> {
    check(InputField::Volume, id)
}

/// Checks that `id` is a usable node identifier: non-empty, no NUL, at most [`MAX_ID_LEN`] bytes.
pub fn check_node_id(id: &str) -> Result<(), InvalidInput> {
    check(InputField::Node, id)
}

fn check(field: InputField, id: &str) -> Result<(), InvalidInput> {
    // The common case in one cheap pass; `position` below runs only to name the problem.
    if !id.is_empty() && id.len() <= MAX_ID_LEN && !has_nul(id.as_bytes()) {
        return Ok(());
    }
    let problem = if id.is_empty() {
        Problem::Empty
    } else if id.len() > MAX_ID_LEN {
        Problem::TooLong { len: id.len(), max: MAX_ID_LEN }
    } else if let Some(at) = id.bytes().position(|b| b == 0) {
        Problem::ContainsNul { at }
    } else {
        return Ok(());
    };
    Err(InvalidInput { field, problem })
}

/// Whether `bytes` holds a zero byte, eight bytes at a time: `(w - 0x01..) & !w & 0x80..` is
/// non-zero exactly when some byte of `w` is zero. For identifiers (at most 128 bytes) this is
/// a few instructions a word, where `memchr` pays its set-up for long buffers on every call.
#[allow(
    clippy::manual_contains,
    reason = "contains() calls memchr, whose set-up costs more than a loop over at most 7 bytes"
)]
fn has_nul(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let (words, tail) = bytes.as_chunks::<8>();
    // OR the per-word test over all words: no branch per word; the mask distributes over OR.
    let zeroish = words.iter().fold(0, |acc, w| {
        let w = u64::from_ne_bytes(*w);
        acc | (w.wrapping_sub(ONES) & !w)
    });
    zeroish & HIGHS != 0 || tail.iter().any(|&b| b == 0)
}

/// An identifier (or any text from a caller) as a log line, metric, event or error message
/// shows it: at most a limit of its bytes ([`MAX_ID_LEN`] unless given), cut at a character
/// boundary, then `... (N bytes)` when it was longer, with control characters escaped as
/// `str::escape_debug` does. Whatever a caller sends, what is written stays a few hundred bytes
/// and one line, so no request can fill a log disk or forge a log line.
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a> {
    text: &'a str,
    limit: usize,
}

impl<'a> Shown<'a> {
    /// `text` bounded to [`MAX_ID_LEN`] bytes: every valid identifier is shown whole.
    pub const fn id(text: &'a str) -> Self {
        Self { text, limit: MAX_ID_LEN }
    }

    /// `text` bounded to `limit` bytes (a message that quotes caller input).
    pub const fn within(text: &'a str, limit: usize) -> Self {
        Self { text, limit }
    }
}

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut end = self.text.len().min(self.limit);
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        for c in self.text[..end].chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_debug())?;
            } else {
                std::fmt::Write::write_char(f, c)?;
            }
        }
        if end < self.text.len() {
            write!(f, "... ({} bytes)", self.text.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{has_nul, Shown, MAX_ID_LEN};

    #[test]
    fn shown_keeps_a_valid_id_whole_and_bounds_a_long_one_at_a_char_boundary() {
        assert_eq!(Shown::id("pvc-1").to_string(), "pvc-1");
        let max = "v".repeat(MAX_ID_LEN);
        assert_eq!(Shown::id(&max).to_string(), max);
        let long = "é".repeat(1 << 20);
        let shown = Shown::id(&long).to_string();
        assert_eq!(shown, format!("{}... ({} bytes)", "é".repeat(MAX_ID_LEN / 2), 2 << 20));
        assert_eq!(Shown::within("abcdef", 3).to_string(), "abc... (6 bytes)");
        // A multi-byte character across the limit is left out whole, never split.
        assert_eq!(Shown::within("aé", 2).to_string(), "a... (3 bytes)");
        assert_eq!(Shown::id("a\nb\u{1b}[31m").to_string(), "a\\nb\\u{1b}[31m");
    }

    #[test]
    fn has_nul_finds_a_zero_at_every_position_and_no_false_one() {
        for len in 0..=40 {
            let clean: Vec<u8> = (0..len).map(|i| [1u8, 0x80, 0xff, b'a', 0x7f][i % 5]).collect();
            assert!(!has_nul(&clean), "false NUL in {clean:?}");
            for at in 0..len {
                let mut bytes = clean.clone();
                bytes[at] = 0;
                assert!(has_nul(&bytes), "missed NUL at {at} of {len}");
            }
        }
    }
}
