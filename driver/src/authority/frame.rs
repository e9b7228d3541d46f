//! HTTP/2 frame layout (RFC 9113 §4.1, §6.2, §6.10): the 9-byte frame head and the fields of a
//! HEADERS payload around its header block fragment, read and written without any I/O.

use super::RewriteError;

/// What a client sends before its first frame.
pub(super) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub(super) const HEAD_LEN: usize = 9;
/// The largest payload every HTTP/2 server accepts (`SETTINGS_MAX_FRAME_SIZE` can only raise
/// it), so frames the adapter writes never depend on the server's settings.
pub(super) const MAX_PAYLOAD: usize = 16_384;

pub(super) const HEADERS: u8 = 0x1;
pub(super) const CONTINUATION: u8 = 0x9;

pub(super) const END_STREAM: u8 = 0x1;
pub(super) const END_HEADERS: u8 = 0x4;
pub(super) const PADDED: u8 = 0x8;
pub(super) const PRIORITY: u8 = 0x20;

/// Stream dependency (4 bytes) and weight (1 byte) of a HEADERS frame with PRIORITY.
pub(super) type Priority = [u8; 5];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Head {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    pub fn parse(b: &[u8; HEAD_LEN]) -> Self {
        Self {
            len: usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            // The top bit is reserved and ignored on receipt.
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }

    /// Appends the 9-byte head; `len` must fit in 24 bits (callers keep it under `MAX_PAYLOAD`).
    pub fn write(&self, out: &mut Vec<u8>) {
        debug_assert!(self.len < 1 << 24);
        let len = u32::try_from(self.len).unwrap_or(u32::MAX).to_be_bytes();
        out.extend_from_slice(&len[1..]);
        out.extend_from_slice(&[self.kind, self.flags]);
        out.extend_from_slice(&self.stream.to_be_bytes());
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// A HEADERS payload split into its optional priority fields and its fragment; the padding
/// is dropped (it carries nothing).
pub(super) fn split_headers<'a>(head: &Head, payload: &'a [u8]) -> Result<(Option<Priority>, &'a [u8]), RewriteError> {
    let mut rest = payload;
    let mut pad = 0;
    if head.has(PADDED) {
        let (&n, tail) = rest.split_first().ok_or(RewriteError::Padding { stream: head.stream })?;
        pad = usize::from(n);
        rest = tail;
    }
    let mut priority = None;
    if head.has(PRIORITY) {
        let (fields, tail) = rest.split_first_chunk::<5>().ok_or(RewriteError::Priority { stream: head.stream })?;
        priority = Some(*fields);
        rest = tail;
    }
    // Padding longer than what is left is a connection error (RFC 9113 §6.2).
    let fragment_len = rest.len().checked_sub(pad).ok_or(RewriteError::Padding { stream: head.stream })?;
    Ok((priority, &rest[..fragment_len]))
}

/// Writes a header block as one HEADERS frame and as many CONTINUATION frames as it needs.
pub(super) fn write_block(stream: u32, end_stream: bool, priority: Option<Priority>, block: &[u8], out: &mut Vec<u8>) {
    let prio_len = priority.map_or(0, |p| p.len());
    let (first, mut rest) = block.split_at(block.len().min(MAX_PAYLOAD - prio_len));
    let mut flags = if end_stream { END_STREAM } else { 0 };
    if priority.is_some() {
        flags |= PRIORITY;
    }
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    Head { len: prio_len + first.len(), kind: HEADERS, flags, stream }.write(out);
    if let Some(p) = priority {
        out.extend_from_slice(&p);
    }
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(MAX_PAYLOAD));
        let flags = if tail.is_empty() { END_HEADERS } else { 0 };
        Head { len: chunk.len(), kind: CONTINUATION, flags, stream }.write(out);
        out.extend_from_slice(chunk);
        rest = tail;
    }
}
