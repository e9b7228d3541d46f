//! The authority adapter's own cost: one connection's client bytes (64 gRPC requests, each a
//! header block from one HPACK encoder plus a small DATA frame) through `Rewriter::feed`,
//! with a valid authority (decoded, forwarded as is) and with grpcio's path authority
//! (decoded, re-encoded), beside a plain copy of the same bytes.
//!
//! `cargo bench -p tether-benches --bench authority`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use loona_hpack::Encoder;
use tether_driver::authority::testing::{frame, opening, request_fields};
use tether_driver::authority::Rewriter;

const REQUESTS: u32 = 64;

/// What a gRPC client sends on one connection, as grpc-go or grpcio would shape it.
fn connection(authority: &[u8]) -> Vec<u8> {
    let mut encoder = Encoder::new();
    let mut out = opening();
    for i in 0..REQUESTS {
        let stream = 2 * i + 1;
        let mut fields = request_fields("/csi.v1.Controller/ControllerPublishVolume", authority);
        fields.push((b"user-agent".to_vec(), b"grpc-python/1.85.1 grpc-c/52.0.0 (linux; chttp2)".to_vec()));
        fields.push((b"grpc-accept-encoding".to_vec(), b"identity, deflate, gzip".to_vec()));
        let block = encoder.encode(fields.iter().map(|(n, v)| (&n[..], &v[..])));
        out.extend(frame(0x1, 0x4, stream, &block));
        out.extend(frame(0x0, 0x1, stream, &[0, 0, 0, 0, 10, 10, 8, 112, 118, 99, 45, 98, 101, 110, 99]));
    }
    out
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("authority: one connection of 64 requests");
    let valid = connection(b"localhost");
    let path = connection(b"tmp%2Frun%2Fcsi.sock");
    group.throughput(Throughput::Elements(u64::from(REQUESTS)));
    group.bench_function("copy (baseline)", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(valid.len());
            out.extend_from_slice(std::hint::black_box(&valid));
            out
        });
    });
    for (name, input) in [("valid authority: decode, forward", &valid), ("path authority: decode, re-encode", &path)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(input.len() * 2);
                Rewriter::default().feed(std::hint::black_box(input), &mut out).expect("valid HTTP/2");
                out
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = authority;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(authority);
