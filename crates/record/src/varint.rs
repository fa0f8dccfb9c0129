//! Zig-zag varints as used inside records (protobuf `sint32` / `sint64`).
//!
//! A value is zig-zag mapped to an unsigned integer (0, -1, 1, -2, ... become 0, 1, 2, 3, ...)
//! and written 7 bits at a time, least significant group first, with the high bit of each byte
//! saying another byte follows. Decoding is strict: an `i32` takes at most 5 bytes and an `i64`
//! at most 10, and bits that would not fit the type are rejected rather than dropped.

use bytes::BufMut;

use crate::{Error, Result};

/// The most bytes a zig-zag `i32` takes.
pub(crate) const MAX_VARINT_LEN: usize = 5;
/// The most bytes a zig-zag `i64` takes.
pub(crate) const MAX_VARLONG_LEN: usize = 10;

const fn zigzag32(value: i32) -> u32 {
    ((value << 1) ^ (value >> 31)) as u32
}

const fn zigzag64(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

const fn unzigzag32(raw: u32) -> i32 {
    ((raw >> 1) as i32) ^ -((raw & 1) as i32)
}

const fn unzigzag64(raw: u64) -> i64 {
    ((raw >> 1) as i64) ^ -((raw & 1) as i64)
}

const fn unsigned_len(mut raw: u64) -> usize {
    let mut len = 1;
    while raw >= 0x80 {
        raw >>= 7;
        len += 1;
    }
    len
}

/// The encoded size of `value` as a zig-zag varint.
pub(crate) const fn varint_len(value: i32) -> usize {
    unsigned_len(zigzag32(value) as u64)
}

/// The encoded size of `value` as a zig-zag varlong.
pub(crate) const fn varlong_len(value: i64) -> usize {
    unsigned_len(zigzag64(value))
}

fn put_unsigned(out: &mut impl BufMut, mut raw: u64) {
    while raw >= 0x80 {
        out.put_u8((raw as u8 & 0x7f) | 0x80);
        raw >>= 7;
    }
    out.put_u8(raw as u8);
}

/// Appends `value` as a zig-zag varint.
pub(crate) fn put_varint(out: &mut impl BufMut, value: i32) {
    put_unsigned(out, u64::from(zigzag32(value)));
}

/// Appends `value` as a zig-zag varlong.
pub(crate) fn put_varlong(out: &mut impl BufMut, value: i64) {
    put_unsigned(out, zigzag64(value));
}

/// Reads an unsigned base-128 integer of at most `max_len` bytes whose value must fit in
/// `bits` bits, starting at `*pos`; advances `*pos` past it.
fn read_unsigned(buf: &[u8], pos: &mut usize, max_len: usize, bits: u32) -> Result<u64> {
    let start = *pos;
    let invalid = || Error::InvalidVarint { position: start };
    let mut raw: u64 = 0;
    for i in 0..max_len {
        let byte = *buf.get(start + i).ok_or_else(invalid)?;
        let group = u64::from(byte & 0x7f);
        let shift = 7 * i as u32;
        // The last permitted byte may only carry the bits that are left in the type.
        if shift + 7 > bits && group >> (bits - shift) != 0 {
            return Err(invalid());
        }
        raw |= group << shift;
        if byte & 0x80 == 0 {
            *pos = start + i + 1;
            return Ok(raw);
        }
    }
    Err(invalid())
}

/// Reads a zig-zag varint at `*pos`, advancing `*pos` past it.
pub(crate) fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32> {
    let raw = read_unsigned(buf, pos, MAX_VARINT_LEN, 32)?;
    // read_unsigned rejected every bit above 32.
    Ok(unzigzag32(raw as u32))
}

/// Reads a zig-zag varlong at `*pos`, advancing `*pos` past it.
pub(crate) fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64> {
    let raw = read_unsigned(buf, pos, MAX_VARLONG_LEN, 64)?;
    Ok(unzigzag64(raw))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn encode32(value: i32) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, value);
        out
    }

    fn encode64(value: i64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varlong(&mut out, value);
        out
    }

    #[test]
    fn known_encodings_match_protobuf_sint() {
        assert_eq!(encode32(0), [0x00]);
        assert_eq!(encode32(-1), [0x01]);
        assert_eq!(encode32(1), [0x02]);
        assert_eq!(encode32(-64), [0x7f]);
        assert_eq!(encode32(64), [0x80, 0x01]);
        assert_eq!(encode32(i32::MAX), [0xfe, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(encode32(i32::MIN), [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(encode64(i64::MIN).len(), MAX_VARLONG_LEN);
        assert_eq!(*encode64(i64::MIN).last().unwrap(), 0x01);
    }

    #[test]
    fn overlong_and_overflowing_varints_are_rejected() {
        let mut pos = 0;
        // Six bytes for an i32.
        let err = read_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00], &mut pos).unwrap_err();
        assert!(matches!(err, Error::InvalidVarint { position: 0 }));
        // Fifth byte with bits beyond 32.
        assert!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f], &mut pos).is_err());
        // Tenth byte with bits beyond 64.
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert!(read_varlong(&too_big, &mut pos).is_err());
        // Runs off the end of the buffer.
        assert!(read_varint(&[0x80], &mut pos).is_err());
        assert!(read_varlong(&[], &mut pos).is_err());
        assert_eq!(pos, 0, "a failed read must not advance");
    }

    #[test]
    fn position_reports_where_the_bad_varint_starts() {
        let mut pos = 2;
        let err = read_varint(&[0x00, 0x00, 0x80], &mut pos).unwrap_err();
        assert!(matches!(err, Error::InvalidVarint { position: 2 }));
    }

    proptest! {
        #[test]
        fn varint_round_trips(value: i32) {
            let bytes = encode32(value);
            prop_assert_eq!(bytes.len(), varint_len(value));
            let mut pos = 0;
            prop_assert_eq!(read_varint(&bytes, &mut pos).unwrap(), value);
            prop_assert_eq!(pos, bytes.len());
        }

        #[test]
        fn varlong_round_trips(value: i64) {
            let bytes = encode64(value);
            prop_assert_eq!(bytes.len(), varlong_len(value));
            let mut pos = 0;
            prop_assert_eq!(read_varlong(&bytes, &mut pos).unwrap(), value);
            prop_assert_eq!(pos, bytes.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes: Vec<u8>) {
            let mut pos = 0;
            let _ = read_varint(&bytes, &mut pos);
            let mut pos = 0;
            let _ = read_varlong(&bytes, &mut pos);
        }
    }
}
