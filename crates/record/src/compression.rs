//! Compression codecs for the records area, byte-compatible with Kafka's Java client.
//!
//! What each codec writes and accepts is listed on [`Compression`]. Decompression never
//! produces more than a caller-given limit, so a small hostile batch cannot make the process
//! allocate without bound.

mod xerial;

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use bytes::{BufMut, BytesMut};

use crate::{Error, Result};

/// The most bytes [`decode_records`](crate::decode_records) lets one batch's records area
/// decompress to.
pub const MAX_DECOMPRESSED_SIZE: usize = 256 * 1024 * 1024;

/// The zstd level Kafka producers use by default.
const ZSTD_LEVEL: i32 = 3;

/// A batch's compression codec: attribute bits 0-2.
///
/// A compressed batch compresses all of its records as one stream; the 61-byte header stays
/// uncompressed. What each codec writes, as Kafka's Java client does:
///
/// - **gzip**: one gzip member (RFC 1952) at the default level; reading accepts concatenated
///   members, as `java.util.zip.GZIPInputStream` does.
/// - **snappy**: the xerial `snappy-java` stream framing (magic header, then
///   blocks of at most 32 KiB, each prefixed with its compressed length); reading
///   also accepts one plain raw snappy block.
/// - **lz4**: one LZ4 frame (magic `0x184D2204`) with independent 64 KiB blocks, no block or
///   content checksums, no content size, and a correct header checksum (HC) byte. This is what
///   Kafka writes for magic v2; the broken HC computed by pre-0.10 clients only ever applied to
///   magic v0.
/// - **zstd**: one zstd frame at level 3, Kafka's default; reading accepts concatenated frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Records are stored as they are (code 0).
    #[default]
    None,
    /// A gzip stream (code 1).
    Gzip,
    /// xerial-framed snappy (code 2).
    Snappy,
    /// An LZ4 frame (code 3).
    Lz4,
    /// A zstd frame (code 4).
    Zstd,
}

impl Compression {
    /// Every codec, in code order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The attribute bits that hold the codec.
    pub const MASK: i16 = 0x07;

    /// The codec named by a 3-bit code; codes 5, 6 and 7 are unknown.
    pub fn from_code(code: u8) -> Result<Self> {
        match code {
            0 => Ok(Self::None),
            1 => Ok(Self::Gzip),
            2 => Ok(Self::Snappy),
            3 => Ok(Self::Lz4),
            4 => Ok(Self::Zstd),
            code => Err(Error::UnknownCompression { code }),
        }
    }

    /// The codec named by the low three bits of a batch's attributes.
    pub fn from_attributes(attributes: i16) -> Result<Self> {
        // Masked to three bits, so the cast is lossless.
        Self::from_code((attributes & Self::MASK) as u8)
    }

    /// The codec's 3-bit code.
    pub const fn code(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }

    /// The codec's code as attribute bits, to be OR-ed into a batch's attributes.
    pub const fn to_attributes(self) -> i16 {
        self.code() as i16
    }

    /// The codec's name, as Kafka spells it in `compression.type`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|codec| codec.name() == s)
            .ok_or_else(|| Error::UnknownCompressionName { name: s.to_owned() })
    }
}

/// Compresses `input` with `codec`, appending the result to `out`.
pub(crate) fn compress(codec: Compression, input: &[u8], out: &mut BytesMut) -> Result<()> {
    let fail = |source| Error::Compression { codec, source };
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(out.writer(), flate2::Compression::default());
            encoder.write_all(input).map_err(fail)?;
            encoder.finish().map_err(fail)?;
        }
        Compression::Snappy => xerial::compress(input, out).map_err(fail)?,
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, out.writer());
            encoder.write_all(input).map_err(fail)?;
            encoder.finish().map_err(|e| fail(e.into()))?;
        }
        Compression::Zstd => {
            let mut encoder = zstd::Encoder::new(out.writer(), ZSTD_LEVEL).map_err(fail)?;
            // The size is known up front; recording it lets readers size their buffers.
            encoder
                .set_pledged_src_size(Some(input.len() as u64))
                .map_err(fail)?;
            encoder.include_contentsize(true).map_err(fail)?;
            encoder.write_all(input).map_err(fail)?;
            encoder.finish().map_err(fail)?;
        }
    }
    Ok(())
}

/// Decompresses `input` with `codec`, failing once the output would exceed `limit` bytes.
pub(crate) fn decompress(codec: Compression, input: &[u8], limit: usize) -> Result<Vec<u8>> {
    let fail = |source| Error::Compression { codec, source };
    match codec {
        Compression::None => {
            if input.len() > limit {
                return Err(Error::DecompressedTooLarge { codec, limit });
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => read_limited(codec, flate2::read::MultiGzDecoder::new(input), limit),
        Compression::Snappy => xerial::decompress(input, limit).map_err(|e| match e {
            xerial::Failure::TooLarge => Error::DecompressedTooLarge { codec, limit },
            xerial::Failure::Io(source) => fail(source),
        }),
        Compression::Lz4 => read_limited(codec, lz4_flex::frame::FrameDecoder::new(input), limit),
        Compression::Zstd => {
            let decoder = zstd::Decoder::with_buffer(input).map_err(fail)?;
            read_limited(codec, decoder, limit)
        }
    }
}

/// Reads `reader` to the end, failing once more than `limit` bytes come out.
fn read_limited(codec: Compression, reader: impl Read, limit: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|source| Error::Compression { codec, source })?;
    if out.len() > limit {
        return Err(Error::DecompressedTooLarge { codec, limit });
    }
    Ok(out)
}

/// Builds the error a codec reports for malformed input it detected itself.
fn invalid_data(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        // Compressible but not trivial, and longer than one xerial block and one LZ4 block.
        (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    fn compressed(codec: Compression, input: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        compress(codec, input, &mut out).unwrap();
        out.to_vec()
    }

    #[test]
    fn every_codec_round_trips() {
        let input = sample();
        for codec in Compression::ALL {
            let packed = compressed(codec, &input);
            if codec != Compression::None {
                assert!(packed.len() < input.len(), "{codec} did not compress");
            }
            assert_eq!(
                decompress(codec, &packed, input.len()).unwrap(),
                input,
                "{codec}"
            );
        }
    }

    #[test]
    fn every_codec_enforces_the_limit() {
        let input = sample();
        for codec in Compression::ALL {
            let packed = compressed(codec, &input);
            let err = decompress(codec, &packed, input.len() - 1).unwrap_err();
            assert!(
                matches!(err, Error::DecompressedTooLarge { .. }),
                "{codec}: {err:?}"
            );
        }
    }

    #[test]
    fn garbage_is_a_compression_error() {
        let garbage = [0x42u8; 40];
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let err = decompress(codec, &garbage, 1 << 20).unwrap_err();
            assert!(
                matches!(err, Error::Compression { codec: c, .. } if c == codec),
                "{err:?}"
            );
        }
    }

    #[test]
    fn lz4_frame_header_is_what_kafka_writes() {
        let packed = compressed(Compression::Lz4, b"hello hello hello");
        // Magic, then FLG = version 01 | block independence, BD = 64 KiB blocks.
        assert_eq!(&packed[..4], &[0x04, 0x22, 0x4d, 0x18]);
        assert_eq!(packed[4], 0x60);
        assert_eq!(packed[5], 0x40);
        // HC: second byte of xxHash32 (seed 0) over the descriptor (FLG, BD).
        assert_eq!(packed[6], 0x82);
        // Ends with the end mark and no content checksum.
        assert_eq!(&packed[packed.len() - 4..], &[0, 0, 0, 0]);
    }

    #[test]
    fn gzip_reads_concatenated_members() {
        let mut joined = compressed(Compression::Gzip, b"abc");
        joined.extend(compressed(Compression::Gzip, b"def"));
        assert_eq!(
            decompress(Compression::Gzip, &joined, 100).unwrap(),
            b"abcdef"
        );
    }

    #[test]
    fn names_parse_and_print() {
        for codec in Compression::ALL {
            assert_eq!(codec.name().parse::<Compression>().unwrap(), codec);
            assert_eq!(codec.to_string(), codec.name());
            assert_eq!(Compression::from_code(codec.code()).unwrap(), codec);
        }
        assert!(matches!(
            "brotli".parse::<Compression>(),
            Err(Error::UnknownCompressionName { .. })
        ));
    }

    #[test]
    fn codes_five_to_seven_are_unknown() {
        for code in 5..=7u8 {
            let result = Compression::from_code(code);
            assert!(matches!(result, Err(Error::UnknownCompression { code: c }) if c == code));
        }
        // Only the low three bits count.
        assert_eq!(
            Compression::from_attributes(0x7f_f8 | 4).unwrap(),
            Compression::Zstd
        );
    }
}
