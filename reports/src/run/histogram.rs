//! Histograms as the run file carries them: HdrHistogram V2 deflate, base64, so other
//! HdrHistogram tools read them and runs can be merged.

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

pub fn decode_histogram(data: &str) -> Result<Histogram<u64>, HistogramError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(data)?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| HistogramError::Decode(format!("{e:?}")))
}

impl EncodedHistogram {
    pub fn decode(&self) -> Result<Histogram<u64>, HistogramError> {
        decode_histogram(&self.data)
    }
}
