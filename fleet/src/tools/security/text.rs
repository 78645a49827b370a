//! Text handling every security tool shares: the input size cap and its error, the output cap
//! (a list that keeps its first [`MAX_FINDINGS`] entries, so a greedy input cannot make a
//! greedy answer), line numbers of match offsets, line counts, and readable excerpts of
//! evidence (invisible characters escaped, which is also what the poisoning audit looks for).

use crate::tools::error::ToolInputError;

/// Largest text input any security tool accepts (1 MiB). Larger inputs are refused with a
/// [`ToolInputError`] naming the field, so a single call's cost stays bounded.
pub const MAX_CONTENT_BYTES: usize = 1024 * 1024;

/// Most entries a security tool lists in one answer (findings, unpinned or vulnerable
/// packages); past it the rest are dropped and the answer says `truncated: true`. A thousand
/// findings are more than anyone reads, and keep the largest answer to a few hundred KB.
pub const MAX_FINDINGS: usize = 1000;

/// A list that keeps its first `max` entries and counts the ones it dropped.
pub(crate) struct Capped<T> {
    items: Vec<T>,
    max: usize,
    dropped: usize,
}

impl<T> Capped<T> {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            items: Vec::new(),
            max,
            dropped: 0,
        }
    }

    pub(crate) fn push(&mut self, item: T) {
        if self.items.len() < self.max {
            self.items.push(item);
        } else {
            self.dropped += 1;
        }
    }

    /// Entries kept and dropped.
    pub(crate) fn total(&self) -> usize {
        self.items.len() + self.dropped
    }

    /// True when an entry was dropped.
    pub(crate) fn truncated(&self) -> bool {
        self.dropped > 0
    }

    /// Sorts the entries kept (stably).
    pub(crate) fn sort_by_key<K: Ord>(&mut self, key: impl FnMut(&T) -> K) {
        self.items.sort_by_key(key);
    }

    pub(crate) fn into_vec(self) -> Vec<T> {
        self.items
    }
}

/// Refuses `value` when it is longer than `max` bytes.
pub(crate) fn check_len(field: &str, value: &str, max: usize) -> Result<(), ToolInputError> {
    if value.len() > max {
        return Err(ToolInputError::new(
            field,
            format!(
                "is {} bytes; the limit is {} bytes ({})",
                value.len(),
                max,
                human_bytes(max)
            ),
        ));
    }
    Ok(())
}

fn human_bytes(n: usize) -> String {
    if n >= 1024 * 1024 && n.is_multiple_of(1024 * 1024) {
        format!("{} MiB", n / (1024 * 1024))
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// Byte offsets of the start of every line, for turning match offsets into line/column.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts = Vec::with_capacity(text.len() / 32 + 1);
        starts.push(0);
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Self { starts }
    }

    /// 1-based line and 1-based column (in characters) of byte `offset` in `text`.
    pub(crate) fn position(&self, text: &str, offset: usize) -> (usize, usize) {
        let idx = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.starts.get(idx).copied().unwrap_or(0);
        let column = text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(0);
        (idx + 1, column + 1)
    }
}

/// Number of `\n` bytes in `text`. Counts in 255-byte chunks with `u8` accumulators,
/// which the compiler vectorises (a plain `filter().count()` widens every byte to `usize`).
pub(crate) fn count_newlines(text: &str) -> usize {
    text.as_bytes()
        .chunks(255)
        .map(|chunk| {
            usize::from(
                chunk
                    .iter()
                    .fold(0u8, |n, &b| n.wrapping_add(u8::from(b == b'\n'))),
            )
        })
        .sum()
}

/// Number of lines in `text` (a trailing newline does not start a new, empty line).
pub(crate) fn count_lines(text: &str) -> usize {
    let newlines = count_newlines(text);
    if text.is_empty() || text.ends_with('\n') {
        newlines
    } else {
        newlines + 1
    }
}

/// At most `max_chars` characters of `s`, with `…` appended when cut, and control or
/// invisible characters shown as `\u{XXXX}` escapes so evidence is always readable.
pub(crate) fn excerpt(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars * 2));
    for (count, c) in s.chars().enumerate() {
        if count >= max_chars {
            out.push('…');
            return out;
        }
        if c == '\n' || c == '\r' || c == '\t' {
            out.push(' ');
        } else if c.is_control() || is_invisible(c) {
            out.push_str(&format!("\\u{{{:04X}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Zero-width, bidi-control and other invisible formatting characters, and Unicode tags.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn check_len_names_field() {
        let big = "x".repeat(11);
        let err = check_len("content", &big, 10).err();
        assert_eq!(err.map(|e| e.field), Some("content".to_string()));
        assert!(check_len("content", "short", 10).is_ok());
        let err = check_len(
            "content",
            &"y".repeat(MAX_CONTENT_BYTES + 1),
            MAX_CONTENT_BYTES,
        );
        assert!(err.is_err_and(|e| e.message.contains("1 MiB")));
    }

    #[test]
    fn capped_keeps_the_first_and_counts_the_rest() {
        let mut list = Capped::new(2);
        for i in 0..5 {
            list.push(i);
        }
        assert!(list.truncated());
        assert_eq!(list.total(), 5);
        assert_eq!(list.into_vec(), vec![0, 1]);
        let mut short = Capped::new(2);
        short.push('a');
        assert!(!short.truncated());
        assert_eq!(short.into_vec(), ['a']);
    }

    #[test]
    fn line_index_positions_are_one_based_chars() {
        let text = "ab\nçdé\n\nxyz";
        let idx = LineIndex::new(text);
        assert_eq!(idx.position(text, 0), (1, 1));
        assert_eq!(idx.position(text, 1), (1, 2));
        // 'é' is after 'ç' (2 bytes) and 'd' (1 byte): byte offset 3 + 3 = 6.
        assert_eq!(idx.position(text, 6), (2, 3));
        let z = text.find('z').unwrap_or(0);
        assert_eq!(idx.position(text, z), (4, 3));
        assert_eq!(count_lines(text), 4);
        assert_eq!(count_lines("a\n"), 1);
        assert_eq!(count_lines("a\n\nb"), 3);
        assert_eq!(count_lines(""), 0);
        let many = "a\n".repeat(1000) + "b";
        assert_eq!(count_newlines(&many), 1000);
        assert_eq!(count_lines(&many), 1001);
    }

    #[test]
    fn excerpt_cuts_and_escapes() {
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("a\u{200B}b", 10), "a\\u{200B}b");
        assert_eq!(excerpt("a\nb", 10), "a b");
    }
}
