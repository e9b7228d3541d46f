//! What a gRPC client writes, byte by byte: for the adapter's tests and benchmarks.

use super::frame::{Head, PREFACE};

/// A header list as HPACK encoders take it.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// One frame as bytes.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + payload.len());
    Head { len: payload.len(), kind, flags, stream }.write(&mut out);
    out.extend_from_slice(payload);
    out
}

/// A connection's first bytes: the preface and an empty SETTINGS frame.
pub fn opening() -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    out.extend(frame(0x4, 0, 0, &[]));
    out
}

/// The fields of a unary gRPC request to `path`, `:authority` fourth.
pub fn request_fields(path: &str, authority: &[u8]) -> Fields {
    [
        (&b":method"[..], &b"POST"[..]),
        (b":scheme", b"http"),
        (b":path", path.as_bytes()),
        (b":authority", authority),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
    ]
    .iter()
    .map(|(n, v)| (n.to_vec(), v.to_vec()))
    .collect()
}
