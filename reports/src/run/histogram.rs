//! Histograms as the run file carries them: HdrHistogram V2 deflate, base64, so other
//! HdrHistogram tools read them and runs can be merged.
//!
//! Run files come from anywhere (CI artefacts, a colleague's run), so decoding checks the V2
//! header before HdrHistogram's decoder sees it: the decoder allocates whatever the payload
//! length field says and inflates without limit, so one forged field would abort the process
//! instead of failing the file. Every length is checked against the bytes present and a
//! sane maximum, and inflating stops at that maximum.

use std::{borrow::Cow, io::Read as _};

use base64::Engine as _;
use hdrhistogram::{
    Histogram,
    serialization::{Deserializer, Serializer as _, V2DeflateSerializer},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EncodedHistogram {
    pub encoding: String,
    pub unit: String,
    pub data: String,
}

impl EncodedHistogram {
    /// `h` in the run file's encoding.
    pub fn of<T: hdrhistogram::Counter>(h: &Histogram<T>) -> Result<Self, HistogramError> {
        Ok(Self {
            encoding: "HdrHistogram V2 deflate, base64".into(),
            unit: "us".into(),
            data: encode_histogram(h)?,
        })
    }
}

/// A histogram that would not encode or decode.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    #[error("histogram does not serialise: {0}")]
    Encode(String),
    #[error("histogram is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("histogram does not decode: {0}")]
    Decode(String),
    #[error("histogram is corrupt: {field}: {problem}")]
    Corrupt {
        field: &'static str,
        problem: String,
    },
}

/// HdrHistogram's cookies (first four bytes) of V2 and of V2 deflate.
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;
/// A V2 header: cookie, payload length, normalizing offset, significant digits, lowest and
/// highest trackable value, integer-to-double ratio.
const V2_HEADER_BYTES: usize = 40;
/// A V2 deflate header: cookie, compressed length.
const DEFLATE_HEADER_BYTES: usize = 8;
/// Largest V2 payload (the varint-encoded counts) accepted: at most 9 bytes per count of
/// [`MAX_COUNTS`] would be 18 MiB, but runs of zeros take one varint, and loadgen's own
/// histograms (3 significant digits up to a minute) hold ~17,000 counts.
pub const MAX_PAYLOAD_BYTES: usize = 4 << 20;
/// Most counts (distinct values) a histogram's bounds may ask for: 16 MiB of `u64` counts,
/// room for 5 significant digits up to a minute.
pub const MAX_COUNTS: usize = 1 << 21;

fn corrupt(field: &'static str, problem: String) -> HistogramError {
    HistogramError::Corrupt { field, problem }
}

/// The big-endian `u32` at `at` (the caller has checked the length).
fn be_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(word)
}

fn be_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(word)
}

/// The V2 bytes of a V2 or V2 deflate histogram, inflated (to at most the V2 header and
/// [`MAX_PAYLOAD_BYTES`]) when compressed.
fn v2_bytes(bytes: &[u8]) -> Result<Cow<'_, [u8]>, HistogramError> {
    if bytes.len() < DEFLATE_HEADER_BYTES {
        return Err(corrupt("header", format!("{} bytes in all", bytes.len())));
    }
    match be_u32(bytes, 0) {
        V2_COOKIE => Ok(Cow::Borrowed(bytes)),
        V2_DEFLATE_COOKIE => {
            let said = be_u32(bytes, 4) as usize;
            let present = bytes.len() - DEFLATE_HEADER_BYTES;
            if said != present {
                return Err(corrupt(
                    "compressed length",
                    format!("says {said} bytes, {present} present"),
                ));
            }
            let limit = V2_HEADER_BYTES + MAX_PAYLOAD_BYTES;
            let mut inflated = Vec::new();
            flate2::read::ZlibDecoder::new(&bytes[DEFLATE_HEADER_BYTES..])
                .take(limit as u64 + 1)
                .read_to_end(&mut inflated)
                .map_err(|e| corrupt("compressed payload", e.to_string()))?;
            if inflated.len() > limit {
                return Err(corrupt(
                    "compressed payload",
                    format!("inflates to more than {limit} bytes"),
                ));
            }
            Ok(Cow::Owned(inflated))
        }
        other => Err(corrupt(
            "cookie",
            format!(
                "{other:#010x} is neither V2 ({V2_COOKIE:#010x}) nor V2 deflate ({V2_DEFLATE_COOKIE:#010x})"
            ),
        )),
    }
}

/// Checks a V2 histogram's header against the bytes present and the limits, so decoding it
/// allocates no more than they allow.
fn check_v2(v2: &[u8]) -> Result<(), HistogramError> {
    if v2.len() < V2_HEADER_BYTES {
        return Err(corrupt(
            "header",
            format!("{} bytes; a V2 header has {V2_HEADER_BYTES}", v2.len()),
        ));
    }
    let cookie = be_u32(v2, 0);
    if cookie != V2_COOKIE {
        return Err(corrupt(
            "inner cookie",
            format!("{cookie:#010x}, not V2 ({V2_COOKIE:#010x})"),
        ));
    }
    let said = be_u32(v2, 4) as usize;
    let present = v2.len() - V2_HEADER_BYTES;
    if said > MAX_PAYLOAD_BYTES || said != present {
        return Err(corrupt(
            "payload length",
            format!("says {said} bytes, {present} present (at most {MAX_PAYLOAD_BYTES})"),
        ));
    }
    let digits = u8::try_from(be_u32(v2, 12)).unwrap_or(u8::MAX);
    let (low, high) = (be_u64(v2, 16), be_u64(v2, 24));
    // Bounds are sized on one-byte counters (a few MB for the widest HdrHistogram allows), so
    // over-wide ones are refused before their eight-byte counts are allocated.
    let counts = Histogram::<u8>::new_with_bounds(low, high, digits)
        .map_err(|e| corrupt("bounds", format!("{low}..{high}, {digits} digits: {e:?}")))?
        .distinct_values();
    if counts > MAX_COUNTS {
        return Err(corrupt(
            "bounds",
            format!("{low}..{high} at {digits} digits need {counts} counts; at most {MAX_COUNTS}"),
        ));
    }
    Ok(())
}

/// HdrHistogram V2 deflate, base64: the form other HdrHistogram tools read and runs merge in.
pub fn encode_histogram<T: hdrhistogram::Counter>(
    h: &Histogram<T>,
) -> Result<String, HistogramError> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| HistogramError::Encode(format!("{e:?}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A histogram as the run file encodes it (V2 deflate, or plain V2, base64), its header
/// checked first: corrupt or oversized ones are an error, never a huge allocation.
pub fn decode_histogram(data: &str) -> Result<Histogram<u64>, HistogramError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(data)?;
    let v2 = v2_bytes(&bytes)?;
    check_v2(&v2)?;
    Deserializer::new()
        .deserialize(&mut v2.as_ref())
        .map_err(|e| HistogramError::Decode(format!("{e:?}")))
}

impl EncodedHistogram {
    pub fn decode(&self) -> Result<Histogram<u64>, HistogramError> {
        decode_histogram(&self.data)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use hdrhistogram::serialization::V2Serializer;

    use super::*;

    fn base64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// A V2 header as loadgen writes one (3 digits, 1 µs to a minute) saying `payload` bytes.
    fn v2_header(payload: u32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(V2_COOKIE.to_be_bytes());
        out.extend(payload.to_be_bytes());
        out.extend(0u32.to_be_bytes());
        out.extend(3u32.to_be_bytes());
        out.extend(1u64.to_be_bytes());
        out.extend(60_000_000u64.to_be_bytes());
        out.extend(1f64.to_be_bytes());
        out
    }

    /// `v2` compressed as V2 deflate, its compressed length as `said` or else the true one.
    fn deflated(v2: &[u8], said: Option<u32>) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(v2).unwrap();
        let compressed = z.finish().unwrap();
        let mut out = V2_DEFLATE_COOKIE.to_be_bytes().to_vec();
        out.extend(said.unwrap_or(compressed.len() as u32).to_be_bytes());
        out.extend(compressed);
        out
    }

    fn problem(data: &str) -> (&'static str, String) {
        match decode_histogram(data) {
            Err(HistogramError::Corrupt { field, problem }) => (field, problem),
            other => panic!("not refused as corrupt: {other:?}"),
        }
    }

    fn sample() -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in [10, 250, 250, 7_000, 1_200_000] {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn what_loadgen_writes_decodes_deflated_or_plain() {
        let h = sample();
        assert_eq!(decode_histogram(&encode_histogram(&h).unwrap()).unwrap(), h);
        let mut plain = Vec::new();
        V2Serializer::new().serialize(&h, &mut plain).unwrap();
        assert_eq!(decode_histogram(&base64(&plain)).unwrap(), h);
        let empty = Histogram::<u64>::new_with_bounds(1, 60_000_000, 2).unwrap();
        assert_eq!(
            decode_histogram(&encode_histogram(&empty).unwrap()).unwrap(),
            empty
        );
    }

    /// 60 bytes whose payload length says 0xFFFFFFF0: HdrHistogram's decoder allocated that
    /// much and aborted the process.
    #[test]
    fn a_payload_length_beyond_the_bytes_is_refused() {
        let mut forged = v2_header(0xFFFF_FFF0);
        forged.resize(60, 0);
        let (field, why) = problem(&base64(&forged));
        assert_eq!(field, "payload length", "{why}");
        assert!(
            why.contains("4294967280") && why.contains("20 present"),
            "{why}"
        );
        // The same inside a valid deflate wrapper.
        let (field, _) = problem(&base64(&deflated(&forged, None)));
        assert_eq!(field, "payload length");
        // Consistent, but over the limit.
        let mut big = v2_header(MAX_PAYLOAD_BYTES as u32 + 1);
        big.resize(V2_HEADER_BYTES + MAX_PAYLOAD_BYTES + 1, 0);
        assert_eq!(problem(&base64(&big)).0, "payload length");
    }

    #[test]
    fn truncated_histograms_are_refused() {
        let whole = base64::engine::general_purpose::STANDARD
            .decode(encode_histogram(&sample()).unwrap())
            .unwrap();
        for cut in [3, 8, whole.len() / 2, whole.len() - 1] {
            let (field, why) = problem(&base64(&whole[..cut]));
            assert!(
                field == "header" || field == "compressed length",
                "{cut}: {field}: {why}"
            );
        }
        let mut plain = Vec::new();
        V2Serializer::new()
            .serialize(&sample(), &mut plain)
            .unwrap();
        assert_eq!(problem(&base64(&plain[..30])).0, "header");
        assert_eq!(
            problem(&base64(&plain[..plain.len() - 1])).0,
            "payload length"
        );
    }

    #[test]
    fn bad_cookies_and_bounds_are_refused() {
        let mut wrong = encode_histogram(&sample()).unwrap();
        wrong.replace_range(..4, "AAAA");
        assert_eq!(problem(&wrong).0, "cookie");
        let mut inner = v2_header(0);
        inner[..4].copy_from_slice(&V2_DEFLATE_COOKIE.to_be_bytes());
        assert_eq!(problem(&base64(&deflated(&inner, None))).0, "inner cookie");
        // Five digits up to 2^62 would need ~6 million counts.
        let mut wide = v2_header(0);
        wide[12..16].copy_from_slice(&5u32.to_be_bytes());
        wide[24..32].copy_from_slice(&(1u64 << 62).to_be_bytes());
        let (field, why) = problem(&base64(&wide));
        assert_eq!(field, "bounds", "{why}");
        let mut zero_low = v2_header(0);
        zero_low[16..24].copy_from_slice(&0u64.to_be_bytes());
        assert_eq!(problem(&base64(&zero_low)).0, "bounds");
    }

    /// 8 MiB of zeros deflate to ~8 KB: inflating stops at the limit instead of holding it
    /// all, whatever the inner header claims.
    #[test]
    fn a_deflate_bomb_is_refused() {
        let mut bomb = v2_header(8 << 20);
        bomb.resize(V2_HEADER_BYTES + (8 << 20), 0);
        let packed = deflated(&bomb, None);
        assert!(packed.len() < 64 << 10, "{}", packed.len());
        let (field, why) = problem(&base64(&packed));
        assert_eq!(field, "compressed payload", "{why}");
        assert!(why.contains("more than"), "{why}");
        let lying = deflated(&v2_header(0), Some(1 << 30));
        assert_eq!(problem(&base64(&lying)).0, "compressed length");
    }
}
