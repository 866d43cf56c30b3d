//! Generates the gRPC code and the descriptor set (for reflection) from
//! `proto/softstake/v1/softstake.proto`. Needs `protoc` (Debian `protobuf-compiler`,
//! installed by `scripts/setup.sh`; `PROTOC` points elsewhere).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let proto = proto_dir.join("softstake/v1/softstake.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("softstake_descriptor.bin"))
        .compile_protos(&[proto], &[proto_dir])?;
    Ok(())
}
