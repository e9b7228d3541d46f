//! tether-csi's endpoints as `server::serve` binds them, spoken to in raw HTTP/2: the way grpcio
//! and grpc-java do (the socket path or another unusable `:authority`), the call succeeds on the
//! Unix socket and on TCP, as it does with a valid one; cancellations read in one go after a
//! stall keep the connection, and a rapid-reset flood still ends it with GOAWAY.

mod common;

use std::time::Duration;

use common::Harness;
use loona_hpack::{Decoder, Encoder};
use tether_driver::authority::testing::{frame, opening, request_fields};
use tether_driver::server::{router, serve, serve_tcp, Endpoint, MAX_PENDING_ACCEPT_RESETS};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};

const DEADLINE: Duration = Duration::from_secs(10);

/// What the server answered on a stream: `(:status, grpc-status)`, the `RST_STREAM` code, or
/// the connection's GOAWAY code.
#[derive(Debug, PartialEq)]
enum Answer {
    Completed { status: String, grpc_status: String },
    Reset(u32),
    GoAway(u32),
}

const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const CANCEL: [u8; 4] = 8u32.to_be_bytes();
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// A unary Identity/Probe on `stream` with `authority`: HEADERS and an empty message.
fn probe_frames(encoder: &mut Encoder<'_>, stream: u32, authority: &[u8]) -> Vec<u8> {
    let fields = request_fields("/csi.v1.Identity/Probe", authority);
    let block = encoder.encode(fields.iter().map(|(n, v)| (&n[..], &v[..])));
    let mut out = frame(HEADERS, END_HEADERS, stream, &block);
    out.extend(frame(0x0, END_STREAM, stream, &[0, 0, 0, 0, 0])); // an empty ProbeRequest
    out
}

/// `calls` Probe calls opened (HEADERS, no body yet) and cancelled, from stream `first` on.
fn cancelled_calls(encoder: &mut Encoder<'_>, first: u32, calls: u32) -> Vec<u8> {
    let fields = request_fields("/csi.v1.Identity/Probe", b"localhost");
    let mut out = Vec::new();
    for stream in (first..).step_by(2).take(usize::try_from(calls).unwrap()) {
        let block = encoder.encode(fields.iter().map(|(n, v)| (&n[..], &v[..])));
        out.extend(frame(HEADERS, END_HEADERS, stream, &block));
        out.extend(frame(RST_STREAM, 0, stream, &CANCEL));
    }
    out
}

/// One unary Identity/Probe on a fresh connection, with `authority`.
async fn probe<C: AsyncRead + AsyncWrite + Unpin>(mut conn: C, authority: &[u8]) -> Answer {
    let mut out = opening();
    out.extend(probe_frames(&mut Encoder::new(), 1, authority));
    conn.write_all(&out).await.unwrap();
    tokio::time::timeout(DEADLINE, read_answer(&mut conn, 1)).await.expect("an answer on stream 1")
}

/// Reads frames until `stream` completes or is reset, or the connection goes away.
async fn read_answer<C: AsyncRead + Unpin>(conn: &mut C, want: u32) -> Answer {
    let (mut decoder, mut status, mut grpc_status) = (Decoder::new(), String::new(), String::new());
    loop {
        let mut head = [0u8; 9];
        conn.read_exact(&mut head).await.unwrap();
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0; len];
        conn.read_exact(&mut payload).await.unwrap();
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let code = |at: usize| u32::from_be_bytes(payload[at..at + 4].try_into().unwrap());
        match (head[3], stream) {
            (GOAWAY, 0) => return Answer::GoAway(code(4)),
            (RST_STREAM, s) if s == want => return Answer::Reset(code(0)),
            (HEADERS, s) => {
                // Every header block is decoded, in order, to keep the HPACK table in step.
                let fields = decoder.decode(&payload).unwrap();
                if s != want {
                    continue;
                }
                assert!(head[4] & END_HEADERS != 0 && head[4] & 0x28 == 0, "one plain HEADERS frame");
                for (name, value) in fields {
                    let value = String::from_utf8(value).unwrap();
                    match &name[..] {
                        b":status" => status = value,
                        b"grpc-status" => grpc_status = value,
                        _ => {}
                    }
                }
                if head[4] & END_STREAM != 0 {
                    return Answer::Completed { status, grpc_status };
                }
            }
            _ => {}
        }
    }
}

fn ok() -> Answer {
    Answer::Completed { status: "200".into(), grpc_status: "0".into() }
}

/// The driver served on TCP by `serve_tcp`, on a port of loopback the kernel picks.
async fn on_tcp(h: &Harness) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let driver = h.driver.clone();
    tokio::spawn(async move { serve_tcp(router(driver), listener, std::future::pending()).await });
    addr
}

#[tokio::test]
async fn a_path_authority_is_served_like_a_valid_one() {
    let h = Harness::start().await;
    let socket = h.dir.path().join("served.sock");
    let endpoint = Endpoint::Unix(socket.clone());
    let driver = h.driver.clone();
    tokio::spawn(async move { serve(driver, &endpoint, std::future::pending()).await });
    tokio::time::timeout(DEADLINE, async {
        while UnixStream::connect(&socket).await.is_err() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the driver listens");
    for authority in [&b"tmp%2Frun%2Fcsi.sock"[..], b"/run/csi.sock", b"localhost"] {
        let conn = UnixStream::connect(&socket).await.unwrap();
        assert_eq!(probe(conn, authority).await, ok(), "{}", String::from_utf8_lossy(authority));
    }
}

#[tokio::test]
async fn an_unusable_authority_over_tcp_is_served_like_a_valid_one() {
    let h = Harness::start().await;
    let addr = on_tcp(&h).await;
    for authority in [&b"tmp%2Frun%2Fcsi.sock"[..], b"/run/csi.sock", b"127.0.0.1:10000", b"localhost"] {
        let conn = TcpStream::connect(addr).await.unwrap();
        assert_eq!(probe(conn, authority).await, ok(), "{}", String::from_utf8_lossy(authority));
    }
}

/// After a stall, the server reads in one go every call its clients opened and cancelled
/// meanwhile; then the connection must still serve.
#[tokio::test]
async fn cancellations_read_after_a_stall_keep_the_connection() {
    let h = Harness::start().await;
    let addr = on_tcp(&h).await;
    for calls in [16, 64] {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let mut encoder = Encoder::new();
        let mut out = opening();
        out.extend(cancelled_calls(&mut encoder, 1, calls));
        let next = 1 + 2 * calls;
        out.extend(probe_frames(&mut encoder, next, b"localhost"));
        conn.write_all(&out).await.unwrap();
        let answer = tokio::time::timeout(DEADLINE, read_answer(&mut conn, next)).await.expect("an answer");
        assert_eq!(answer, ok(), "after {calls} cancelled calls");
    }
}

#[tokio::test]
async fn a_rapid_reset_flood_is_still_ended_with_goaway() {
    let h = Harness::start().await;
    let addr = on_tcp(&h).await;
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let mut encoder = Encoder::new();
    let calls = u32::try_from(MAX_PENDING_ACCEPT_RESETS * 10).unwrap();
    let mut out = opening();
    out.extend(cancelled_calls(&mut encoder, 1, calls));
    out.extend(probe_frames(&mut encoder, 1 + 2 * calls, b"localhost"));
    // The server may close before it read everything: a failed write is the flood refused too.
    let _ = conn.write_all(&out).await;
    let answer = tokio::time::timeout(DEADLINE, read_answer(&mut conn, 1 + 2 * calls)).await.expect("an answer");
    assert_eq!(answer, Answer::GoAway(ENHANCE_YOUR_CALM));
}
