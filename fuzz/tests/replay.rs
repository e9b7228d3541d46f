//! Replays every stored fuzz input (corpus/<target>/ and regressions/<target>/) through the
//! target's checks on the stable toolchain: one line per target and a closing count.

use std::path::Path;

fn inputs(target: &str) -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = ["corpus", "regressions"]
        .iter()
        .filter_map(|d| std::fs::read_dir(root.join(d).join(target)).ok())
        .flatten()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let files = inputs(target);
    assert!(!files.is_empty(), "no stored inputs for {target}");
    for path in &files {
        let data = std::fs::read(path).unwrap();
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            panic!("{target}: {} breaks a check", path.display());
        }
    }
    println!("{target}: {} inputs replayed", files.len());
    files.len()
}

#[test]
fn snapshot_restore() {
    replay("snapshot_restore", tether_fuzz::snapshot::run);
}

#[test]
fn store_records() {
    replay("store_records", tether_fuzz::store::run);
}

#[test]
fn controller_requests() {
    replay("controller_requests", tether_fuzz::controller::run);
}

#[test]
fn abi_calls() {
    replay("abi_calls", tether_fuzz::abi::run);
}

#[test]
fn node_requests() {
    replay("node_requests", tether_fuzz::node::run);
}

/// The node target's seed reaches real sessions (the filesystem volume's stage and publish, the
/// block volume's publish, which needs no stage, are accepted), so the fuzzer starts from inputs
/// that pass the fence check.
#[test]
fn node_requests_seed_reaches_sessions() {
    let seed = tether_fuzz::node::seed();
    assert_eq!(tether_fuzz::node::sessions(&seed), 3);
    // How the node target's first input was written (the fuzz runs grew corpus/node_requests/ from it).
    if let Some(path) = std::env::var_os("TETHER_FUZZ_WRITE_SEED") {
        std::fs::write(path, seed).unwrap();
    }
}
