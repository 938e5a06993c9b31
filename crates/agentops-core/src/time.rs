//! Wall-clock time as microseconds since the Unix epoch, and the civil-date
//! arithmetic agentops needs (ids, front matter) without a calendar library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch; negative before 1970 (clock set badly).
pub fn now_micros() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

/// A UTC calendar date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Civil {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// Converts microseconds since the epoch to a UTC civil time.
pub fn civil_from_micros(us: i64) -> Civil {
    let secs = us.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if m <= 2 { y + 1 } else { y };
    Civil {
        year: i32::try_from(year).unwrap_or(i32::MAX),
        month: m as u32,
        day: d as u32,
        hour: (sod / 3600) as u32,
        minute: ((sod % 3600) / 60) as u32,
        second: (sod % 60) as u32,
    }
}

/// Converts a UTC civil time to microseconds since the epoch.
pub fn micros_from_civil(c: Civil) -> i64 {
    let y = i64::from(c.year) - i64::from(c.month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(c.month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(c.day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs =
        days * 86_400 + i64::from(c.hour) * 3600 + i64::from(c.minute) * 60 + i64::from(c.second);
    secs * 1_000_000
}

/// Serializes a time in µs as RFC 3339 (`serde(serialize_with)`): the one
/// form times take in agentops's JSON.
pub fn serialize_us<S: serde::Serializer>(us: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*us))
}

/// [`serialize_us`] for an optional time (`null` when absent).
pub fn serialize_opt_us<S: serde::Serializer>(us: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match us {
        Some(v) => s.serialize_str(&rfc3339(*v)),
        None => s.serialize_none(),
    }
}

/// Serializes a time in seconds as RFC 3339.
pub fn serialize_secs<S: serde::Serializer>(secs: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(secs.saturating_mul(1_000_000)))
}

/// RFC 3339 in UTC with second precision, e.g. `2026-11-21T20:12:58Z`.
pub fn rfc3339(us: i64) -> String {
    let c = civil_from_micros(us);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SSZ` (or with a space, fractional
/// seconds, or a `+HH:MM` offset) into microseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = num(5..7)?;
    let day = num(8..10)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut c = Civil {
        year,
        month,
        day,
        hour: 0,
        minute: 0,
        second: 0,
    };
    let mut offset_secs: i64 = 0;
    if b.len() > 10 {
        if !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') || b.len() < 19 {
            return None;
        }
        c.hour = num(11..13)?;
        c.minute = num(14..16)?;
        c.second = num(17..19)?;
        if c.hour > 23 || c.minute > 59 || c.second > 60 {
            return None;
        }
        let mut rest = &s[19..];
        if let Some(frac) = rest.strip_prefix('.') {
            let n = frac.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return None;
            }
            rest = &frac[n..];
        }
        match rest {
            "" | "Z" | "z" => {}
            _ => {
                let sign = match rest.as_bytes().first() {
                    Some(b'+') => 1,
                    Some(b'-') => -1,
                    _ => return None,
                };
                let hh: i64 = rest.get(1..3)?.parse().ok()?;
                let mm: i64 = rest.get(4..6)?.parse().ok()?;
                if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                    return None;
                }
                offset_secs = sign * (hh * 3600 + mm * 60);
            }
        }
    }
    Some(micros_from_civil(c) - offset_secs * 1_000_000)
}

/// Parses a relative age such as `7d`, `12h`, `30m`, `2w` into microseconds.
pub fn parse_age(s: &str) -> Option<i64> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = n.parse().ok()?;
    let mult: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(mult)?.checked_mul(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_291_978_000_000), "2026-11-21T20:12:58Z");
        assert_eq!(
            parse_rfc3339("2026-11-21T20:12:58Z"),
            Some(1_795_291_978_000_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-21T21:12:58.123+01:00"),
            Some(1_795_291_978_000_000)
        );
        assert_eq!(parse_rfc3339("2026-11-21"), Some(1_795_219_200_000_000));
        assert_eq!(parse_rfc3339("2026-13-01"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_age("7d"), Some(7 * 86_400 * 1_000_000));
        assert_eq!(parse_age("7x"), None);
    }

    proptest! {
        #[test]
        fn civil_round_trips(secs in -10_000_000_000i64..10_000_000_000i64) {
            let us = secs * 1_000_000;
            prop_assert_eq!(micros_from_civil(civil_from_micros(us)), us);
            prop_assert_eq!(parse_rfc3339(&rfc3339(us)), Some(us));
        }

        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = parse_rfc3339(&s);
            let _ = parse_age(&s);
        }
    }
}
