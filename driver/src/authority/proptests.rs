//! Properties over arbitrary input: no byte sequence panics the rewriter, and how the bytes
//! are split into reads never changes what comes out.

use loona_hpack::Encoder;
use proptest::prelude::*;

use super::frame::{CONTINUATION, END_HEADERS, HEADERS, PREFACE};
use super::testing::{frame, request_fields};
use super::Rewriter;

/// Feeds `input` in pieces cut at `cuts` (positions modulo its length).
fn feed_in_pieces(input: &[u8], cuts: &[usize]) -> Result<Vec<u8>, super::RewriteError> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    at.extend([0, input.len()]);
    at.sort_unstable();
    let (mut rewriter, mut out) = (Rewriter::default(), Vec::new());
    for w in at.windows(2) {
        rewriter.feed(&input[w[0]..w[1]], &mut out)?;
    }
    Ok(out)
}

/// A client's requests: header blocks from one encoder (so with table references), some
/// with a path authority, each split over a CONTINUATION frame, with DATA frames between.
fn requests(authorities: &[bool], split: usize) -> Vec<u8> {
    let mut encoder = Encoder::new();
    let mut out = PREFACE.to_vec();
    for (i, &path) in authorities.iter().enumerate() {
        let stream = u32::try_from(2 * i + 1).unwrap();
        let authority: &[u8] = if path { b"/run/csi.sock" } else { b"localhost" };
        let span = format!("span-{i}");
        let mut fields = request_fields("/csi.v1.Identity/Probe", authority);
        fields.push((b"x-span".to_vec(), span.into_bytes()));
        let block = encoder.encode(fields.iter().map(|(n, v)| (&n[..], &v[..])));
        let (a, b) = block.split_at(split.min(block.len()));
        out.extend(frame(HEADERS, 0, stream, a));
        out.extend(frame(CONTINUATION, END_HEADERS, stream, b));
        out.extend(frame(0x0, 0x1, stream, b"\0\0\0\0\0"));
    }
    out
}

proptest! {
    #[test]
    fn arbitrary_frames_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let input = [&PREFACE[..], &body].concat();
        let _ = feed_in_pieces(&input, &cuts);
    }

    #[test]
    fn arbitrary_header_blocks_never_panic(block in proptest::collection::vec(any::<u8>(), 0..512), flags in any::<u8>()) {
        let input = [&PREFACE[..], &frame(HEADERS, flags | END_HEADERS, 1, &block)].concat();
        let _ = feed_in_pieces(&input, &[]);
    }

    #[test]
    fn the_output_does_not_depend_on_how_reads_are_split(
        authorities in proptest::collection::vec(any::<bool>(), 1..6),
        split in 0usize..40,
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let input = requests(&authorities, split);
        let whole = feed_in_pieces(&input, &[]).unwrap();
        prop_assert_eq!(feed_in_pieces(&input, &cuts).unwrap(), whole.clone());
        if !authorities[0] {
            prop_assert_eq!(whole, input);
        }
    }
}
