//! Session ids the gateway issues: session affinity without a shared table.
//!
//! The gateway is one MCP streamable-HTTP endpoint over many backends. A client session lives
//! on exactly one backend, so every request carrying the gateway's `Mcp-Session-Id` has to
//! reach that backend with that backend's own session id. Instead of remembering the pair in a
//! table, the gateway writes it into the id it hands out and authenticates it with an HMAC:
//!
//! ```text
//! base64url_nopad(version=1 || u8 backend_len || backend || upstream) "." base64url_nopad(tag)
//! tag = HMAC-SHA256(key, DOMAIN || payload), first 16 bytes
//! ```
//!
//! Why no shared table: any gateway process holding the key can route any session, including
//! one that just restarted or a replica that never saw the `initialize`; nothing grows per
//! session, so there is nothing to evict, expire, lock or replicate. When the backend named in
//! an id is gone (removed, renamed, its session lost in a restart) the gateway answers 404,
//! which the MCP spec defines as "session expired, send a new `initialize`": clients recover
//! on their own. The price: an id cannot be revoked on its own (rotate the key to drop every
//! session at once; a key change makes every old id [`SessionError::Forged`], i.e. 404), and
//! the id is authenticated, not encrypted: the client can read the backend id and the upstream
//! session id out of it. That is acceptable while backends are reachable only through the
//! gateway; if it ever is not, a new [`VERSION`] can switch to an AEAD without changing callers.
//!
//! Sessions the gateway holds itself (a client that initialized on `/mcp` sees the whole fleet,
//! its calls spread over every group's members) carry no backend: their payload is
//!
//! ```text
//! version=2 || u8 protocol version (index in wire::Version::ALL) || 16 random bytes
//! ```
//!
//! under the same tag, and [`open_any`] tells the two apart ([`Opened`]).
//!
//! Every rejected id, [`SessionError::Malformed`] or [`SessionError::Forged`], must become a
//! 404 (see [`SessionError::is_bad_id`]); nothing in [`open`] panics, whatever the input.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::wire::Version;

type HmacSha256 = Hmac<Sha256>;

/// The format version, the first payload byte. Covered by the MAC like the rest.
pub const VERSION: u8 = 1;
/// The first payload byte of a session the gateway holds itself ([`issue_own`]).
pub const OWN_VERSION: u8 = 2;
/// Random bytes in an own session's id: they make each session's id its own.
const NONCE_LEN: usize = 16;
/// Longest backend (server) id [`issue`] accepts, in bytes. Fleet ids such as
/// `community-0003` are far shorter; the cap keeps the length in one byte and the id short.
pub const MAX_BACKEND_LEN: usize = 64;
/// Longest upstream session id [`issue`] accepts, in bytes. Backends in practice hand out
/// UUIDs (36 characters) or similar.
pub const MAX_UPSTREAM_LEN: usize = 256;
/// Longest session id [`open`] even looks at, in bytes: anything longer is
/// [`MalformedReason::TooLong`] before any decoding, so a hostile header cannot make the
/// gateway decode or hash much. Every id [`issue`] produces fits (at most 453 bytes).
pub const MAX_ID_LEN: usize = 512;

/// Bytes of HMAC-SHA256 output kept as the tag.
///
/// 16 bytes (128 bits) is enough because a MAC tag can only be checked by someone holding the
/// key: a forger has no offline test and must submit each guess to the gateway, where it
/// succeeds with probability 2^-128 (a birthday bound does not apply; tag collisions between
/// ids the gateway issued give an attacker nothing). Truncating HMAC-SHA256 to 128 bits is
/// standard (RFC 2104 section 5, NIST SP 800-107) and keeps the id 21 characters shorter.
const TAG_LEN: usize = 16;
/// Version byte and backend length byte.
const HEADER_LEN: usize = 2;
const MAX_PAYLOAD_LEN: usize = HEADER_LEN + MAX_BACKEND_LEN + MAX_UPSTREAM_LEN;
/// Domain separation: the MAC input starts with this label, so a tag made with the same key
/// for any other purpose (now or later) can never pass as a session id tag.
const DOMAIN: &[u8] = b"mcpfleet/gateway/session-id\0";

/// Length of `n` bytes in unpadded base64.
const fn b64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

// The longest id `issue` can produce must pass `open`'s length cap.
const _: () = assert!(b64_len(MAX_PAYLOAD_LEN) + 1 + b64_len(TAG_LEN) <= MAX_ID_LEN);
// The backend length has to fit in the one length byte.
const _: () = assert!(MAX_BACKEND_LEN <= u8::MAX as usize);

/// The secret that authenticates session ids: 32 random bytes.
///
/// Every gateway process that should accept the same sessions needs the same key; a fresh key
/// per process (see [`SessionKey::random`]) simply means sessions do not survive a restart,
/// and clients re-initialize on the 404. `Debug` does not print the key.
#[derive(Clone)]
pub struct SessionKey {
    /// HMAC state with the key schedule done and [`DOMAIN`] absorbed; cloned per id.
    prepared: HmacSha256,
}

impl SessionKey {
    /// A new key from the operating system's random source.
    pub fn random() -> Result<SessionKey, SessionError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(SessionError::Random)?;
        Ok(SessionKey::from_bytes(bytes))
    }

    /// A key from given bytes (for a key shared between gateway replicas, and for tests).
    pub fn from_bytes(bytes: [u8; 32]) -> SessionKey {
        // HMAC pads a key shorter than the hash's block size with zeros to the block size
        // (RFC 2104), so a 32-byte key zero-padded to 64 bytes is the same key; the fixed-size
        // constructor cannot fail, unlike `new_from_slice`, which would need an unwrap.
        let mut block = hmac::digest::Key::<HmacSha256>::default();
        for (dst, src) in block.iter_mut().zip(bytes.iter()) {
            *dst = *src;
        }
        let mut prepared = <HmacSha256 as hmac::digest::KeyInit>::new(&block);
        prepared.update(DOMAIN);
        SessionKey { prepared }
    }

    /// The MAC state over [`DOMAIN`] and `payload`, ready to finalize or verify.
    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = self.prepared.clone();
        mac.update(payload);
        mac
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey").finish_non_exhaustive()
    }
}

/// Where a session lives: the backend and that backend's own session id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Affinity {
    /// The backend's server id, such as `community-0003`: 1 to [`MAX_BACKEND_LEN`] bytes of
    /// visible ASCII.
    pub backend: String,
    /// The `Mcp-Session-Id` the backend gave the gateway: up to [`MAX_UPSTREAM_LEN`] bytes of
    /// visible ASCII. Empty for a backend that runs without sessions.
    pub upstream: String,
}

impl Affinity {
    pub fn new(backend: impl Into<String>, upstream: impl Into<String>) -> Affinity {
        Affinity {
            backend: backend.into(),
            upstream: upstream.into(),
        }
    }
}

/// Why a session id could not be issued or opened. Messages never contain the id, its
/// fields or the key, so they are safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Not a session id this gateway could have issued in this format. Answer 404.
    #[error("session id is malformed: {0}")]
    Malformed(MalformedReason),
    /// Well-formed but the tag does not match: forged, corrupted, or issued under another key
    /// (such as before a restart with a fresh key). Answer 404.
    #[error("session id failed authentication (forged, corrupted or issued under another key)")]
    Forged,
    /// [`issue`] was given an empty backend id.
    #[error("backend id is empty")]
    EmptyBackend,
    /// [`issue`] was given a backend id longer than [`MAX_BACKEND_LEN`].
    #[error("backend id is {len} bytes; a session id holds at most {MAX_BACKEND_LEN}")]
    BackendTooLong { len: usize },
    /// [`issue`] was given a backend id with a byte outside 0x21..=0x7E.
    #[error("backend id has a character outside visible ASCII (0x21-0x7E)")]
    BackendNotVisibleAscii,
    /// [`issue`] was given an upstream session id longer than [`MAX_UPSTREAM_LEN`].
    #[error("upstream session id is {len} bytes; a session id holds at most {MAX_UPSTREAM_LEN}")]
    UpstreamTooLong { len: usize },
    /// [`issue`] was given an upstream session id with a byte outside 0x21..=0x7E (the MCP
    /// spec allows only visible ASCII in session ids, so a backend sending one is broken).
    #[error("upstream session id has a character outside visible ASCII (0x21-0x7E)")]
    UpstreamNotVisibleAscii,
    /// The operating system's random source failed.
    #[error("could not draw a random session key: {0}")]
    Random(getrandom::Error),
}

impl SessionError {
    /// True for ids a client sent that the gateway does not accept ([`SessionError::Malformed`],
    /// [`SessionError::Forged`]): the answer is 404, so spec clients re-initialize.
    pub fn is_bad_id(&self) -> bool {
        matches!(self, SessionError::Malformed(_) | SessionError::Forged)
    }
}

/// What is wrong with a malformed session id. Only lengths and small numbers, never content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedReason {
    #[error("{len} bytes long, more than {MAX_ID_LEN}")]
    TooLong { len: usize },
    #[error("no `.` between payload and tag")]
    MissingSeparator,
    #[error("payload is not unpadded base64url")]
    PayloadEncoding,
    #[error("tag is not unpadded base64url")]
    TagEncoding,
    #[error("tag is {len} bytes, expected {TAG_LEN}")]
    TagLength { len: usize },
    #[error("payload is {len} bytes, outside {HEADER_LEN}..={MAX_PAYLOAD_LEN}")]
    PayloadLength { len: usize },
    #[error("version {0} is not supported (this gateway speaks version {VERSION})")]
    Version(u8),
    #[error("backend length byte does not fit the payload")]
    BackendLength,
    #[error("a field has a character outside visible ASCII")]
    NotVisibleAscii,
}

impl From<MalformedReason> for SessionError {
    fn from(reason: MalformedReason) -> SessionError {
        SessionError::Malformed(reason)
    }
}

fn is_visible_ascii(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// The session id for `affinity`: visible ASCII (base64url and one `.`), at most
/// [`MAX_ID_LEN`] bytes, and the same for the same key and affinity (no nonce: the upstream
/// session id already makes it unique per session).
pub fn issue(key: &SessionKey, affinity: &Affinity) -> Result<String, SessionError> {
    let backend = affinity.backend.as_bytes();
    let upstream = affinity.upstream.as_bytes();
    if backend.is_empty() {
        return Err(SessionError::EmptyBackend);
    }
    if backend.len() > MAX_BACKEND_LEN {
        return Err(SessionError::BackendTooLong { len: backend.len() });
    }
    if !is_visible_ascii(backend) {
        return Err(SessionError::BackendNotVisibleAscii);
    }
    if upstream.len() > MAX_UPSTREAM_LEN {
        return Err(SessionError::UpstreamTooLong {
            len: upstream.len(),
        });
    }
    if !is_visible_ascii(upstream) {
        return Err(SessionError::UpstreamNotVisibleAscii);
    }
    let backend_len = u8::try_from(backend.len())
        .map_err(|_| SessionError::BackendTooLong { len: backend.len() })?;

    let mut payload = Vec::with_capacity(HEADER_LEN + backend.len() + upstream.len());
    payload.push(VERSION);
    payload.push(backend_len);
    payload.extend_from_slice(backend);
    payload.extend_from_slice(upstream);

    Ok(seal(key, &payload))
}

/// What a session id names: a server's session (pinned), or a session the gateway holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    Pinned(Affinity),
    /// The gateway's own session, in the protocol version negotiated at `initialize`.
    Own(Version),
}

/// An id for a session the gateway holds itself, in protocol version `version`.
pub fn issue_own(key: &SessionKey, version: Version) -> Result<String, SessionError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(SessionError::Random)?;
    let index = Version::ALL
        .iter()
        .position(|v| *v == version)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(u8::MAX);
    let mut payload = Vec::with_capacity(HEADER_LEN + NONCE_LEN);
    payload.push(OWN_VERSION);
    payload.push(index);
    payload.extend_from_slice(&nonce);
    Ok(seal(key, &payload))
}

/// `payload` and its tag, as an id.
fn seal(key: &SessionKey, payload: &[u8]) -> String {
    let full = key.mac(payload).finalize().into_bytes();
    let mut tag = [0u8; TAG_LEN];
    for (dst, src) in tag.iter_mut().zip(full.iter()) {
        *dst = *src;
    }
    let mut id = String::with_capacity(b64_len(payload.len()) + 1 + b64_len(TAG_LEN));
    URL_SAFE_NO_PAD.encode_string(payload, &mut id);
    id.push('.');
    URL_SAFE_NO_PAD.encode_string(tag, &mut id);
    id
}

/// What a session id names, if this key issued it (either kind; see [`open`] for the order of
/// the checks).
pub fn open_any(key: &SessionKey, id: &str) -> Result<Opened, SessionError> {
    let payload = authenticate(key, id)?;
    match payload.first() {
        Some(&OWN_VERSION) => {
            let [_, index, nonce @ ..] = payload.as_slice() else {
                return Err(MalformedReason::PayloadLength { len: payload.len() }.into());
            };
            if nonce.len() != NONCE_LEN {
                return Err(MalformedReason::PayloadLength { len: payload.len() }.into());
            }
            Version::ALL
                .get(usize::from(*index))
                .map(|v| Opened::Own(*v))
                .ok_or_else(|| MalformedReason::Version(OWN_VERSION).into())
        }
        _ => parse(&payload).map(Opened::Pinned),
    }
}

/// The affinity a session id carries, if this key issued it.
///
/// Order matters: the length cap comes before any decoding, and the MAC is verified (in
/// constant time) before a single payload byte is interpreted. Checking first means the parser
/// only ever sees bytes this gateway wrote itself, so hostile input never reaches it, and a
/// forger learns nothing about the inner layout from which error comes back. Only the outer
/// shape (length, base64, tag and payload sizes) is judged before the MAC, and that reveals
/// nothing about the key. The tag must be exactly 16 bytes: a shorter one would otherwise let
/// a forger choose how many bytes get compared.
pub fn open(key: &SessionKey, id: &str) -> Result<Affinity, SessionError> {
    parse(&authenticate(key, id)?)
}

/// An id's payload, once its shape and tag are checked.
fn authenticate(key: &SessionKey, id: &str) -> Result<Vec<u8>, SessionError> {
    if id.len() > MAX_ID_LEN {
        return Err(MalformedReason::TooLong { len: id.len() }.into());
    }
    let (payload_text, tag_text) = id
        .split_once('.')
        .ok_or(MalformedReason::MissingSeparator)?;
    // A second `.` lands in `tag_text` and fails base64 decoding there.
    let tag = URL_SAFE_NO_PAD
        .decode(tag_text)
        .map_err(|_| MalformedReason::TagEncoding)?;
    if tag.len() != TAG_LEN {
        return Err(MalformedReason::TagLength { len: tag.len() }.into());
    }
    let payload = URL_SAFE_NO_PAD
        .decode(payload_text)
        .map_err(|_| MalformedReason::PayloadEncoding)?;
    if !(HEADER_LEN..=MAX_PAYLOAD_LEN).contains(&payload.len()) {
        return Err(MalformedReason::PayloadLength { len: payload.len() }.into());
    }

    key.mac(&payload)
        .verify_truncated_left(&tag)
        .map_err(|_| SessionError::Forged)?;

    // Authentic from here on: anything wrong in it is an id from another format version, or a
    // bug in `issue`, never an attacker's doing (short of a leaked key).
    Ok(payload)
}

/// Reads an authenticated payload, checking everything anyway.
fn parse(payload: &[u8]) -> Result<Affinity, SessionError> {
    let (&version, rest) = payload
        .split_first()
        .ok_or(MalformedReason::PayloadLength { len: payload.len() })?;
    if version != VERSION {
        return Err(MalformedReason::Version(version).into());
    }
    let (&backend_len, rest) = rest
        .split_first()
        .ok_or(MalformedReason::PayloadLength { len: payload.len() })?;
    let backend_len = usize::from(backend_len);
    if backend_len == 0 || backend_len > MAX_BACKEND_LEN {
        return Err(MalformedReason::BackendLength.into());
    }
    let (backend, upstream) = rest
        .split_at_checked(backend_len)
        .ok_or(MalformedReason::BackendLength)?;
    if upstream.len() > MAX_UPSTREAM_LEN {
        return Err(MalformedReason::PayloadLength { len: payload.len() }.into());
    }
    if !is_visible_ascii(backend) || !is_visible_ascii(upstream) {
        return Err(MalformedReason::NotVisibleAscii.into());
    }
    let text = |bytes: &[u8]| {
        String::from_utf8(bytes.to_vec()).map_err(|_| MalformedReason::NotVisibleAscii)
    };
    Ok(Affinity {
        backend: text(backend)?,
        upstream: text(upstream)?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn key() -> SessionKey {
        SessionKey::from_bytes([7u8; 32])
    }

    /// An id over an arbitrary payload, correctly tagged: for payloads `issue` refuses to make.
    fn sign(key: &SessionKey, payload: &[u8]) -> String {
        let full = key.mac(payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(&full[..TAG_LEN])
        )
    }

    fn is_bad(r: &Result<Affinity, SessionError>) -> bool {
        matches!(
            r,
            Err(SessionError::Malformed(_)) | Err(SessionError::Forged)
        )
    }

    fn affinities() -> Vec<Affinity> {
        let long_upstream: String = (0..MAX_UPSTREAM_LEN)
            .map(|i| char::from(0x21 + (i % 94) as u8))
            .collect();
        vec![
            Affinity::new("community-0003", "0f8e2a4c-7b1d-4e39-9a6f-3c2d1b0a9e8f"),
            Affinity::new("c", ""),
            Affinity::new("core-0000", "a.b.c"),
            Affinity::new("reference_7", "-_-._.-"),
            Affinity::new("x", "."),
            Affinity::new("community-0120", "3F2504E0-4F89-11D3-9A0C-0305E82C3301"),
            Affinity::new("a-b_c.d~!", "~!\"#$%&'()*+,/:;<=>?@[\\]^`{|}"),
            Affinity::new("b".repeat(MAX_BACKEND_LEN), long_upstream),
            Affinity::new("b".repeat(MAX_BACKEND_LEN), ""),
        ]
    }

    #[test]
    fn own_sessions_round_trip_and_differ() {
        let key = key();
        for version in Version::ALL {
            let a = issue_own(&key, version).unwrap();
            let b = issue_own(&key, version).unwrap();
            assert_ne!(a, b, "each session its own id");
            assert_eq!(open_any(&key, &a).unwrap(), Opened::Own(version));
            assert!(a.len() <= MAX_ID_LEN && a.bytes().all(|b| (0x21..=0x7e).contains(&b)));
            assert!(matches!(open(&key, &a), Err(SessionError::Malformed(_))));
            assert_eq!(
                open_any(&SessionKey::from_bytes([8; 32]), &a),
                Err(SessionError::Forged)
            );
        }
        let pinned = Affinity::new("community-0003", "abc");
        let id = issue(&key, &pinned).unwrap();
        assert_eq!(open_any(&key, &id).unwrap(), Opened::Pinned(pinned));
        // Authentic but not a shape issue_own makes: refused, not misread.
        for payload in [&[OWN_VERSION, 0][..], &[OWN_VERSION, 99, 1, 2][..]] {
            assert!(
                open_any(&key, &sign(&key, payload))
                    .unwrap_err()
                    .is_bad_id()
            );
        }
        let mut far = vec![OWN_VERSION, 200];
        far.extend_from_slice(&[0; NONCE_LEN]);
        assert!(open_any(&key, &sign(&key, &far)).unwrap_err().is_bad_id());
    }

    #[test]
    fn round_trip() {
        let key = key();
        for a in affinities() {
            let id = issue(&key, &a).unwrap();
            assert_eq!(open(&key, &id).unwrap(), a, "id {id}");
            assert_eq!(issue(&key, &a).unwrap(), id, "issue is deterministic");
        }
    }

    #[test]
    fn ids_are_visible_ascii_and_short() {
        let key = key();
        for a in affinities() {
            let id = issue(&key, &a).unwrap();
            assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{id}");
            assert!(id.len() <= MAX_ID_LEN, "{} bytes", id.len());
            assert_eq!(id.matches('.').count(), 1, "{id}");
        }
        // The longest possible id, from the compile-time bound, really is the longest.
        let longest = Affinity::new("b".repeat(MAX_BACKEND_LEN), "u".repeat(MAX_UPSTREAM_LEN));
        assert_eq!(issue(&key, &longest).unwrap().len(), 453);
    }

    #[test]
    fn format_is_the_documented_one() {
        // Ids must stay valid across gateway builds sharing a key: the bytes are exactly as documented.
        let key = key();
        let a = Affinity::new("community-0003", "0f8e2a4c-7b1d-4e39-9a6f-3c2d1b0a9e8f");
        let id = issue(&key, &a).unwrap();
        let (payload_text, tag_text) = id.split_once('.').unwrap();
        let payload = URL_SAFE_NO_PAD.decode(payload_text).unwrap();
        let mut expected = vec![1u8, 14];
        expected.extend_from_slice(b"community-0003");
        expected.extend_from_slice(b"0f8e2a4c-7b1d-4e39-9a6f-3c2d1b0a9e8f");
        assert_eq!(payload, expected);

        // The zero-padded fixed-size key equals the plain 32-byte HMAC key.
        let mut reference = <HmacSha256 as hmac::Mac>::new_from_slice(&[7u8; 32]).unwrap();
        reference.update(DOMAIN);
        reference.update(&expected);
        let full = reference.finalize().into_bytes();
        assert_eq!(URL_SAFE_NO_PAD.decode(tag_text).unwrap(), &full[..TAG_LEN]);
        assert_eq!(tag_text.len(), 22);
    }

    #[test]
    fn every_single_character_change_is_rejected() {
        let key = key();
        let alphabet: Vec<u8> = (0x21..=0x7e).collect();
        for a in affinities() {
            let id = issue(&key, &a).unwrap();
            let bytes = id.as_bytes();
            for pos in 0..bytes.len() {
                for &c in &alphabet {
                    if c == bytes[pos] {
                        continue;
                    }
                    let mut changed = bytes.to_vec();
                    changed[pos] = c;
                    let changed = String::from_utf8(changed).unwrap();
                    let r = open(&key, &changed);
                    assert!(is_bad(&r), "{changed} -> {r:?}");
                }
                // Dropping the character, or cutting the id there, is rejected too.
                let mut dropped = id.clone();
                dropped.remove(pos);
                assert!(is_bad(&open(&key, &dropped)), "{dropped}");
                assert!(is_bad(&open(&key, &id[..pos])), "{}", &id[..pos]);
            }
            assert!(is_bad(&open(&key, &format!("{id}A"))));
            assert!(is_bad(&open(&key, &format!("A{id}"))));
        }
    }

    #[test]
    fn another_key_is_forged() {
        let other = SessionKey::from_bytes([8u8; 32]);
        for a in affinities() {
            let id = issue(&key(), &a).unwrap();
            assert_eq!(open(&other, &id), Err(SessionError::Forged));
        }
        let r1 = SessionKey::random().unwrap();
        let r2 = SessionKey::random().unwrap();
        let id = issue(&r1, &affinities()[0]).unwrap();
        assert_eq!(open(&r1, &id).unwrap(), affinities()[0]);
        assert_eq!(open(&r2, &id), Err(SessionError::Forged));
    }

    #[test]
    fn issue_refuses_bad_fields() {
        let key = key();
        let cases = [
            (Affinity::new("", "u"), SessionError::EmptyBackend),
            (
                Affinity::new("b".repeat(65), "u"),
                SessionError::BackendTooLong { len: 65 },
            ),
            (
                Affinity::new("has space", "u"),
                SessionError::BackendNotVisibleAscii,
            ),
            (
                Affinity::new("bäck", "u"),
                SessionError::BackendNotVisibleAscii,
            ),
            (
                Affinity::new("b", "u".repeat(257)),
                SessionError::UpstreamTooLong { len: 257 },
            ),
            (
                Affinity::new("b", "has space"),
                SessionError::UpstreamNotVisibleAscii,
            ),
            (
                Affinity::new("b", "tab\there"),
                SessionError::UpstreamNotVisibleAscii,
            ),
            (
                Affinity::new("b", "new\nline"),
                SessionError::UpstreamNotVisibleAscii,
            ),
            (
                Affinity::new("b", "del\u{7f}"),
                SessionError::UpstreamNotVisibleAscii,
            ),
            (
                Affinity::new("b", "ünicode"),
                SessionError::UpstreamNotVisibleAscii,
            ),
        ];
        for (a, want) in cases {
            assert_eq!(issue(&key, &a), Err(want), "{a:?}");
            assert!(!want.is_bad_id());
        }
    }

    #[test]
    fn garbage_is_rejected() {
        let key = key();
        let good = issue(&key, &affinities()[0]).unwrap();
        let (good_payload, good_tag) = good.split_once('.').unwrap();
        let malformed =
            |r: Result<Affinity, SessionError>| matches!(r, Err(SessionError::Malformed(_)));
        let cases: Vec<String> = vec![
            String::new(),
            ".".into(),
            "..".into(),
            "a.b".into(),
            "a".into(),
            "nodot".into(),
            "AQ.".into(),
            format!(".{good_tag}"),
            format!("{good_payload}."),
            format!("{good_payload}.{good_tag}.{good_tag}"),
            format!("{good_payload}.{good_tag}="),
            format!("{good_payload}=.{good_tag}"),
            format!("{good_payload}.{}", good_tag.replace('A', "+")),
            good.replace('-', "+").replace('_', "/"),
            "x".repeat(MAX_ID_LEN + 1),
            "A".repeat(100_000),
            format!("{}.{}", "A".repeat(10_000), "A".repeat(22)),
            "ünïcödé.ßtring".into(),
            format!("{good_payload}.{good_tag}\u{e9}"),
            "\u{0}\u{0}.\u{0}".into(),
            " . ".into(),
            // Valid base64 but a tag of the wrong length.
            format!("{good_payload}.{}", URL_SAFE_NO_PAD.encode([0u8; 15])),
            format!("{good_payload}.{}", URL_SAFE_NO_PAD.encode([0u8; 17])),
            format!("{good_payload}.{}", URL_SAFE_NO_PAD.encode([0u8; 32])),
            format!("{good_payload}.{}", URL_SAFE_NO_PAD.encode([0u8; 1])),
            // Payloads too short or too long to be ours.
            format!("{}.{good_tag}", URL_SAFE_NO_PAD.encode([1u8])),
            format!(
                "{}.{good_tag}",
                URL_SAFE_NO_PAD.encode([1u8; MAX_PAYLOAD_LEN + 1])
            ),
        ];
        for id in cases {
            let r = open(&key, &id);
            assert!(malformed(r.clone()), "{:.80} -> {r:?}", id);
        }
        // Well-shaped but wrong tag: forged.
        let zero_tag = format!("{good_payload}.{}", URL_SAFE_NO_PAD.encode([0u8; TAG_LEN]));
        assert_eq!(open(&key, &zero_tag), Err(SessionError::Forged));
        assert_eq!(
            open(
                &key,
                &format!("{}.{good_tag}", URL_SAFE_NO_PAD.encode([1u8, 1, b'x']))
            ),
            Err(SessionError::Forged)
        );
    }

    #[test]
    fn mac_is_checked_before_the_payload_is_read() {
        let key = key();
        let overrun = [1u8, 60, b'a', b'b', b'c'];
        let zero = [1u8, 0, b'a'];
        let too_long_backend = [&[1u8, 65][..], &[b'b'; 65]].concat();
        let version_two = [2u8, 1, b'b', b'u'];
        let control = [1u8, 1, b'b', b'\n'];
        let non_ascii = [1u8, 1, 0xff, b'u'];
        // Unsigned (tag from another payload), every one of them is merely forged...
        let good = issue(&key, &affinities()[0]).unwrap();
        let (_, good_tag) = good.split_once('.').unwrap();
        for payload in [
            &overrun[..],
            &zero,
            &too_long_backend,
            &version_two,
            &control,
            &non_ascii,
        ] {
            let id = format!("{}.{good_tag}", URL_SAFE_NO_PAD.encode(payload));
            assert_eq!(open(&key, &id), Err(SessionError::Forged));
        }
        // ...and only with a valid tag does the parser judge them.
        let want = [
            (&overrun[..], MalformedReason::BackendLength),
            (&zero, MalformedReason::BackendLength),
            (&too_long_backend, MalformedReason::BackendLength),
            (&version_two, MalformedReason::Version(2)),
            (&control, MalformedReason::NotVisibleAscii),
            (&non_ascii, MalformedReason::NotVisibleAscii),
        ];
        for (payload, reason) in want {
            assert_eq!(
                open(&key, &sign(&key, payload)),
                Err(SessionError::Malformed(reason))
            );
        }
        // The helper agrees with `issue` on a payload `issue` would make.
        assert_eq!(
            open(&key, &sign(&key, &[1, 1, b'b', b'u'])).unwrap(),
            Affinity::new("b", "u")
        );
    }

    #[test]
    fn fuzz_never_panics_nor_accepts() {
        let key = key();
        // Seeded, so failures reproduce.
        let mut rng = fastrand::Rng::with_seed(0x5e55_1011_d00d_f00d);
        let b64ish: Vec<u8> =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.".to_vec();
        for round in 0..6000 {
            let len = rng.usize(..if round % 10 == 0 { 700 } else { 480 });
            let id: String = (0..len)
                .map(|_| {
                    let r = rng.u64(..);
                    // Half the rounds draw from base64url plus `.`, to get past the decoder.
                    let b = if round % 2 == 0 {
                        b64ish[(r % b64ish.len() as u64) as usize]
                    } else {
                        0x21 + (r % 94) as u8
                    };
                    char::from(b)
                })
                .collect();
            let r = open(&key, &id);
            assert!(is_bad(&r), "{id} -> {r:?}");
        }
        // Random raw bytes, including non-ASCII after lossy conversion.
        for _ in 0..2000 {
            let len = rng.usize(..600);
            let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            let id = String::from_utf8_lossy(&bytes);
            assert!(is_bad(&open(&key, &id)));
        }
        // Random multi-character edits of real ids.
        let ids: Vec<String> = affinities()
            .iter()
            .map(|a| issue(&key, a).unwrap())
            .collect();
        for _ in 0..4000 {
            let id = &ids[rng.usize(..ids.len())];
            let mut bytes = id.as_bytes().to_vec();
            for _ in 0..=rng.usize(..4) {
                let pos = rng.usize(..bytes.len());
                bytes[pos] = 0x21 + rng.u8(..94);
            }
            let edited = String::from_utf8(bytes).unwrap();
            let r = open(&key, &edited);
            if edited == *id {
                assert!(r.is_ok());
            } else {
                assert!(is_bad(&r), "{edited} -> {r:?}");
            }
        }
    }

    #[test]
    fn nothing_secret_in_debug_or_messages() {
        let key = SessionKey::from_bytes([0xab; 32]);
        let debug = format!("{key:?}");
        assert_eq!(debug, "SessionKey { .. }");

        let a = Affinity::new("community-0003", "SECRETUPSTREAMSESSION");
        let id = issue(&key, &a).unwrap();
        let (payload_text, tag_text) = id.split_once('.').unwrap();
        let probes = [
            open(&SessionKey::from_bytes([1; 32]), &id),
            open(&key, &format!("{payload_text}.{}", &tag_text[1..])),
            open(&key, &format!("{payload_text}x.{tag_text}")),
            open(&key, &id.repeat(2)),
            open(&key, &format!("SECRETUPSTREAMSESSION.{tag_text}")),
        ];
        for r in probes {
            let e = r.unwrap_err();
            assert!(e.is_bad_id());
            let msg = e.to_string();
            for secret in [id.as_str(), payload_text, tag_text, "SECRET", "community"] {
                assert!(!msg.contains(secret), "{msg:?} contains {secret:?}");
            }
        }
    }
}
