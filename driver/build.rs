//! Generates the messages and tonic services of `proto/csi.proto` (CSI) and
//! `proto/pluginregistration.proto` (the kubelet's plugin registration) with a vendored protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let include = protoc_bin_vendored::include_path()?;
    // prost-build finds protoc through PROTOC; the vendored one means no system package is needed.
    std::env::set_var("PROTOC", protoc);
    let files = ["csi.proto", "pluginregistration.proto"];
    for file in files {
        println!("cargo:rerun-if-changed=proto/{file}");
    }
    let proto = std::path::PathBuf::from("proto");
    tonic_prost_build::configure().compile_protos(&files.map(|f| proto.join(f)), &[proto, include])?;
    Ok(())
}
