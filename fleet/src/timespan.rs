//! Time spans as people write them on a command line or in a TOML file, one syntax for every
//! duration of `fleet` and `loadgen`: a bare number is seconds (`15`, `0.5`), otherwise numbers
//! with units from hours down to milliseconds (`500ms`, `2s`, `1m30s`, `1h`). One parser, so a
//! span that works for one flag works for all of them.

use std::time::Duration;

/// The forms every error lists, so the person who typed a span sees what would have worked.
pub const ACCEPTED_FORMS: &str =
    "seconds (15, 0.5) or numbers with units h, m, s, ms (500ms, 2s, 1m30s, 1h)";

/// The longest span accepted: a day. Longer ones are typing mistakes, not measurements.
pub const MAX_SPAN: Duration = Duration::from_secs(86_400);

/// Why a text is not a time span; each message says which forms are accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpanError {
    #[error("`{text}` is not a time span: write {ACCEPTED_FORMS}")]
    Malformed { text: String },
    #[error("`{text}` is out of range (0 to 24h)")]
    OutOfRange { text: String },
    #[error("`{text}` must be positive, more than 0 (write {ACCEPTED_FORMS})")]
    Zero { text: String },
}

/// Units in the order they must appear, each at most once, with their length in seconds.
const UNITS: [(&str, f64); 4] = [("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 0.001)];

/// Parses a time span: a bare number of seconds (`15`, `0.5`) or numbers with units in
/// descending order (`1h`, `1m30s`, `2s`, `500ms`, `1.5s`), from 0 to [`MAX_SPAN`].
pub fn parse(text: &str) -> Result<Duration, SpanError> {
    let t = text.trim();
    let malformed = || SpanError::Malformed { text: text.into() };
    let seconds = if is_plain_number(t) {
        t.parse::<f64>().map_err(|_| malformed())?
    } else {
        with_units(t).ok_or_else(malformed)?
    };
    if !(0.0..=MAX_SPAN.as_secs_f64()).contains(&seconds) {
        return Err(SpanError::OutOfRange { text: text.into() });
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// [`parse`], refusing a zero span: for lengths of time something must last.
pub fn parse_positive(text: &str) -> Result<Duration, SpanError> {
    match parse(text)? {
        d if d.is_zero() => Err(SpanError::Zero { text: text.into() }),
        d => Ok(d),
    }
}

/// Digits with at most one `.` and at least one digit (no sign, exponent, `inf` or `NaN`,
/// which `f64::from_str` would take).
fn is_plain_number(t: &str) -> bool {
    t.bytes().any(|b| b.is_ascii_digit())
        && t.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && t.bytes().filter(|b| *b == b'.').count() <= 1
}

/// Seconds in `1h30m`, `2m30s`, `500ms`: numbers each followed by a unit, units descending.
fn with_units(t: &str) -> Option<f64> {
    let mut rest = t;
    let mut next_unit = 0;
    let mut total = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        if !is_plain_number(number) {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        let letters = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(letters);
        let at = UNITS[next_unit..].iter().position(|(u, _)| *u == unit)? + next_unit;
        total += value * UNITS[at].1;
        next_unit = at + 1;
        rest = after;
    }
    (next_unit > 0).then_some(total)
}

/// Durations in TOML and JSON as whole milliseconds (`interval = 1000`), the unit people tune
/// them in, or as a string in the syntax of every duration flag (`interval = "1s"`). The one serde helper for millisecond durations in the crate (`crate::timespan::millis`).
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    /// A whole number of milliseconds (`2000`), or a time span in the syntax every flag
    /// takes (`"2s"`, `"500ms"`; a bare number in a string is seconds).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Millis {
            Number(u64),
            Span(String),
        }
        match Millis::deserialize(d)? {
            Millis::Number(ms) => Ok(Duration::from_millis(ms)),
            Millis::Span(text) => super::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Duration {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn every_form_parses() {
        assert_eq!(ok("15"), Duration::from_secs(15));
        assert_eq!(ok("0.5"), Duration::from_millis(500));
        assert_eq!(ok(" 2 "), Duration::from_secs(2));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("2s"), Duration::from_secs(2));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1m500ms"), Duration::from_millis(60_500));
        assert_eq!(ok("24h"), MAX_SPAN);
    }

    #[test]
    fn wrong_forms_say_what_would_work() {
        for bad in [
            "", "m", "1x", "s1", "-1", "1e3", "inf", "NaN", "1.2.3", "30s1m", "1s1s", "1m30",
            "1 s", "ms", "1.s.",
        ] {
            match parse(bad) {
                Err(e @ SpanError::Malformed { .. }) => {
                    assert!(e.to_string().contains("1m30s"), "{bad}: {e}")
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        assert!(matches!(parse("25h"), Err(SpanError::OutOfRange { .. })));
        assert!(matches!(parse("86401"), Err(SpanError::OutOfRange { .. })));
        assert!(matches!(parse_positive("0s"), Err(SpanError::Zero { .. })));
        assert_eq!(parse_positive("1ms"), Ok(Duration::from_millis(1)));
    }
}
