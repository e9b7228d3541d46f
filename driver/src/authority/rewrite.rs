//! The client-to-server byte stream of one HTTP/2 connection, rewritten so that every header
//! block's `:authority` is one the server accepts. Sans-I/O: bytes in, bytes out.
//!
//! The connection's first header block decides. If its `:authority` is usable, the block and
//! everything after it are forwarded byte for byte, no longer read (the client is grpc-go
//! or one given a valid authority; the cost is one decoded block per connection). If not,
//! HPACK being stateful, every block is decoded in order with one decoder for the connection
//! and re-encoded as literals that never touch the dynamic table: the server's decoder then
//! needs no state in common with ours, and the client's table entries, which the server
//! never saw, are never referred to.

use std::borrow::Cow;

use loona_hpack::encoder::encode_integer_into;
use loona_hpack::Decoder;

use super::frame::{self, Head, Priority, CONTINUATION, END_HEADERS, END_STREAM, HEADERS, HEAD_LEN, PREFACE};
use super::{usable, RewriteError, REPLACEMENT};

/// The most header block bytes gathered from HEADERS and CONTINUATION frames; far above what
/// the server accepts (h2's header list limit is 16 KiB by default) and bounds our memory.
pub const MAX_BLOCK: usize = 1 << 20;
/// The most decoded header list bytes (names, values and 32 per field, RFC 7541 §4.1): it
/// bounds what a small block of references to large table entries can expand to.
pub const MAX_LIST: usize = 1 << 20;
/// `SETTINGS_HEADER_TABLE_SIZE`: the server (tonic over h2) keeps the default, so the client's
/// encoder may grow its table to this and no further.
const TABLE_SIZE: usize = 4096;

enum Phase {
    /// Matching the client preface; `usize` bytes of it seen.
    Preface(usize),
    Frames,
    /// Forwarded untouched: a connection whose first header block needed no change, or one
    /// that is not HTTP/2 with prior knowledge (for the server to refuse).
    Raw,
}

/// A header block being gathered from a HEADERS frame and its CONTINUATION frames.
struct Block {
    stream: u32,
    end_stream: bool,
    priority: Option<Priority>,
    fragment: Vec<u8>,
    /// The frames as received, forwarded when nothing changes (kept for a first block only).
    original: Vec<u8>,
}

pub struct Rewriter {
    phase: Phase,
    /// The head, and for header frames the payload, of the frame being read.
    pending: Vec<u8>,
    /// Bytes of a frame payload left to forward untouched.
    passthrough: usize,
    block: Option<Block>,
    decoder: Decoder<'static>,
    rewriting: bool,
}

impl Default for Rewriter {
    fn default() -> Self {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(TABLE_SIZE);
        Self { phase: Phase::Preface(0), pending: Vec::new(), passthrough: 0, block: None, decoder, rewriting: false }
    }
}

impl Rewriter {
    /// Whether the first header block needed a change: then every block is re-encoded.
    pub fn rewriting(&self) -> bool {
        self.rewriting
    }

    /// Whether a header frame or block is partly read and held back: the server has not seen
    /// it, so an end of stream here must be reported rather than look like a clean close.
    pub fn holding(&self) -> bool {
        !self.pending.is_empty() || self.block.is_some()
    }

    /// Consumes all of `input`, appending what the server should read to `out`; bytes of an
    /// incomplete frame are kept for the next call.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), RewriteError> {
        while !input.is_empty() {
            input = match self.phase {
                Phase::Raw => {
                    out.extend_from_slice(input);
                    &[]
                }
                Phase::Preface(seen) => self.preface(seen, input, out),
                Phase::Frames => self.frames(input, out)?,
            };
        }
        Ok(())
    }

    fn preface<'a>(&mut self, seen: usize, input: &'a [u8], out: &mut Vec<u8>) -> &'a [u8] {
        let n = input.len().min(PREFACE.len() - seen);
        if input[..n] != PREFACE[seen..seen + n] {
            self.phase = Phase::Raw;
            return input;
        }
        out.extend_from_slice(&input[..n]);
        self.phase = if seen + n == PREFACE.len() { Phase::Frames } else { Phase::Preface(seen + n) };
        &input[n..]
    }

    /// Takes what `input` has of the current frame; returns the rest.
    fn frames<'a>(&mut self, input: &'a [u8], out: &mut Vec<u8>) -> Result<&'a [u8], RewriteError> {
        if self.passthrough > 0 {
            let n = input.len().min(self.passthrough);
            out.extend_from_slice(&input[..n]);
            self.passthrough -= n;
            return Ok(&input[n..]);
        }
        let input = take_up_to(&mut self.pending, HEAD_LEN, input);
        let Some(head) = self.pending.first_chunk::<HEAD_LEN>().map(Head::parse) else { return Ok(input) };
        if head.kind != HEADERS && head.kind != CONTINUATION {
            if let Some(block) = &self.block {
                return Err(RewriteError::Interleaved { stream: block.stream, kind: head.kind });
            }
            out.append(&mut self.pending);
            self.passthrough = head.len;
            return Ok(input);
        }
        let gathered = self.block.as_ref().map_or(0, |b| b.fragment.len());
        if gathered + head.len > MAX_BLOCK {
            return Err(RewriteError::BlockTooLarge { stream: head.stream, limit: MAX_BLOCK });
        }
        let input = take_up_to(&mut self.pending, HEAD_LEN + head.len, input);
        if self.pending.len() == HEAD_LEN + head.len {
            let raw = std::mem::take(&mut self.pending);
            self.header_frame(&head, &raw, out)?;
        }
        Ok(input)
    }

    fn header_frame(&mut self, head: &Head, raw: &[u8], out: &mut Vec<u8>) -> Result<(), RewriteError> {
        let payload = &raw[HEAD_LEN..];
        let keep = !self.rewriting;
        match (head.kind, &mut self.block) {
            (HEADERS, None) => {
                let (priority, fragment) = frame::split_headers(head, payload)?;
                self.block = Some(Block {
                    stream: head.stream,
                    end_stream: head.has(END_STREAM),
                    priority,
                    fragment: fragment.to_vec(),
                    original: if keep { raw.to_vec() } else { Vec::new() },
                });
            }
            (HEADERS, Some(open)) => return Err(RewriteError::Interleaved { stream: open.stream, kind: HEADERS }),
            (_, None) => return Err(RewriteError::StrayContinuation { stream: head.stream }),
            (_, Some(open)) if open.stream != head.stream => {
                return Err(RewriteError::ContinuationStream { expected: open.stream, got: head.stream })
            }
            (_, Some(open)) => {
                open.fragment.extend_from_slice(payload);
                if keep {
                    open.original.extend_from_slice(raw);
                }
            }
        }
        if head.has(END_HEADERS) {
            if let Some(block) = self.block.take() {
                self.finish(&block, out)?;
            }
        }
        Ok(())
    }

    /// Decodes a complete block and forwards it: as received, or re-encoded.
    fn finish(&mut self, block: &Block, out: &mut Vec<u8>) -> Result<(), RewriteError> {
        let mut encoded = Vec::with_capacity(block.fragment.len() * 2);
        let mut list_size = 0usize;
        let mut changed = false;
        self.decoder
            .decode_with_cb(&block.fragment, |name, value| {
                list_size = list_size.saturating_add(name.len() + value.len() + 32);
                if list_size > MAX_LIST {
                    return;
                }
                let value = if &*name == b":authority" && !usable(&value) {
                    changed = true;
                    Cow::Borrowed(REPLACEMENT)
                } else {
                    value
                };
                encode_literal(&name, &value, &mut encoded);
            })
            .map_err(|e| RewriteError::Hpack { stream: block.stream, source: e })?;
        if list_size > MAX_LIST {
            return Err(RewriteError::ListTooLarge { stream: block.stream, limit: MAX_LIST });
        }
        if changed && !self.rewriting {
            tracing::debug!(stream = block.stream, "rewriting an unusable :authority on this connection");
            self.rewriting = true;
        }
        if self.rewriting {
            frame::write_block(block.stream, block.end_stream, block.priority, &encoded, out);
        } else {
            out.extend_from_slice(&block.original);
            self.phase = Phase::Raw;
        }
        Ok(())
    }
}

/// Moves bytes from `input` into `buf` until it holds `want`; returns what is left of `input`.
fn take_up_to<'a>(buf: &mut Vec<u8>, want: usize, input: &'a [u8]) -> &'a [u8] {
    let n = want.saturating_sub(buf.len()).min(input.len());
    buf.extend_from_slice(&input[..n]);
    &input[n..]
}

/// A literal field without indexing and with a literal name (RFC 7541 §6.2.2), no Huffman:
/// stateless for the server's decoder, and plain bytes are as good as any on a local socket.
fn encode_literal(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.push(0x00);
    for s in [name, value] {
        // Writing to a Vec cannot fail.
        let _ = encode_integer_into(s.len(), 7, 0, out);
        out.extend_from_slice(s);
    }
}
