//! Human-unit newtypes for config files: [`ByteSize`] (`"64MiB"`) and [`HumanDuration`]
//! (`"30s"`).
//!
//! Both deserialize from an integer (bytes / milliseconds) or a string with a unit, and
//! serialize back to the shortest exact string, so a rendered config reloads to the same value.
//! Only whole numbers are accepted: `"1.5GiB"` is rejected rather than rounded.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::UnitError;

/// A number of bytes, written in config as `"64MiB"`, `"512KB"`, `"100B"` or an integer.
///
/// Units are case-insensitive: `B`; decimal `KB MB GB TB PB EB` (powers of 1000); binary
/// `KiB MiB GiB TiB PiB EiB` (powers of 1024). A bare number is bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

const BYTE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("PB", 1_000_000_000_000_000),
    ("EB", 1_000_000_000_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("PiB", 1 << 50),
    ("EiB", 1 << 60),
];
const BYTE_UNITS_EXPECTED: &str = "B, KB, MB, GB, TB, PB, EB, KiB, MiB, GiB, TiB, PiB, EiB";

impl ByteSize {
    /// `n` bytes.
    pub const fn b(n: u64) -> Self {
        Self(n)
    }

    /// `n` KiB; saturates at `u64::MAX` (meant for compile-time defaults).
    pub const fn kib(n: u64) -> Self {
        Self(n.saturating_mul(1 << 10))
    }

    /// `n` MiB; saturates at `u64::MAX`.
    pub const fn mib(n: u64) -> Self {
        Self(n.saturating_mul(1 << 20))
    }

    /// `n` GiB; saturates at `u64::MAX`.
    pub const fn gib(n: u64) -> Self {
        Self(n.saturating_mul(1 << 30))
    }

    /// The number of bytes.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (n, unit, rest) = split_number(s, s)?;
        if !rest.is_empty() {
            return Err(UnitError::InvalidNumber { input: s.into() });
        }
        let factor = if unit.is_empty() {
            1
        } else {
            BYTE_UNITS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(unit))
                .map(|&(_, f)| f)
                .ok_or_else(|| UnitError::UnknownUnit {
                    unit: unit.into(),
                    input: s.into(),
                    expected: BYTE_UNITS_EXPECTED,
                })?
        };
        n.checked_mul(factor)
            .map(Self)
            .ok_or_else(|| UnitError::Overflow { input: s.into() })
    }
}

impl fmt::Display for ByteSize {
    /// The exact value in the unit that gives the smallest number (`1024` → `1KiB`,
    /// `1000` → `1KB`, `1500` → `1500B`, `512000` → `500KiB`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, unit) = BYTE_UNITS
            .iter()
            .filter(|(_, factor)| self.0.is_multiple_of(*factor))
            .map(|&(unit, factor)| (self.0 / factor, unit))
            .min_by_key(|&(n, _)| n)
            .unwrap_or((self.0, "B"));
        write!(f, "{n}{unit}")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnitVisitor::<Self>::new(
            "a byte size like \"64MiB\" or an integer",
        ))
    }
}

/// A duration, written in config as `"30s"`, `"500ms"`, `"1h30m"` or an integer (milliseconds).
///
/// Units are case-insensitive: `ns us ms s m h d` (`d` = 24h). Components may be chained
/// (`"1h30m"`, `"1m 30s"`). A bare number is milliseconds, matching the integer form.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

const NANOS_PER_SEC: u128 = 1_000_000_000;
const DURATION_UNITS: &[(&str, u128)] = &[
    ("d", 86_400 * NANOS_PER_SEC),
    ("h", 3_600 * NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("s", NANOS_PER_SEC),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];
const DURATION_UNITS_EXPECTED: &str = "ns, us, ms, s, m, h, d";

impl HumanDuration {
    /// `n` milliseconds.
    pub const fn from_millis(n: u64) -> Self {
        Self(Duration::from_millis(n))
    }

    /// `n` seconds.
    pub const fn from_secs(n: u64) -> Self {
        Self(Duration::from_secs(n))
    }

    /// The wrapped duration.
    pub const fn as_duration(self) -> Duration {
        self.0
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Self {
        d.0
    }
}

impl FromStr for HumanDuration {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let overflow = || UnitError::Overflow { input: s.into() };
        let (mut n, mut unit, mut rest) = split_number(s, s)?;
        if unit.is_empty() && rest.is_empty() {
            return Ok(Self(Duration::from_millis(n)));
        }
        let mut total: u128 = 0;
        loop {
            if unit.is_empty() {
                // Only a lone number may omit its unit; `"1h5"` is ambiguous.
                return Err(UnitError::InvalidNumber { input: s.into() });
            }
            let factor = DURATION_UNITS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(unit))
                .map(|&(_, f)| f)
                .ok_or_else(|| UnitError::UnknownUnit {
                    unit: unit.into(),
                    input: s.into(),
                    expected: DURATION_UNITS_EXPECTED,
                })?;
            // u64 * (86_400 * 1e9) < 2^64 * 2^47, far inside u128; only the sum can overflow.
            total = total
                .checked_add(u128::from(n) * factor)
                .ok_or_else(overflow)?;
            if rest.is_empty() {
                break;
            }
            (n, unit, rest) = split_number(rest, s)?;
        }
        let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| overflow())?;
        let nanos = u32::try_from(total % NANOS_PER_SEC).map_err(|_| overflow())?;
        Ok(Self(Duration::new(secs, nanos)))
    }
}

impl fmt::Display for HumanDuration {
    /// The exact value in the largest unit that divides it (`90s` → `90s`, `3600s` → `1h`).
    /// A value whose count would not fit a `u64` (so could not be parsed back) is written as
    /// seconds plus the sub-second rest, e.g. `"18446744073709551615s999999999ns"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        let (unit, factor) = DURATION_UNITS
            .iter()
            .find(|(_, factor)| nanos.is_multiple_of(*factor))
            .copied()
            .unwrap_or(("ns", 1));
        match u64::try_from(nanos / factor) {
            Ok(n) => write!(f, "{n}{unit}"),
            Err(_) => {
                let subsec = Self(Duration::from_nanos(u64::from(self.0.subsec_nanos())));
                write!(f, "{}s{subsec}", self.0.as_secs())
            }
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnitVisitor::<Self>::new(
            "a duration like \"30s\" or an integer of milliseconds",
        ))
    }
}

/// Builds a unit type from the integer config form.
trait FromInteger: FromStr<Err = UnitError> {
    fn from_integer(n: u64) -> Self;
}

impl FromInteger for ByteSize {
    fn from_integer(n: u64) -> Self {
        Self(n)
    }
}

impl FromInteger for HumanDuration {
    fn from_integer(n: u64) -> Self {
        Self::from_millis(n)
    }
}

/// Shared serde visitor: integers via [`FromInteger`], strings via `FromStr`.
struct UnitVisitor<T> {
    expecting: &'static str,
    _marker: std::marker::PhantomData<T>,
}

impl<T> UnitVisitor<T> {
    fn new(expecting: &'static str) -> Self {
        Self {
            expecting,
            _marker: std::marker::PhantomData,
        }
    }
}

impl<T: FromInteger> Visitor<'_> for UnitVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
        Ok(T::from_integer(n))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
        u64::try_from(n).map(T::from_integer).map_err(|_| {
            E::custom(UnitError::Negative {
                input: n.to_string(),
            })
        })
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        s.parse().map_err(E::custom)
    }
}

/// Splits `"64 MiB rest"` into `(64, "MiB", "rest")`: a whole number, the alphabetic unit
/// after it (may be empty) and the trimmed remainder. `input` is the full text, for errors.
fn split_number<'a>(s: &'a str, input: &str) -> Result<(u64, &'a str, &'a str), UnitError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(UnitError::Empty);
    }
    if s.starts_with('-') {
        return Err(UnitError::Negative {
            input: input.into(),
        });
    }
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, after) = s.split_at(digits_end);
    if digits.is_empty() || after.starts_with('.') {
        return Err(UnitError::InvalidNumber {
            input: input.into(),
        });
    }
    // All ASCII digits, so the only possible failure is overflow.
    let n: u64 = digits.parse().map_err(|_| UnitError::Overflow {
        input: input.into(),
    })?;
    let after = after.trim_start();
    let unit_end = after
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(after.len());
    let (unit, rest) = after.split_at(unit_end);
    Ok((n, unit, rest.trim_start()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_size_parse_table() {
        let ok: &[(&str, u64)] = &[
            ("0", 0),
            ("100", 100),
            ("100B", 100),
            ("100b", 100),
            ("512KB", 512_000),
            ("512kb", 512_000),
            ("4KiB", 4096),
            ("64MiB", 64 << 20),
            ("64 MiB", 64 << 20),
            ("  1GiB ", 1 << 30),
            ("1gib", 1 << 30),
            ("2TB", 2_000_000_000_000),
            ("1TiB", 1 << 40),
            ("15EiB", 15 << 60),
            ("18446744073709551615", u64::MAX),
        ];
        for &(input, want) in ok {
            assert_eq!(input.parse::<ByteSize>(), Ok(ByteSize(want)), "{input}");
        }
    }

    #[test]
    fn byte_size_parse_errors() {
        let cases: &[(&str, UnitError)] = &[
            ("", UnitError::Empty),
            ("   ", UnitError::Empty),
            (
                "-1MiB",
                UnitError::Negative {
                    input: "-1MiB".into(),
                },
            ),
            (
                "MiB",
                UnitError::InvalidNumber {
                    input: "MiB".into(),
                },
            ),
            (
                "1.5GiB",
                UnitError::InvalidNumber {
                    input: "1.5GiB".into(),
                },
            ),
            (
                "1MiB 2KiB",
                UnitError::InvalidNumber {
                    input: "1MiB 2KiB".into(),
                },
            ),
            (
                "16EiB",
                UnitError::Overflow {
                    input: "16EiB".into(),
                },
            ),
            (
                "18446744073709551616",
                UnitError::Overflow {
                    input: "18446744073709551616".into(),
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&input.parse::<ByteSize>().unwrap_err(), want, "{input}");
        }
        let err = "5XB".parse::<ByteSize>().unwrap_err();
        assert!(matches!(err, UnitError::UnknownUnit { ref unit, .. } if unit == "XB"));
        assert!(err.to_string().contains("MiB"), "{err}");
    }

    #[test]
    fn byte_size_display_is_shortest_exact() {
        let cases: &[(u64, &str)] = &[
            (0, "0B"),
            (1, "1B"),
            (1000, "1KB"),
            (1024, "1KiB"),
            (1500, "1500B"),
            (1536, "1536B"),
            (512_000, "500KiB"),
            (2_000, "2KB"),
            (1_000_000, "1MB"),
            (64 << 20, "64MiB"),
            (1 << 30, "1GiB"),
            (1_000_000_000, "1GB"),
            (u64::MAX, "18446744073709551615B"),
        ];
        for &(n, want) in cases {
            assert_eq!(ByteSize(n).to_string(), want, "{n}");
            assert_eq!(
                want.parse::<ByteSize>(),
                Ok(ByteSize(n)),
                "round trip {want}"
            );
        }
    }
    #[test]
    fn duration_parse_table() {
        let ok: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("500", Duration::from_millis(500)),
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("30S", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
            ("2d", Duration::from_secs(2 * 86_400)),
            ("250us", Duration::from_micros(250)),
            ("7ns", Duration::from_nanos(7)),
            ("1h30m", Duration::from_secs(5400)),
            ("1m 30s", Duration::from_secs(90)),
            ("1s500ms", Duration::from_millis(1500)),
            (" 10 s ", Duration::from_secs(10)),
        ];
        for &(input, want) in ok {
            assert_eq!(
                input.parse::<HumanDuration>(),
                Ok(HumanDuration(want)),
                "{input}"
            );
        }
    }

    #[test]
    fn duration_parse_errors() {
        let cases: &[(&str, UnitError)] = &[
            ("", UnitError::Empty),
            (
                "-5s",
                UnitError::Negative {
                    input: "-5s".into(),
                },
            ),
            ("s", UnitError::InvalidNumber { input: "s".into() }),
            (
                "1.5s",
                UnitError::InvalidNumber {
                    input: "1.5s".into(),
                },
            ),
            (
                "1h-5m",
                UnitError::Negative {
                    input: "1h-5m".into(),
                },
            ),
            (
                "99999999999999999999s",
                UnitError::Overflow {
                    input: "99999999999999999999s".into(),
                },
            ),
            // Just over 2^64 seconds, which `Duration` cannot hold.
            (
                "213503982334602d",
                UnitError::Overflow {
                    input: "213503982334602d".into(),
                },
            ),
            (
                "1h5",
                UnitError::InvalidNumber {
                    input: "1h5".into(),
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                &input.parse::<HumanDuration>().unwrap_err(),
                want,
                "{input}"
            );
        }
        for bad in ["5y", "5 parsecs", "1h5x"] {
            let err = bad.parse::<HumanDuration>().unwrap_err();
            assert!(
                matches!(err, UnitError::UnknownUnit { .. }),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn duration_display_uses_largest_exact_unit() {
        let cases: &[(Duration, &str)] = &[
            (Duration::ZERO, "0s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(2 * 86_400), "2d"),
            (Duration::from_nanos(1_001), "1001ns"),
            (Duration::MAX, "18446744073709551615s999999999ns"),
        ];
        for &(d, want) in cases {
            assert_eq!(HumanDuration(d).to_string(), want, "{d:?}");
            assert_eq!(
                want.parse::<HumanDuration>(),
                Ok(HumanDuration(d)),
                "round trip {want}"
            );
        }
    }

    #[derive(Debug, PartialEq, Deserialize, Serialize)]
    struct Units {
        size: ByteSize,
        timeout: HumanDuration,
    }

    #[test]
    fn serde_accepts_integers_and_strings() {
        let from_ints: Units = toml::from_str("size = 4096\ntimeout = 1500").unwrap();
        assert_eq!(from_ints.size, ByteSize::kib(4));
        assert_eq!(from_ints.timeout, HumanDuration::from_millis(1500));
        let from_strs: Units = toml::from_str("size = \"64MiB\"\ntimeout = \"30s\"").unwrap();
        assert_eq!(from_strs.size, ByteSize::mib(64));
        assert_eq!(from_strs.timeout, HumanDuration::from_secs(30));
    }

    #[test]
    fn serde_rejects_negative_floats_and_bad_units() {
        for (doc, needle) in [
            ("size = -1\ntimeout = 1", "negative"),
            ("size = 1\ntimeout = -1", "negative"),
            ("size = 1.5\ntimeout = 1", "byte size"),
            ("size = 1\ntimeout = true", "duration"),
            ("size = \"5XB\"\ntimeout = 1", "unknown unit `XB`"),
            ("size = \"16EiB\"\ntimeout = 1", "too large"),
        ] {
            let err = toml::from_str::<Units>(doc).unwrap_err().to_string();
            assert!(err.contains(needle), "{doc:?}: {err}");
        }
    }

    #[test]
    fn serde_serializes_human_strings() {
        let u = Units {
            size: ByteSize::mib(64),
            timeout: HumanDuration::from_secs(30),
        };
        let text = toml::to_string(&u).unwrap();
        assert_eq!(text, "size = \"64MiB\"\ntimeout = \"30s\"\n");
        assert_eq!(toml::from_str::<Units>(&text).unwrap(), u);
    }

    #[test]
    fn constructors_saturate() {
        assert_eq!(ByteSize::gib(u64::MAX), ByteSize(u64::MAX));
        assert_eq!(ByteSize::b(3).as_u64(), 3);
        assert_eq!(
            Duration::from(HumanDuration::from_secs(2)),
            Duration::from_secs(2)
        );
    }
}
