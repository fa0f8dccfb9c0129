//! Compiles every `.proto` file under the workspace's `proto/` directory into `OUT_DIR`.
//!
//! Generated code is never checked in. All `bytes` fields become `bytes::Bytes`, so record
//! batches move between socket and disk without copies. The file descriptor set is written next
//! to the generated code for gRPC server reflection.

use std::{
    env, fs, io,
    path::{Path, PathBuf},
};

/// The proto root, relative to this crate's manifest directory.
const PROTO_ROOT: &str = "../../proto";

/// File stem of the encoded descriptor set; `lib.rs` includes `<stem>.bin`.
const DESCRIPTOR_SET_STEM: &str = "strom_descriptor";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");

    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join(PROTO_ROOT);
    let mut protos = Vec::new();
    collect_protos(&proto_root, &mut protos)?;
    // A stable order keeps the generated code and the descriptor set reproducible.
    protos.sort();
    if protos.is_empty() {
        return Err(format!("no .proto files under {}", proto_root.display()).into());
    }

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .bytes(".")
        .file_descriptor_set_path(out_dir.join(format!("{DESCRIPTOR_SET_STEM}.bin")))
        .compile_protos(&protos, &[proto_root])?;
    Ok(())
}

/// Appends every `.proto` file below `dir` (recursively) to `out`.
fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
