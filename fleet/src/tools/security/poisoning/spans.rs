//! Where in a text a finding is: sentence and identifier spans, and the evidence excerpt around
//! a match that a finding carries.

use crate::tools::security::text::excerpt;

/// Longest evidence excerpt a finding carries, in characters.
pub(super) const EVIDENCE_CHARS: usize = 120;

/// Byte spans of sentences: split after `.`, `!` or `?` followed by whitespace, and at
/// newlines, so `~/.ssh/id_rsa` or `mcp.json` stay whole.
pub(super) fn sentences(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let b = bytes[i];
            let end_here = b == b'\n'
                || (matches!(b, b'.' | b'!' | b'?')
                    && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace()));
            i += 1;
            if end_here {
                let span = (start, i);
                start = i;
                if text[span.0..span.1].trim().is_empty() {
                    continue;
                }
                return Some(span);
            }
        }
        if start < bytes.len() {
            let span = (start, bytes.len());
            start = bytes.len();
            if !text[span.0..span.1].trim().is_empty() {
                return Some(span);
            }
        }
        None
    })
}

/// Byte spans of identifier-like words (`[A-Za-z0-9_-]+`).
pub(super) fn identifier_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        while i < bytes.len() && !is_ident(bytes[i]) {
            i += 1;
        }
        if i >= bytes.len() {
            return None;
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        Some((start, i))
    })
}

/// Excerpt of `text` around byte span `start..end`: a little context before, the match,
/// some context after; at most 120 characters.
pub(super) fn evidence_around(text: &str, start: usize, end: usize) -> String {
    let mut from = start.saturating_sub(30);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = (end + 60).min(text.len()).max(from);
    while !text.is_char_boundary(to) {
        to += 1;
    }
    let prefix = if from > 0 { "…" } else { "" };
    let body = excerpt(text[from..to].trim(), EVIDENCE_CHARS - 2);
    let suffix = if to < text.len() && !body.ends_with('…') {
        "…"
    } else {
        ""
    };
    format!("{prefix}{body}{suffix}")
}
