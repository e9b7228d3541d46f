//! Serving gRPC clients that send the socket path as `:authority` (grpcio for Python,
//! grpc-java, grpc C++): a connection adapter in front of the HTTP/2 server rewrites an
//! `:authority` that h2 would refuse to `localhost`, and changes nothing else.
//!
//! h2 resets every stream whose `:authority` does not parse as an `http::uri::Authority`
//! (`malformed headers: malformed authority`), and has no setting to relax that; so the fix
//! sits below it, on the bytes the client sends. See `rewrite` for why it is sound with HPACK.

mod frame;
#[cfg(test)]
mod proptests;
mod rewrite;
mod stream;
#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;

pub use rewrite::{Rewriter, MAX_BLOCK, MAX_LIST};
pub use stream::AuthorityFix;

/// What an unusable `:authority` becomes: what grpc-go, and so the Kubernetes sidecars, send.
pub const REPLACEMENT: &[u8] = b"localhost";

/// Whether h2 accepts `authority`: the same parse it makes, so exactly what h2 would refuse is
/// rewritten and a valid authority is never touched.
pub fn usable(authority: &[u8]) -> bool {
    ::http::uri::Authority::try_from(authority).is_ok()
}

/// Why a client's bytes could not be read as HTTP/2; each is a connection error (RFC 9113
/// §5.4.1), so the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum RewriteError {
    #[error("stream {stream}: HEADERS padding longer than the frame")]
    Padding { stream: u32 },
    #[error("stream {stream}: HEADERS with PRIORITY too short for its fields")]
    Priority { stream: u32 },
    #[error("stream {stream}: frame type {kind:#x} inside its header block")]
    Interleaved { stream: u32, kind: u8 },
    #[error("stream {stream}: CONTINUATION with no header block open")]
    StrayContinuation { stream: u32 },
    #[error("CONTINUATION on stream {got} inside the header block of stream {expected}")]
    ContinuationStream { expected: u32, got: u32 },
    #[error("stream {stream}: header block over {limit} bytes")]
    BlockTooLarge { stream: u32, limit: usize },
    #[error("stream {stream}: decoded header list over {limit} bytes")]
    ListTooLarge { stream: u32, limit: usize },
    #[error("stream {stream}: HPACK: {source}")]
    Hpack { stream: u32, source: loona_hpack::decoder::DecoderError },
    #[error("the client closed the connection inside a header frame")]
    Truncated,
}
