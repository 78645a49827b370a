//! `check_package`: looks a package version up in a bundled snapshot of OSV advisories.
//!
//! The snapshot (`fleet/data/osv-snapshot.json`) is a JSON array of OSV records, copied from
//! the GitHub Advisory Database and the RustSec database, for well-known vulnerabilities in
//! the `crates.io`, `npm`, `PyPI` and `Go` ecosystems. It is small on purpose: it is a
//! deterministic, offline stand-in for a real advisory feed, not a complete one. A package
//! that is not in it is reported as not vulnerable *according to the snapshot*.
//!
//! It is parsed once, on first use, and indexed by (ecosystem, normalised package name),
//! with every range bound pre-parsed, so a lookup is one hash probe plus a few comparisons.
//!
//! # Names
//! Normalised as each ecosystem does: PyPI per PEP 503 (lower case, runs of `-`, `_`, `.`
//! become one `-`); crates.io lower case with `_` and `-` equivalent; npm lower case; Go
//! module paths are case-sensitive and kept as given. For Go, a package path inside a module
//! (e.g. `golang.org/x/net/http2`) also finds the module's advisories.
//!
//! # Versions
//! * crates.io, npm, Go: Semantic Versioning via the `semver` crate, compared by precedence
//!   (build metadata ignored, so Go's `+incompatible` is harmless). A leading `v` is
//!   accepted, and one- or two-part versions (`2`, `2.3`) are padded with zeros. Go
//!   pseudo-versions (`v0.0.0-20220314234659-1baeb96d0d9b`) are ordinary pre-releases.
//! * PyPI: PEP 440 ordering of epoch, release (trailing zeros insignificant), pre-release
//!   (`a`/`b`/`rc` and their long spellings), post-release and dev-release segments. Local
//!   version labels (`+ubuntu1`) are accepted but ignored when comparing, and
//!   leading zeros are numeric (`2015.04.28` == `2015.4.28`).
//!
//! Limits: npm ranges (`^1.2`), PEP 440 specifiers (`>=2`) and wildcards are not versions and
//! are refused; version strings that are neither SemVer-like nor PEP 440 are refused too.
//!
//! # Ranges
//! OSV semantics: `introduced` is inclusive (`"0"` means "from the first release"), `fixed`
//! exclusive, `last_affected` inclusive; an `introduced` without an end stays open. An
//! affected entry's explicit `versions` list is honoured as well. `fixedIn` is the `fixed`
//! bound of the range that matched (none for `last_affected` or open ranges).
//!
//! # Severity
//! `database_specific.severity` (`LOW`/`MODERATE`/`HIGH`/`CRITICAL`) when present, else the
//! CVSS v3 base score of `severity[].score` (0.1–3.9 low, 4.0–6.9 medium, 7.0–8.9 high,
//! 9.0–10 critical), else `medium`.
//!
//! # Files
//! `schema` holds the tool's arguments and output, `check` the tool itself, `ecosystem`
//! the per-ecosystem names and version schemes, `version` SemVer-ish and PEP 440 versions
//! and their order, `snapshot` loading and indexing the bundled OSV records, `cvss` the
//! CVSS v3 base score, `lookup` matching a version against the index.

mod check;
mod cvss;
mod ecosystem;
mod lookup;
mod schema;
mod snapshot;
#[cfg(test)]
mod tests;
mod version;

pub use check::{advisory_count, check_package, snapshot_date};
pub(crate) use ecosystem::Ecosystem;
pub(crate) use lookup::lookup;
pub use schema::{AdvisoryMatch, CheckPackageArgs, CheckPackageOutput, SUPPORTED_ECOSYSTEMS};
