//! Byte-level frames through the rewriter, read back as the server would read them.

use loona_hpack::{Decoder, Encoder};

use super::frame::{
    Head, CONTINUATION, END_HEADERS, END_STREAM, HEADERS, HEAD_LEN, MAX_PAYLOAD, PADDED, PREFACE, PRIORITY,
};
use super::testing::{self, frame, opening, Fields};
use super::{RewriteError, Rewriter, MAX_BLOCK};

const DATA: u8 = 0x0;
const SETTINGS: u8 = 0x4;
/// What grpcio 1.85 sends for `unix:///tmp/csi.sock`.
const GRPCIO_AUTHORITY: &[u8] = b"tmp%2Fcsi.sock";

fn request_fields(authority: &[u8]) -> Fields {
    testing::request_fields("/csi.v1.Identity/Probe", authority)
}

fn encode(encoder: &mut Encoder<'_>, fields: &Fields) -> Vec<u8> {
    encoder.encode(fields.iter().map(|(n, v)| (&n[..], &v[..])))
}

fn rewrite(input: &[u8]) -> Result<Vec<u8>, RewriteError> {
    let mut out = Vec::new();
    Rewriter::default().feed(input, &mut out)?;
    Ok(out)
}

/// What the server reads: the frames after the preface, with every header block decoded by
/// one decoder in order, and the frame heads (to check flags and sizes).
struct Seen {
    blocks: Vec<(u32, Fields)>,
    heads: Vec<Head>,
    data: Vec<Vec<u8>>,
}

fn read_as_server(bytes: &[u8]) -> Seen {
    assert_eq!(&bytes[..PREFACE.len()], PREFACE);
    let mut rest = &bytes[PREFACE.len()..];
    let mut decoder = Decoder::new();
    let (mut seen, mut block) = (Seen { blocks: vec![], heads: vec![], data: vec![] }, Vec::new());
    while !rest.is_empty() {
        let head = Head::parse(rest.first_chunk::<HEAD_LEN>().expect("a whole frame head"));
        let payload = &rest[HEAD_LEN..HEAD_LEN + head.len];
        assert!(head.len <= MAX_PAYLOAD, "frame of {} bytes", head.len);
        match head.kind {
            HEADERS => {
                let (_, fragment) = super::frame::split_headers(&head, payload).unwrap();
                block = fragment.to_vec();
            }
            CONTINUATION => block.extend_from_slice(payload),
            DATA => seen.data.push(payload.to_vec()),
            _ => {}
        }
        if (head.kind == HEADERS || head.kind == CONTINUATION) && head.has(END_HEADERS) {
            seen.blocks.push((head.stream, decoder.decode(&block).expect("the server decodes it")));
        }
        seen.heads.push(head);
        rest = &rest[HEAD_LEN + head.len..];
    }
    seen
}

#[test]
fn a_valid_authority_is_forwarded_byte_for_byte() {
    let mut input = opening();
    let mut encoder = Encoder::new();
    for stream in [1, 3, 5] {
        input.extend(frame(HEADERS, END_HEADERS, stream, &encode(&mut encoder, &request_fields(b"localhost"))));
        input.extend(frame(DATA, END_STREAM, stream, &[0, 0, 0, 0, 0]));
    }
    assert_eq!(rewrite(&input).unwrap(), input);
    // And the same when the bytes arrive one at a time.
    let (mut rewriter, mut out) = (Rewriter::default(), Vec::new());
    for b in &input {
        rewriter.feed(std::slice::from_ref(b), &mut out).unwrap();
    }
    assert_eq!(out, input);
    assert!(!rewriter.rewriting());
}

#[test]
fn a_socket_path_authority_becomes_localhost_and_nothing_else_changes() {
    for authority in [GRPCIO_AUTHORITY, b"/run/csi/csi.sock", b""] {
        let mut input = opening();
        let fields = request_fields(authority);
        input.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &encode(&mut Encoder::new(), &fields)));
        input.extend(frame(DATA, 0, 1, b"\0\0\0\0\0"));
        let seen = read_as_server(&rewrite(&input).unwrap());
        assert_eq!(seen.blocks, vec![(1, request_fields(b"localhost"))]);
        assert!(seen.heads[1].has(END_STREAM), "END_STREAM is kept");
        assert_eq!(seen.data, vec![b"\0\0\0\0\0".to_vec()]);
    }
}

/// A literal with incremental indexing whose name is static entry `index` (RFC 7541 §6.2.1).
fn indexed_literal(index: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x40 | index, u8::try_from(value.len()).unwrap()];
    out.extend_from_slice(value);
    out
}

#[test]
fn dynamic_table_references_are_followed_across_streams() {
    // Stream 1 puts the path authority (static name 1) and a custom header in the client's
    // table; streams 3 and 5 refer to them by index, 62 being the newest entry.
    let mut first = vec![0x83, 0x86]; // :method POST, :scheme http
    first.extend(indexed_literal(4, b"/csi.v1.Identity/Probe"));
    first.extend(indexed_literal(1, b"/run/csi.sock"));
    first.extend([0x40, 1, b'x', 3, b'o', b'n', b'e']); // x: one, new name, indexed
    let later = [0x83, 0x86, 0xc0, 0xbf, 0xbe]; // ... :path (64), :authority (63), x (62)
    let mut input = opening();
    input.extend(frame(HEADERS, END_HEADERS, 1, &first));
    input.extend(frame(HEADERS, END_HEADERS, 3, &later));
    input.extend(frame(HEADERS, END_HEADERS, 5, &later));
    let seen = read_as_server(&rewrite(&input).unwrap());
    let want: Fields = [
        (&b":method"[..], &b"POST"[..]),
        (b":scheme", b"http"),
        (b":path", b"/csi.v1.Identity/Probe"),
        (b":authority", b"localhost"),
        (b"x", b"one"),
    ]
    .iter()
    .map(|(n, v)| (n.to_vec(), v.to_vec()))
    .collect();
    assert_eq!(seen.blocks, vec![(1, want.clone()), (3, want.clone()), (5, want)]);
}

#[test]
fn once_the_first_block_is_rewritten_every_block_is_re_encoded() {
    // Block 1 needs a rewrite and adds `x-trace` to the client's table only; blocks 3 and 5
    // refer to it (and 5 to block 3's `x-span`), so they must be re-encoded, not forwarded.
    let mut encoder = Encoder::new();
    let with = |authority: &[u8], extra: &[(&[u8], &[u8])]| {
        let mut fields = request_fields(authority);
        fields.extend(extra.iter().map(|(n, v)| (n.to_vec(), v.to_vec())));
        fields
    };
    let first = with(b"/run/csi.sock", &[(b"x-trace", b"abc")]);
    let second = with(b"localhost", &[(b"x-trace", b"abc"), (b"x-span", b"s1")]);
    let third = with(b"/run/csi.sock", &[(b"x-span", b"s1"), (b"x-trace", b"abc")]);
    let mut input = opening();
    for (stream, fields) in [(1, &first), (3, &second), (5, &third)] {
        input.extend(frame(HEADERS, END_HEADERS, stream, &encode(&mut encoder, fields)));
    }
    let seen = read_as_server(&rewrite(&input).unwrap());
    let localhost = |mut fields: Fields| {
        fields[3].1 = b"localhost".to_vec();
        fields
    };
    assert_eq!(seen.blocks, vec![(1, localhost(first)), (3, second), (5, localhost(third))]);
}

#[test]
fn a_connection_whose_first_block_is_valid_is_not_read_further() {
    // Its client keeps one authority (as every gRPC channel does); a later path authority is
    // forwarded as h2 gets it without the adapter, and so is anything after it.
    let mut encoder = Encoder::new();
    let mut input = opening();
    input.extend(frame(HEADERS, END_HEADERS, 1, &encode(&mut encoder, &request_fields(b"localhost"))));
    input.extend(frame(HEADERS, END_HEADERS, 3, &encode(&mut encoder, &request_fields(b"/run/csi.sock"))));
    input.extend(frame(CONTINUATION, END_HEADERS, 3, b"not a block"));
    let (mut rewriter, mut out) = (Rewriter::default(), Vec::new());
    rewriter.feed(&input, &mut out).unwrap();
    assert_eq!(out, input);
    assert!(!rewriter.rewriting() && !rewriter.holding());
}

#[test]
fn continuation_frames_are_gathered_and_large_blocks_split() {
    let mut fields = request_fields(b"/run/csi.sock");
    fields.push((b"x-big".to_vec(), vec![b'a'; 40_000]));
    let block = encode(&mut Encoder::new(), &fields);
    let (a, rest) = block.split_at(10);
    let (b, c) = rest.split_at(15_000);
    let mut input = opening();
    input.extend(frame(HEADERS, 0, 1, a));
    input.extend(frame(CONTINUATION, 0, 1, b));
    input.extend(frame(CONTINUATION, END_HEADERS, 1, c));
    let seen = read_as_server(&rewrite(&input).unwrap());
    fields[3].1 = b"localhost".to_vec();
    assert_eq!(seen.blocks, vec![(1, fields)]);
    let kinds: Vec<u8> = seen.heads.iter().map(|h| h.kind).collect();
    assert_eq!(kinds, [SETTINGS, HEADERS, CONTINUATION, CONTINUATION]);
    assert!(seen.heads[1..3].iter().all(|h| !h.has(END_HEADERS)) && seen.heads[3].has(END_HEADERS));
}

#[test]
fn padding_is_dropped_and_priority_kept() {
    let block = encode(&mut Encoder::new(), &request_fields(GRPCIO_AUTHORITY));
    let priority = [0x80, 0, 0, 0, 16];
    let mut payload = vec![7];
    payload.extend(priority);
    payload.extend(&block);
    payload.extend([0; 7]);
    let mut input = opening();
    input.extend(frame(HEADERS, PADDED | PRIORITY | END_HEADERS, 1, &payload));
    let out = rewrite(&input).unwrap();
    let seen = read_as_server(&out);
    assert_eq!(seen.blocks, vec![(1, request_fields(b"localhost"))]);
    let head = seen.heads[1];
    assert!(head.has(PRIORITY) && !head.has(PADDED));
    let start = PREFACE.len() + 2 * HEAD_LEN;
    assert_eq!(out[start..start + 5], priority);
}

#[test]
fn malformed_frames_are_connection_errors() {
    let block = encode(&mut Encoder::new(), &request_fields(b"/x"));
    let cases: Vec<(Vec<u8>, RewriteError)> = vec![
        (frame(HEADERS, PADDED | END_HEADERS, 1, &[200, 0x82]), RewriteError::Padding { stream: 1 }),
        (frame(HEADERS, PADDED | END_HEADERS, 1, &[]), RewriteError::Padding { stream: 1 }),
        (frame(HEADERS, PRIORITY | END_HEADERS, 1, &[0, 0]), RewriteError::Priority { stream: 1 }),
        (frame(CONTINUATION, END_HEADERS, 1, &block), RewriteError::StrayContinuation { stream: 1 }),
        (
            [frame(HEADERS, 0, 1, &block), frame(DATA, 0, 1, b"x")].concat(),
            RewriteError::Interleaved { stream: 1, kind: DATA },
        ),
        (
            [frame(HEADERS, 0, 1, &block), frame(HEADERS, END_HEADERS, 3, &block)].concat(),
            RewriteError::Interleaved { stream: 1, kind: HEADERS },
        ),
        (
            [frame(HEADERS, 0, 1, &block), frame(CONTINUATION, END_HEADERS, 3, &[])].concat(),
            RewriteError::ContinuationStream { expected: 1, got: 3 },
        ),
        (
            frame(HEADERS, END_HEADERS, 1, &[0xff, 0x80, 0x80, 0x01]),
            RewriteError::Hpack { stream: 1, source: loona_hpack::decoder::DecoderError::HeaderIndexOutOfBounds },
        ),
    ];
    for (frames, want) in cases {
        let input = [opening(), frames].concat();
        assert_eq!(rewrite(&input), Err(want));
    }
}

#[test]
fn an_oversized_block_is_refused_from_its_head_alone() {
    let mut input = opening();
    let mut head = Vec::new();
    Head { len: MAX_BLOCK + 1, kind: HEADERS, flags: END_HEADERS, stream: 1 }.write(&mut head);
    input.extend(head);
    assert_eq!(rewrite(&input), Err(RewriteError::BlockTooLarge { stream: 1, limit: MAX_BLOCK }));
}

#[test]
fn what_is_not_http2_passes_untouched() {
    let input = b"GET / HTTP/1.1\r\nHost: /run/csi.sock\r\n\r\n";
    assert_eq!(rewrite(input).unwrap(), input);
    let half_preface = &PREFACE[..10];
    let (mut rewriter, mut out) = (Rewriter::default(), Vec::new());
    rewriter.feed(half_preface, &mut out).unwrap();
    rewriter.feed(b"junk", &mut out).unwrap();
    assert_eq!(out, [half_preface, b"junk"].concat());
}
