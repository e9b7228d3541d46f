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

#[cfg(test)]
mod tests {
    use super::has_nul;

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
