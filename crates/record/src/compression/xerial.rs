//! The xerial `snappy-java` stream framing that Kafka's Java client uses for snappy.
//!
//! ```text
//! header  0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00
//!         version int32 BE (1) | compatible version int32 BE (1)
//! block*  compressed length int32 BE | raw snappy block (at most 32 KiB uncompressed)
//! ```
//!
//! `SnappyOutputStream` writes 32 KiB blocks by default, and so does [`compress`]. Like
//! `SnappyInputStream`, [`decompress`] also accepts input without the header as one raw snappy
//! block, and a second header where a block length is expected (concatenated streams).

use std::io;

use bytes::{BufMut, BytesMut};

use super::invalid_data;

/// The first eight bytes of a xerial stream.
const MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Magic plus the two version fields.
const HEADER_LEN: usize = 16;
/// The version snappy-java writes in both version fields.
const VERSION: i32 = 1;
/// The uncompressed size of each block, as in snappy-java's `SnappyOutputStream`.
const BLOCK_SIZE: usize = 32 * 1024;

/// Why decompression failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The output would exceed the limit.
    TooLarge,
    /// The framing or a snappy block is malformed.
    Io(io::Error),
}

impl From<snap::Error> for Failure {
    fn from(e: snap::Error) -> Self {
        Failure::Io(e.into())
    }
}

/// Appends the xerial framing of `input` to `out`.
pub(super) fn compress(input: &[u8], out: &mut BytesMut) -> io::Result<()> {
    out.extend_from_slice(&MAGIC);
    out.put_i32(VERSION);
    out.put_i32(VERSION);
    let mut encoder = snap::raw::Encoder::new();
    let mut scratch = vec![0; snap::raw::max_compress_len(BLOCK_SIZE)];
    for block in input.chunks(BLOCK_SIZE) {
        let len = encoder.compress(block, &mut scratch)?;
        let prefix = i32::try_from(len).map_err(|_| invalid_data("snappy block too large"))?;
        out.put_i32(prefix);
        out.extend_from_slice(&scratch[..len]);
    }
    Ok(())
}

/// Decodes a xerial stream, or a single raw snappy block if `input` lacks the xerial magic.
pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, Failure> {
    let mut out = Vec::new();
    if !input.starts_with(&MAGIC) {
        append_block(input, limit, &mut out)?;
        return Ok(out);
    }
    let mut rest = input;
    while !rest.is_empty() {
        if rest.starts_with(&MAGIC) {
            if rest.len() < HEADER_LEN {
                return Err(Failure::Io(invalid_data("truncated xerial header")));
            }
            rest = &rest[HEADER_LEN..];
            continue;
        }
        let Some((prefix, tail)) = rest.split_first_chunk::<4>() else {
            return Err(Failure::Io(invalid_data("truncated xerial block length")));
        };
        let len = usize::try_from(i32::from_be_bytes(*prefix))
            .map_err(|_| Failure::Io(invalid_data("negative xerial block length")))?;
        if len > tail.len() {
            return Err(Failure::Io(invalid_data("xerial block runs past the end")));
        }
        let (block, tail) = tail.split_at(len);
        append_block(block, limit, &mut out)?;
        rest = tail;
    }
    Ok(out)
}

/// Decompresses one raw snappy block onto the end of `out`, keeping `out` within `limit`.
fn append_block(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), Failure> {
    // The block states its uncompressed size up front: check it before allocating.
    let len = snap::raw::decompress_len(block)?;
    let start = out.len();
    if len > limit - start {
        return Err(Failure::TooLarge);
    }
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new().decompress(block, &mut out[start..])?;
    if written != len {
        return Err(Failure::Io(invalid_data(
            "snappy block shorter than its declared size",
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_snappy_java_header_and_32k_blocks() {
        let input = vec![7u8; 70_000];
        let mut out = BytesMut::new();
        compress(&input, &mut out).unwrap();
        assert_eq!(&out[..8], &MAGIC);
        assert_eq!(&out[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);
        // Three blocks: 32 KiB, 32 KiB, the rest.
        let mut rest = &out[16..];
        let mut sizes = Vec::new();
        while !rest.is_empty() {
            let len = i32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            sizes.push(snap::raw::decompress_len(&rest[4..4 + len]).unwrap());
            rest = &rest[4 + len..];
        }
        assert_eq!(sizes, [32 * 1024, 32 * 1024, 70_000 - 64 * 1024]);
        assert_eq!(decompress(&out, usize::MAX).unwrap(), input);
    }

    #[test]
    fn reads_a_plain_raw_block() {
        let raw = snap::raw::Encoder::new()
            .compress_vec(b"plain snappy")
            .unwrap();
        assert_eq!(decompress(&raw, 100).unwrap(), b"plain snappy");
    }

    #[test]
    fn reads_concatenated_streams() {
        let mut out = BytesMut::new();
        compress(b"first,", &mut out).unwrap();
        compress(b"second", &mut out).unwrap();
        assert_eq!(decompress(&out, 100).unwrap(), b"first,second");
    }

    #[test]
    fn rejects_broken_framing() {
        let mut out = BytesMut::new();
        compress(b"some bytes to frame", &mut out).unwrap();
        for cut in [12, 18, out.len() - 1] {
            assert!(
                matches!(decompress(&out[..cut], 100), Err(Failure::Io(_))),
                "cut {cut}"
            );
        }
        let mut negative = out.to_vec();
        negative[16] = 0xff;
        assert!(matches!(decompress(&negative, 100), Err(Failure::Io(_))));
    }

    #[test]
    fn checks_the_limit_before_allocating() {
        // A raw block header claiming 2 GiB, with nothing behind it.
        let claim = [0x80, 0x80, 0x80, 0x80, 0x08];
        assert!(matches!(
            decompress(&claim, 1 << 20),
            Err(Failure::TooLarge)
        ));
    }
}
