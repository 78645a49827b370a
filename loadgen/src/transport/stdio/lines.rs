//! Reading a stdio server's stdout as newline-delimited messages, each bounded: a server that
//! writes a line longer than [`MAX_LINE`] (or never ends one) costs the reader at most that much
//! memory, and the line is reported as too long instead of growing a buffer without end.

use tokio::io::{AsyncBufRead, AsyncBufReadExt as _};

/// Longest message line accepted, as the HTTP transport's body limit.
pub const MAX_LINE: usize = crate::transport::conn::MAX_BODY;

/// What the next line of output was.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its newline (and without a `\r` before it), in the buffer.
    Message,
    /// A line longer than the limit, read to its end and dropped.
    TooLong,
    /// The stream ended (a partial last line is dropped: its writer exited mid-message).
    End,
}

/// Reads the next line of `reader` into `buf` (cleared first), holding at most `max` bytes.
pub async fn next_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(Line::End);
        }
        let (part, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if !too_long && buf.len() + part.len() <= max {
            buf.extend_from_slice(part);
        } else {
            too_long = true;
            buf.clear();
        }
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        if done.is_some() {
            if too_long {
                return Ok(Line::TooLong);
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Line::Message);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use tokio::io::BufReader;

    use super::*;

    #[tokio::test]
    async fn splits_lines_and_drops_the_overlong_ones() {
        let input = b"{\"a\":1}\r\n0123456789abcdef\n\n{\"b\":2}\npartial".to_vec();
        // A small read buffer, so lines cross buffer boundaries.
        let mut reader = BufReader::with_capacity(3, &input[..]);
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        loop {
            match next_line(&mut reader, &mut buf, 10).await.unwrap() {
                Line::End => break,
                Line::TooLong => seen.push("<too long>".to_string()),
                Line::Message => seen.push(String::from_utf8(buf.clone()).unwrap()),
            }
        }
        assert_eq!(seen, ["{\"a\":1}", "<too long>", "", "{\"b\":2}"]);
    }
}
