//! Typed identifiers. Run and span ids are ULIDs: 48 bits of milliseconds and
//! 80 random bits in Crockford base32, so they sort by creation time as text.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Lowercase hex of `bytes` (digests, trace and span ids).
pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(H[usize::from(b >> 4)]));
        s.push(char::from(H[usize::from(b & 15)]));
    }
    s
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} is empty")]
    Empty { kind: &'static str },
    #[error("{kind} `{value}` is longer than {max} characters")]
    TooLong {
        kind: &'static str,
        value: String,
        max: usize,
    },
    #[error("{kind} `{value}` contains `{ch}`; allowed are letters, digits and {allowed}")]
    BadChar {
        kind: &'static str,
        value: String,
        ch: char,
        allowed: &'static str,
    },
    #[error("{kind} `{value}` must not start with `.` or `-`")]
    BadStart { kind: &'static str, value: String },
}

/// A 128-bit ULID value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ulid(u128);

static LAST: Mutex<u128> = Mutex::new(0);

impl Ulid {
    /// A new ULID, strictly greater than any other made by this process.
    pub fn generate() -> Self {
        let ms = u128::from(crate::time::now_micros().max(0).unsigned_abs() / 1000);
        let mut rnd = [0u8; 10];
        // getrandom only fails on platforms without an entropy source; fall back
        // to time-derived bits there, since uniqueness within the process is kept
        // by the monotonic step below anyway.
        if getrandom::fill(&mut rnd).is_err() {
            let t = crate::time::now_micros().unsigned_abs().to_le_bytes();
            rnd[..8].copy_from_slice(&t);
        }
        let mut r: u128 = 0;
        for b in rnd {
            r = (r << 8) | u128::from(b);
        }
        let mut value = (ms << 80) | r;
        if let Ok(mut last) = LAST.lock() {
            if value <= *last {
                value = *last + 1;
            }
            *last = value;
        }
        Self(value)
    }

    /// The millisecond timestamp part.
    pub fn millis(self) -> u64 {
        (self.0 >> 80) as u64
    }

    /// Parses 26 Crockford base32 characters (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 26 {
            return None;
        }
        let mut v: u128 = 0;
        for (i, c) in s.bytes().enumerate() {
            let d = decode_crockford(c)?;
            if i == 0 && d > 7 {
                return None;
            }
            v = (v << 5) | u128::from(d);
        }
        Some(Self(v))
    }
}

fn decode_crockford(c: u8) -> Option<u8> {
    let c = c.to_ascii_uppercase();
    match c {
        b'O' => Some(0),
        b'I' | b'L' => Some(1),
        _ => CROCKFORD.iter().position(|&x| x == c).map(|p| p as u8),
    }
}

impl fmt::Display for Ulid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 26];
        let mut v = self.0;
        for slot in out.iter_mut().rev() {
            *slot = CROCKFORD[(v & 31) as usize];
            v >>= 5;
        }
        // Every byte comes from CROCKFORD, which is ASCII.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

fn check_token(
    kind: &'static str,
    s: &str,
    max: usize,
    extra: &[char],
    allowed: &'static str,
) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.len() > max {
        return Err(IdError::TooLong {
            kind,
            value: s.to_owned(),
            max,
        });
    }
    if let Some(ch) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || extra.contains(c)))
    {
        return Err(IdError::BadChar {
            kind,
            value: s.to_owned(),
            ch,
            allowed,
        });
    }
    if s.starts_with('.') || s.starts_with('-') {
        return Err(IdError::BadStart {
            kind,
            value: s.to_owned(),
        });
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr, $extra:expr, $allowed:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an id given from outside.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check_token($kind, s, $max, $extra, $allowed)?;
                Ok(Self(s.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                check_token($kind, &s, $max, $extra, $allowed)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

string_id!(
    /// A run of a workflow (a ULID), or a harness session (the harness's own
    /// session id, such as a Claude Code UUID). Safe to use in paths and refs.
    RunId, "run id", 128, &['-', '_', '.'], "`-`, `_`, `.`"
);

string_id!(
    /// A span within a run: a ULID, so spans sort by start time.
    SpanId, "span id", 64, &['-', '_'], "`-`, `_`"
);

string_id!(
    /// A knowledge entry: `<type>-<yyyymmdd>-<slug>` for entries agentops writes,
    /// or the file stem of a hand-written one. Never contains a path separator.
    EntryId, "entry id", 200, &['-', '_', '.'], "`-`, `_`, `.`"
);

impl RunId {
    /// A fresh run id (a ULID).
    pub fn generate() -> Self {
        Self(Ulid::generate().to_string())
    }
}

impl SpanId {
    /// A fresh span id (a ULID).
    pub fn generate() -> Self {
        Self(Ulid::generate().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn ulids_sort_by_creation_and_round_trip() {
        let ids: Vec<Ulid> = (0..1000).map(|_| Ulid::generate()).collect();
        for w in ids.windows(2) {
            assert!(w[0] < w[1]);
            assert!(w[0].to_string() < w[1].to_string());
        }
        for id in &ids {
            assert_eq!(Ulid::parse(&id.to_string()), Some(*id));
        }
        assert_eq!(ids[0].to_string().len(), 26);
    }

    #[test]
    fn ulid_parse_rejects_garbage() {
        assert_eq!(Ulid::parse(""), None);
        assert_eq!(Ulid::parse("8ZZZZZZZZZZZZZZZZZZZZZZZZZ"), None);
        assert_eq!(Ulid::parse("01ARZ3NDEKTSV4RRFFQ69G5FA!"), None);
        assert!(Ulid::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV").is_some());
    }

    #[test]
    fn run_ids_accept_session_uuids_and_refuse_paths() {
        assert!(RunId::parse("3f0c1a9e-2b7d-4c55-9a51-7d0c9e1b2a44").is_ok());
        assert_eq!(
            RunId::parse("../etc").unwrap_err().to_string(),
            "run id `../etc` contains `/`; allowed are letters, digits and `-`, `_`, `.`"
        );
        assert!(matches!(RunId::parse(""), Err(IdError::Empty { .. })));
        assert!(matches!(
            RunId::parse(".hidden"),
            Err(IdError::BadStart { .. })
        ));
        assert!(EntryId::parse("learning-20261121-foo").is_ok());
        assert!(EntryId::parse("a/b").is_err());
    }

    #[test]
    fn ids_deserialize_with_validation() {
        let ok: RunId = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(ok.as_str(), "abc");
        assert!(serde_json::from_str::<RunId>("\"a b\"").is_err());
    }
}
