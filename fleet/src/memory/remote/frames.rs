//! The memory socket's framing: a 4-byte big-endian length, then the frame (the layout of
//! tokio-util's `LengthDelimitedCodec`). Hand-written on the reading side because that codec
//! reserves the announced length before a byte of the frame has arrived: two frames announcing
//! 150 MB grew the owner by 310 MB that was never released. Here a length beyond the reader's
//! limit is refused at once, and the buffer grows only as the frame's bytes come in.

use std::io;

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Bytes of the length prefix.
const HEAD: usize = 4;

/// Length-prefixed frames, each read at most `max` bytes long (the limit is the reader's: what
/// is written is bounded by what the other side reads).
#[derive(Debug, Clone, Copy)]
pub(super) struct Frames {
    max: usize,
}

impl Frames {
    pub(super) fn new(max: usize) -> Self {
        Self { max }
    }

    /// Changes the limit for the frames still to come (e.g. once the peer has proved who it is).
    pub(super) fn set_max(&mut self, max: usize) {
        self.max = max;
    }
}

impl Decoder for Frames {
    type Item = BytesMut;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        let Some(head) = src.get(..HEAD) else {
            return Ok(None);
        };
        let mut length = [0u8; HEAD];
        length.copy_from_slice(head);
        let length = u32::from_be_bytes(length) as usize;
        if length > self.max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a frame of {length} bytes is announced; at most {} are read",
                    self.max
                ),
            ));
        }
        if src.len() < HEAD + length {
            return Ok(None);
        }
        src.advance(HEAD);
        Ok(Some(src.split_to(length)))
    }
}

impl Encoder<Bytes> for Frames {
    type Error = io::Error;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> io::Result<()> {
        let length = u32::try_from(frame.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a frame of {} bytes does not fit a 4-byte length",
                    frame.len()
                ),
            )
        })?;
        dst.reserve(HEAD + frame.len());
        dst.put_u32(length);
        dst.extend_from_slice(&frame);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_whole_and_in_pieces() {
        let mut codec = Frames::new(1024);
        let mut wire = BytesMut::new();
        for frame in ["one", "", "three"] {
            codec
                .encode(Bytes::from(frame), &mut wire)
                .expect("encoded");
        }
        // Fed a byte at a time, each frame comes out once whole.
        let mut src = BytesMut::new();
        let mut out = Vec::new();
        for b in wire {
            src.put_u8(b);
            while let Some(frame) = codec.decode(&mut src).expect("decoded") {
                out.push(String::from_utf8(frame.to_vec()).expect("utf-8"));
            }
        }
        assert_eq!(out, ["one", "", "three"]);
    }

    #[test]
    fn a_huge_announced_frame_is_refused_before_anything_is_reserved() {
        let mut codec = Frames::new(1 << 20);
        let mut src = BytesMut::from(&[0xFF, 0xFF, 0xFF, 0xF0, b'x'][..]);
        let err = codec.decode(&mut src).expect_err("refused");
        assert!(err.to_string().contains("4294967280 bytes"), "{err}");
        assert!(src.capacity() < 1024, "reserved {}", src.capacity());
        // Within the limit but not all there: waits, without reserving the rest.
        let mut src = BytesMut::from(&[0x00, 0x10, 0x00, 0x00, b'x'][..]);
        assert!(codec.decode(&mut src).expect("fine").is_none());
        assert!(src.capacity() < 1024, "reserved {}", src.capacity());
    }
}
