//! tether-csi's socket as `server::serve` binds it, spoken to in raw HTTP/2 the way grpcio
//! does (the socket path as `:authority`): the call succeeds, as it does with a valid one.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Harness;
use loona_hpack::{Decoder, Encoder};
use tether_driver::authority::testing::{frame, opening, request_fields};
use tether_driver::server::{serve, Endpoint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const DEADLINE: Duration = Duration::from_secs(10);

/// What the server answered on stream 1: `(:status, grpc-status)`, or the `RST_STREAM` code.
#[derive(Debug, PartialEq)]
enum Answer {
    Completed { status: String, grpc_status: String },
    Reset(u32),
}

/// One unary Identity/Probe on a fresh connection, with `authority`.
async fn probe(socket: &Path, authority: &[u8]) -> Answer {
    let mut conn = UnixStream::connect(socket).await.unwrap();
    let fields = request_fields("/csi.v1.Identity/Probe", authority);
    let block = Encoder::new().encode(fields.iter().map(|(n, v)| (&n[..], &v[..])));
    let mut out = opening();
    out.extend(frame(0x1, 0x4, 1, &block));
    out.extend(frame(0x0, 0x1, 1, &[0, 0, 0, 0, 0])); // an empty ProbeRequest, END_STREAM
    conn.write_all(&out).await.unwrap();
    tokio::time::timeout(DEADLINE, read_answer(&mut conn)).await.expect("an answer on stream 1")
}

async fn read_answer(conn: &mut UnixStream) -> Answer {
    let (mut decoder, mut status, mut grpc_status) = (Decoder::new(), String::new(), String::new());
    loop {
        let mut head = [0u8; 9];
        conn.read_exact(&mut head).await.unwrap();
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0; len];
        conn.read_exact(&mut payload).await.unwrap();
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        match (head[3], stream) {
            (0x3, 1) => return Answer::Reset(u32::from_be_bytes(payload[..4].try_into().unwrap())),
            (0x1, 1) => {
                assert!(head[4] & 0x4 != 0 && head[4] & 0x28 == 0, "one plain HEADERS frame");
                for (name, value) in decoder.decode(&payload).unwrap() {
                    let value = String::from_utf8(value).unwrap();
                    match &name[..] {
                        b":status" => status = value,
                        b"grpc-status" => grpc_status = value,
                        _ => {}
                    }
                }
                if head[4] & 0x1 != 0 {
                    return Answer::Completed { status, grpc_status };
                }
            }
            _ => {}
        }
    }
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
    let ok = Answer::Completed { status: "200".into(), grpc_status: "0".into() };
    for authority in [&b"tmp%2Frun%2Fcsi.sock"[..], b"/run/csi.sock", b"localhost"] {
        assert_eq!(probe(&socket, authority).await, ok, "{}", String::from_utf8_lossy(authority));
    }
}
