//! The adapter as a connection: reads pass through a [`Rewriter`], writes go straight through.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

use super::{RewriteError, Rewriter};

/// How much is read from the client at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A client connection whose HTTP/2 header blocks reach the server with a usable `:authority`.
pub struct AuthorityFix<S> {
    inner: S,
    rewriter: Rewriter,
    /// Rewritten bytes not yet handed to the server, from `start`.
    ready: Vec<u8>,
    start: usize,
    scratch: Box<[u8]>,
    /// Once a read has failed, every later one fails the same way.
    failed: Option<RewriteError>,
}

impl<S> AuthorityFix<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            rewriter: Rewriter::default(),
            ready: Vec::new(),
            start: 0,
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            failed: None,
        }
    }

    /// Whether this connection's header blocks are being re-encoded.
    pub fn rewriting(&self) -> bool {
        self.rewriter.rewriting()
    }

    /// Hands over what is ready; false when nothing is.
    fn drain(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let n = buf.remaining().min(self.ready.len() - self.start);
        if n == 0 {
            return false;
        }
        buf.put_slice(&self.ready[self.start..self.start + n]);
        self.start += n;
        if self.start == self.ready.len() {
            self.ready.clear();
            self.start = 0;
        }
        true
    }
}

fn connection_error(e: RewriteError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            // What came before a bad frame is handed over first, then the error.
            if buf.remaining() == 0 || this.drain(buf) {
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = this.failed {
                return Poll::Ready(Err(connection_error(e)));
            }
            let mut chunk = ReadBuf::new(&mut this.scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut chunk))?;
            let got = chunk.filled();
            if got.is_empty() {
                if this.rewriter.holding() {
                    this.failed = Some(RewriteError::Truncated);
                    continue;
                }
                return Poll::Ready(Ok(()));
            }
            // A rewritten chunk may be empty (a header frame still incomplete): read again.
            if let Err(e) = this.rewriter.feed(got, &mut this.ready) {
                tracing::debug!(error = %e, "closing a CSI connection that is not valid HTTP/2");
                this.failed = Some(e);
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The server sees the client's own connection info (peer credentials on a Unix socket).
impl<S: Connected> Connected for AuthorityFix<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixStream;

    use super::super::frame::{Head, END_HEADERS, HEADERS, PREFACE};
    use super::AuthorityFix;

    fn headers_frame(block: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Head { len: block.len(), kind: HEADERS, flags: END_HEADERS, stream: 1 }.write(&mut out);
        out.extend_from_slice(block);
        out
    }

    #[tokio::test]
    async fn reads_are_rewritten_and_writes_pass_through() {
        let (mut client, server) = UnixStream::pair().unwrap();
        let mut fixed = AuthorityFix::new(server);
        // :authority (static name 1) = "/s", a literal without indexing.
        let request = [&PREFACE[..], &headers_frame(&[0x01, 2, b'/', b's'])].concat();
        client.write_all(&request).await.unwrap();
        let mut got = vec![0; PREFACE.len() + 9 + 22];
        fixed.read_exact(&mut got).await.unwrap();
        assert!(got.ends_with(b"\x00\x0a:authority\x09localhost"), "{got:?}");
        assert!(fixed.rewriting());
        fixed.write_all(b"reply").await.unwrap();
        let mut reply = [0; 5];
        client.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"reply");
    }

    #[tokio::test]
    async fn a_connection_cut_inside_a_header_frame_is_an_error_and_stays_one() {
        let (mut client, server) = UnixStream::pair().unwrap();
        let mut fixed = AuthorityFix::new(server);
        let frame = headers_frame(&[0x82, 0x86]);
        client.write_all(&[&PREFACE[..], &frame[..5]].concat()).await.unwrap();
        drop(client);
        let mut buf = vec![0; 64];
        let mut preface = vec![0; PREFACE.len()];
        fixed.read_exact(&mut preface).await.unwrap(); // what came before is still handed over
        for _ in 0..2 {
            let e = fixed.read(&mut buf).await.unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        }
    }

    #[tokio::test]
    async fn frames_before_a_malformed_one_are_read_before_the_error() {
        let (mut client, server) = UnixStream::pair().unwrap();
        let mut fixed = AuthorityFix::new(server);
        let good = [&PREFACE[..], &headers_frame(&[0x82, 0x86, 0x01, 2, b'/', b's'])].concat();
        let stray = [0, 0, 0, 0x9, 0x4, 0, 0, 0, 1]; // a CONTINUATION with no block open
        client.write_all(&[&good[..], &stray].concat()).await.unwrap();
        let mut want = Vec::new();
        super::Rewriter::default().feed(&good, &mut want).unwrap();
        let (mut got, mut buf) = (Vec::new(), vec![0; 64]);
        let e = loop {
            match fixed.read(&mut buf).await {
                Ok(0) => panic!("end of stream instead of the error"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(got, want);
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn a_clean_close_between_frames_is_end_of_stream() {
        let (mut client, server) = UnixStream::pair().unwrap();
        let mut fixed = AuthorityFix::new(server);
        client.write_all(PREFACE).await.unwrap();
        drop(client);
        let mut all = Vec::new();
        fixed.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, PREFACE);
    }
}
