//! The supported package ecosystems and what differs between them: how names are
//! normalised, which version scheme applies, and how argument errors name the field. Shared
//! with the lockfile scanner.

use super::{
    schema::SUPPORTED_ECOSYSTEMS,
    version::{MAX_VERSION_BYTES, PepVersion, Version, parse_semverish},
};
use crate::tools::{error::ToolInputError, security::text::excerpt};

pub(super) const MAX_NAME_BYTES: usize = 256;

/// A supported package ecosystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Ecosystem {
    CratesIo,
    Npm,
    PyPi,
    Go,
}

impl Ecosystem {
    /// Case-insensitive parse of an ecosystem name; the error names `ecosystem`.
    pub(crate) fn parse(s: &str) -> Result<Self, ToolInputError> {
        Self::from_name(s).ok_or_else(|| {
            ToolInputError::new(
                "ecosystem",
                format!(
                    "unknown ecosystem `{}`; supported: {}",
                    excerpt(s.trim(), 40),
                    SUPPORTED_ECOSYSTEMS.join(", ")
                ),
            )
        })
    }

    pub(super) fn from_name(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("crates.io") {
            Some(Self::CratesIo)
        } else if s.eq_ignore_ascii_case("npm") {
            Some(Self::Npm)
        } else if s.eq_ignore_ascii_case("pypi") {
            Some(Self::PyPi)
        } else if s.eq_ignore_ascii_case("go") {
            Some(Self::Go)
        } else {
            None
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::CratesIo => "crates.io",
            Self::Npm => "npm",
            Self::PyPi => "PyPI",
            Self::Go => "Go",
        }
    }

    /// The name the ecosystem's registry treats as identical to `name`.
    pub(crate) fn normalize_name(self, name: &str) -> String {
        let name = name.trim();
        match self {
            Self::CratesIo => name.to_ascii_lowercase().replace('_', "-"),
            Self::Npm => name.to_ascii_lowercase(),
            Self::PyPi => {
                let mut out = String::with_capacity(name.len());
                let mut pending_sep = false;
                for c in name.chars() {
                    if matches!(c, '-' | '_' | '.') {
                        pending_sep = true;
                    } else {
                        if pending_sep && !out.is_empty() {
                            out.push('-');
                        }
                        pending_sep = false;
                        out.push(c.to_ascii_lowercase());
                    }
                }
                out
            }
            Self::Go => name.trim_end_matches('/').to_string(),
        }
    }

    /// Parses one exact version in this ecosystem's scheme.
    pub(crate) fn parse_version(self, s: &str) -> Option<Version> {
        match self {
            Self::PyPi => PepVersion::parse(s).map(Version::Pep),
            Self::CratesIo | Self::Npm | Self::Go => parse_semverish(s).map(Version::Sem),
        }
    }

    pub(super) fn parse_version_arg(self, field: &str, s: &str) -> Result<Version, ToolInputError> {
        if s.is_empty() {
            return Err(ToolInputError::new(field, "must not be empty"));
        }
        if s.len() > MAX_VERSION_BYTES {
            return Err(ToolInputError::new(
                field,
                format!("is longer than {MAX_VERSION_BYTES} bytes"),
            ));
        }
        self.parse_version(s).ok_or_else(|| {
            let scheme = match self {
                Self::PyPi => "a PEP 440 version such as `2.31.0` or `1.0rc1`",
                Self::Go => "a module version such as `v0.17.0`",
                Self::CratesIo | Self::Npm => "a SemVer version such as `1.2.3`",
            };
            ToolInputError::new(
                field,
                format!(
                    "`{}` is not a valid {} version; expected {scheme} (ranges are not accepted)",
                    excerpt(s, 40),
                    self.as_str()
                ),
            )
        })
    }
}

pub(super) fn validate_name<'a>(field: &str, name: &'a str) -> Result<&'a str, ToolInputError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(ToolInputError::new(field, "must not be empty"));
    }
    if trimmed.len() > MAX_NAME_BYTES {
        return Err(ToolInputError::new(
            field,
            format!("is longer than {MAX_NAME_BYTES} bytes"),
        ));
    }
    if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ToolInputError::new(
            field,
            "must not contain whitespace or control characters",
        ));
    }
    Ok(trimmed)
}
