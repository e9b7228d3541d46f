//! Generates the CSI messages and tonic services from `proto/csi.proto` with a vendored protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let include = protoc_bin_vendored::include_path()?;
    // prost-build finds protoc through PROTOC; the vendored one means no system package is needed.
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=proto/csi.proto");
    let proto = std::path::PathBuf::from("proto");
    tonic_prost_build::configure().compile_protos(&[proto.join("csi.proto")], &[proto, include])?;
    Ok(())
}
