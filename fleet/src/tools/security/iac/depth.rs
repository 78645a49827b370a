//! How deeply a YAML text nests flow collections (`[...]`, `{...}`), found in one pass before
//! the YAML parser sees it.
//!
//! libyaml's scanner, under `serde_yaml_ng`, checks every open flow level on every token, so
//! its time grows with the square of the nesting: 200 KB of `[[[[...` took 39 s, as long a run
//! of `{a: {a: ...` 72 s. Manifests nest flow collections a few levels at most, so a text
//! deeper than [`MAX_FLOW_DEPTH`] is refused before parsing, and parsing costs at most that
//! many checks per token.
//!
//! The pass is deliberately cruder than YAML: it counts every `[`/`{` outside comments and
//! outside quoted scalars inside flow collections (the only places a bracket closes nothing),
//! so it may count a bracket that YAML reads as text (a plain or block scalar's), never miss
//! one that YAML opens: when unsure it over-counts, and a refused text is one with dozens of
//! unbalanced brackets.

use crate::tools::error::ToolInputError;

/// Deepest flow-collection nesting `scan_iac` parses.
pub const MAX_FLOW_DEPTH: usize = 64;

/// Refuses YAML nested deeper than [`MAX_FLOW_DEPTH`] flow collections.
pub(super) fn check_flow_depth(content: &str) -> Result<(), ToolInputError> {
    let depth = flow_depth(content);
    if depth > MAX_FLOW_DEPTH {
        return Err(ToolInputError::new(
            "content",
            format!(
                "nests flow collections ([...] or {{...}}) {depth} deep; the depth limit is \
                 {MAX_FLOW_DEPTH}"
            ),
        ));
    }
    Ok(())
}

/// The deepest flow nesting of `text`, as described in the module docs.
pub(super) fn flow_depth(text: &str) -> usize {
    let bytes = text.as_bytes();
    let (mut depth, mut deepest) = (0usize, 0usize);
    // Where a token may start inside a flow collection (after `[`, `{`, `,`, or whitespace
    // following one of them or a `:`): only there does a quote open a quoted scalar.
    let mut token_start = false;
    let mut prev = b'\n';
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'#' if prev.is_ascii_whitespace() => {
                // A comment, to the end of the line.
                i = memchr_newline(bytes, i);
                prev = b'\n';
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                token_start = true;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                token_start = false;
            }
            b',' => token_start = depth > 0,
            b':' => token_start = depth > 0 && bytes.get(i + 1).is_none_or(u8::is_ascii_whitespace),
            b'"' | b'\'' if depth > 0 && token_start => {
                i = quoted_end(bytes, i);
                prev = b;
                token_start = false;
                continue;
            }
            b if b.is_ascii_whitespace() => {}
            _ => token_start = false,
        }
        prev = b;
        i += 1;
    }
    deepest
}

/// The index of the `\n` ending the line at `from`, or the end of `bytes`.
fn memchr_newline(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| from + p)
}

/// The index just past the quoted scalar opening at `open` (`"` with `\` escapes, `'` with
/// `''`), or the end of `bytes` when it never closes.
fn quoted_end(bytes: &[u8], open: usize) -> usize {
    let quote = bytes[open];
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn counts_flow_nesting() {
        assert_eq!(flow_depth("a: 1\nb: [x, y]\n"), 1);
        assert_eq!(flow_depth("a: {b: [1, {c: [2]}]}"), 4);
        assert_eq!(flow_depth(&"[".repeat(500)), 500);
        assert_eq!(flow_depth(&"{a: ".repeat(100)), 100);
    }

    #[test]
    fn brackets_in_comments_and_flow_quotes_open_nothing() {
        assert_eq!(flow_depth("a: 1 # [[[[\n"), 0);
        assert_eq!(flow_depth("a: [\"[[[\", '{{{', \"\\\"[\"]"), 1);
        assert_eq!(flow_depth("a: ['it''s [[[', b]"), 1);
    }

    #[test]
    fn a_quote_inside_a_plain_scalar_hides_nothing() {
        // `it's` is plain text: the brackets after it are real and must be counted.
        let text = format!("a: [it's, {}", "[".repeat(70));
        assert_eq!(flow_depth(&text), 71);
        // A closing bracket in a quoted scalar does not close a level.
        assert_eq!(flow_depth("[[ \"]]]]\" [[ ]]"), 4);
    }

    #[test]
    fn deep_nesting_is_refused_naming_the_limit() {
        let err = check_flow_depth(&"[".repeat(MAX_FLOW_DEPTH + 1)).unwrap_err();
        assert_eq!(err.field, "content");
        assert!(err.message.contains("depth limit is 64"), "{}", err.message);
        assert!(check_flow_depth(&"[".repeat(MAX_FLOW_DEPTH)).is_ok());
    }
}
