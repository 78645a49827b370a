//! Adding one shard's encoded histogram into the sum: the one exact operation merging rests on.

use hdrhistogram::Histogram;

use super::MergeError;
use crate::run::decode_histogram;

/// Adds `data` (an encoded histogram of `file` at `field`) into `into`.
pub(super) fn add(
    into: &mut Option<Histogram<u64>>,
    data: &str,
    file: &str,
    field: &str,
) -> Result<(), MergeError> {
    let histogram_error = |source| MergeError::Histogram {
        file: file.into(),
        field: field.into(),
        source,
    };
    let h = decode_histogram(data).map_err(histogram_error)?;
    match into {
        Some(sum) => sum.add(&h).map_err(|e| MergeError::Unmergeable {
            file: file.into(),
            what: format!("{field}: cannot be added to the other shards' ({e:?})"),
        }),
        None => {
            *into = Some(h);
            Ok(())
        }
    }
}
