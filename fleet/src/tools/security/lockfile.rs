//! `scan_lockfile`: parses a lockfile and checks every pinned package against the bundled
//! advisory snapshot (the same lookup as `check_package`).
//!
//! Formats:
//! * `Cargo.lock` (any version): every `[[package]]` `name`/`version` (ecosystem crates.io).
//! * `package-lock.json` v1, v2 and v3 (ecosystem npm): the `packages` map when present
//!   (`node_modules/…` keys; the root `""` entry, workspace folders and `link` entries are
//!   skipped; a `name` field, used for aliases, wins over the key), else the recursive
//!   `dependencies` map of v1 (`npm:` alias versions resolved to the real package).
//! * `requirements.txt` (ecosystem PyPI): `name==version` (or `===`) pins. Comments, blank
//!   lines, options (`-r`, `-c`, `-e`, `--index-url`, `--hash`, …), environment markers
//!   (`; python_version < "3.8"`) and extras (`[security]`) are handled; continuation lines
//!   (`\`) are joined. Anything else that names a requirement — `>=`, `~=`, wildcards
//!   (`==1.*`), bare names, URLs, local paths — is listed in `unpinned` and not checked.
//!
//! When `format` is absent it is detected from the content: JSON with `lockfileVersion`,
//! `packages` or `dependencies` is a `package-lock.json`, TOML with `[[package]]` is a
//! `Cargo.lock`, and text whose lines all look like requirements is a `requirements.txt`.
//!
//! Packages are de-duplicated by (name, version) and listed sorted. Versions that do not
//! parse in the ecosystem's scheme (git or file references) are listed but not checked.
//! Every package is checked, but the answer lists at most [`MAX_PACKAGES`] packages and
//! [`MAX_FINDINGS`] unpinned and vulnerable ones (`truncated: true` when a list was cut;
//! `packageCount` counts them all), so a 1 MiB requirements file cannot make a 10 MB answer.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use super::advisories::{AdvisoryMatch, Ecosystem, lookup};
use super::text::{Capped, LineIndex, MAX_CONTENT_BYTES, MAX_FINDINGS, check_len, excerpt};
use crate::tools::error::ToolInputError;

/// Most packages one answer lists (a large real lockfile pins a few thousand).
pub const MAX_PACKAGES: usize = 10_000;

/// Lockfile formats `scan_lockfile` accepts in `format` (matched case-insensitively).
pub const SUPPORTED_FORMATS: [&str; 3] = ["Cargo.lock", "package-lock.json", "requirements.txt"];

/// Arguments of `scan_lockfile`.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScanLockfileArgs {
    /// The lockfile's full text. At most 1 MiB.
    pub content: String,
    /// `Cargo.lock`, `package-lock.json` or `requirements.txt` (case-insensitive). Detected
    /// from the content when absent.
    #[serde(default)]
    pub format: Option<String>,
}

/// One package pinned by the lockfile.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LockfilePackage {
    /// `crates.io`, `npm` or `PyPI`.
    pub ecosystem: String,
    /// Package name as written in the lockfile.
    pub name: String,
    /// Pinned version as written in the lockfile.
    pub version: String,
}

/// A pinned package with at least one advisory.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VulnerablePackage {
    /// Package name as written in the lockfile.
    pub name: String,
    /// Pinned version.
    pub version: String,
    /// Advisories affecting this version (same shape as `check_package`).
    pub advisories: Vec<AdvisoryMatch>,
}

/// Result of `scan_lockfile`.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanLockfileOutput {
    /// The format that was parsed (canonical spelling).
    pub format: String,
    /// Every pinned package, de-duplicated and sorted by name then version (the first 10000).
    pub packages: Vec<LockfilePackage>,
    /// requirements.txt only: requirements that do not pin one exact version (not checked;
    /// the first 1000).
    pub unpinned: Vec<String>,
    /// Pinned packages with advisories, in name and version order (the first 1000).
    pub vulnerable: Vec<VulnerablePackage>,
    /// Number of pinned packages, those not listed included.
    pub package_count: usize,
    /// True when a list was cut at its limit.
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    CargoLock,
    PackageLock,
    Requirements,
}

impl Format {
    fn parse(s: &str) -> Result<Self, ToolInputError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("Cargo.lock") {
            Ok(Self::CargoLock)
        } else if s.eq_ignore_ascii_case("package-lock.json") {
            Ok(Self::PackageLock)
        } else if s.eq_ignore_ascii_case("requirements.txt") {
            Ok(Self::Requirements)
        } else {
            Err(ToolInputError::new(
                "format",
                format!(
                    "unknown format `{}`; supported: {}",
                    excerpt(s, 40),
                    SUPPORTED_FORMATS.join(", ")
                ),
            ))
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::CargoLock => "Cargo.lock",
            Self::PackageLock => "package-lock.json",
            Self::Requirements => "requirements.txt",
        }
    }

    fn ecosystem(self) -> Ecosystem {
        match self {
            Self::CargoLock => Ecosystem::CratesIo,
            Self::PackageLock => Ecosystem::Npm,
            Self::Requirements => Ecosystem::PyPi,
        }
    }
}

/// Parses `args.content` and checks every pinned package.
pub fn scan_lockfile(args: &ScanLockfileArgs) -> Result<ScanLockfileOutput, ToolInputError> {
    check_len("content", &args.content, MAX_CONTENT_BYTES)?;
    let format = match &args.format {
        Some(f) => Format::parse(f)?,
        None => detect(&args.content).ok_or_else(|| {
            ToolInputError::new(
                "format",
                format!(
                    "could not detect the lockfile format from the content; pass one of: {}",
                    SUPPORTED_FORMATS.join(", ")
                ),
            )
        })?,
    };
    let mut pins: BTreeSet<(String, String)> = BTreeSet::new();
    let mut unpinned = Capped::new(MAX_FINDINGS);
    match format {
        Format::CargoLock => parse_cargo_lock(&args.content, &mut pins)?,
        Format::PackageLock => parse_package_lock(&args.content, &mut pins)?,
        Format::Requirements => parse_requirements(&args.content, &mut pins, &mut unpinned),
    }
    let eco = format.ecosystem();
    let mut vulnerable = Capped::new(MAX_FINDINGS);
    let mut packages = Capped::new(MAX_PACKAGES);
    for (name, version) in pins {
        if let Some(v) = eco.parse_version(&version) {
            let advisories = lookup(eco, &eco.normalize_name(&name), &v);
            if !advisories.is_empty() {
                vulnerable.push(VulnerablePackage {
                    name: name.clone(),
                    version: version.clone(),
                    advisories,
                });
            }
        }
        packages.push(LockfilePackage {
            ecosystem: eco.as_str().to_string(),
            name,
            version,
        });
    }
    Ok(ScanLockfileOutput {
        format: format.as_str().to_string(),
        package_count: packages.total(),
        truncated: packages.truncated() || unpinned.truncated() || vulnerable.truncated(),
        packages: packages.into_vec(),
        unpinned: unpinned.into_vec(),
        vulnerable: vulnerable.into_vec(),
    })
}

fn detect(content: &str) -> Option<Format> {
    let trimmed = content.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') {
        let looks_npm = ["\"lockfileVersion\"", "\"packages\"", "\"dependencies\""]
            .iter()
            .any(|k| trimmed.contains(k));
        return looks_npm.then_some(Format::PackageLock);
    }
    if content.lines().any(|l| l.trim() == "[[package]]") {
        return Some(Format::CargoLock);
    }
    let mut requirement_lines = 0;
    for line in logical_requirement_lines(content) {
        let Some(body) = requirement_body(&line) else {
            continue;
        };
        if !REQUIREMENT.is_match(body) {
            return None;
        }
        requirement_lines += 1;
    }
    (requirement_lines > 0).then_some(Format::Requirements)
}

fn content_error(message: impl std::fmt::Display) -> ToolInputError {
    ToolInputError::new("content", message.to_string())
}

#[derive(serde::Deserialize)]
struct CargoLock {
    #[serde(default)]
    package: Vec<CargoPackage>,
}

#[derive(serde::Deserialize)]
struct CargoPackage {
    name: String,
    version: String,
}

fn parse_cargo_lock(
    content: &str,
    pins: &mut BTreeSet<(String, String)>,
) -> Result<(), ToolInputError> {
    let lock: CargoLock = toml::from_str(content).map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let (line, column) = LineIndex::new(content).position(content, span.start);
                format!(" (line {line}, column {column})")
            })
            .unwrap_or_default();
        content_error(format!(
            "not a valid Cargo.lock: {}{at}",
            e.message().trim()
        ))
    })?;
    pins.extend(lock.package.into_iter().map(|p| (p.name, p.version)));
    Ok(())
}

fn parse_package_lock(
    content: &str,
    pins: &mut BTreeSet<(String, String)>,
) -> Result<(), ToolInputError> {
    let root: serde_json::Value = serde_json::from_str(content)
        .map_err(|e| content_error(format!("not a valid package-lock.json: {e}")))?;
    let Some(root) = root.as_object() else {
        return Err(content_error(
            "not a valid package-lock.json: the top level is not an object",
        ));
    };
    if let Some(packages) = root.get("packages").and_then(|p| p.as_object()) {
        for (key, entry) in packages {
            let Some(idx) = key.rfind("node_modules/") else {
                continue; // the root project ("") or a workspace folder
            };
            if entry.get("link").and_then(|l| l.as_bool()) == Some(true) {
                continue;
            }
            let name = entry
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or(&key[idx + "node_modules/".len()..]);
            if let Some(version) = entry.get("version").and_then(|v| v.as_str())
                && !name.is_empty()
            {
                pins.insert((name.to_string(), version.to_string()));
            }
        }
    } else if let Some(deps) = root.get("dependencies") {
        collect_v1_dependencies(deps, pins);
    }
    Ok(())
}

/// v1 lockfiles nest `dependencies` recursively (serde_json's recursion limit bounds depth).
fn collect_v1_dependencies(deps: &serde_json::Value, pins: &mut BTreeSet<(String, String)>) {
    let Some(deps) = deps.as_object() else {
        return;
    };
    for (name, entry) in deps {
        if let Some(version) = entry.get("version").and_then(|v| v.as_str()) {
            // Aliases: `"my-lodash": {"version": "npm:lodash@4.17.21"}`.
            let pin = version
                .strip_prefix("npm:")
                .and_then(|spec| {
                    let at = spec.get(1..)?.rfind('@')? + 1;
                    Some((spec[..at].to_string(), spec[at + 1..].to_string()))
                })
                .unwrap_or_else(|| (name.clone(), version.to_string()));
            pins.insert(pin);
        }
        if let Some(nested) = entry.get("dependencies") {
            collect_v1_dependencies(nested, pins);
        }
    }
}

/// `name[extras] <specifiers>` once comments, options and markers are gone.
static REQUIREMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*(?:(?:===|==|~=|!=|<=|>=|<|>)\s*[^\s,;]+(?:\s*,\s*(?:===|==|~=|!=|<=|>=|<|>)\s*[^\s,;]+)*|@\s*\S+)?\s*(?:;.*)?$",
    )
    .expect("built-in requirement pattern is a valid regex")
});

/// One exact pin: `name[extras] ==version` (nothing else) before any marker.
static EXACT_PIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*===?\s*([^\s,;*]+)\s*(?:;.*)?$")
        .expect("built-in pin pattern is a valid regex")
});

/// Joins `\`-continued lines.
fn logical_requirement_lines(content: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for raw in content.lines() {
        let raw = raw.trim_end();
        if let Some(body) = raw.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
        } else {
            current.push_str(raw);
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// pip: `#` starts a comment at the line start or after whitespace.
fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    match line.find(" #").or_else(|| line.find("\t#")) {
        Some(i) => &line[..i],
        None => line,
    }
}

/// The requirement part of a logical line: `None` for blank, comment and option lines
/// (`-r`, `-c`, `-e`, `--index-url`, ...); per-requirement options such as `--hash=…`, which
/// follow the specifier, are cut off.
fn requirement_body(line: &str) -> Option<&str> {
    let line = strip_comment(line).trim();
    if line.is_empty() || line.starts_with('-') {
        return None;
    }
    Some(match line.find(" --") {
        Some(i) => line[..i].trim(),
        None => line,
    })
}

fn parse_requirements(
    content: &str,
    pins: &mut BTreeSet<(String, String)>,
    unpinned: &mut Capped<String>,
) {
    for line in logical_requirement_lines(content) {
        let Some(line) = requirement_body(&line) else {
            continue;
        };
        match EXACT_PIN.captures(line) {
            Some(c) => {
                let name = c.get(1).map_or("", |m| m.as_str());
                let version = c.get(2).map_or("", |m| m.as_str());
                pins.insert((name.to_string(), version.to_string()));
            }
            None => unpinned.push(excerpt(line, 200)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn scan(content: &str, format: Option<&str>) -> ScanLockfileOutput {
        scan_lockfile(&ScanLockfileArgs {
            content: content.to_string(),
            format: format.map(str::to_string),
        })
        .unwrap()
    }

    fn names(out: &ScanLockfileOutput) -> Vec<(&str, &str)> {
        out.packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect()
    }

    fn vulnerable(out: &ScanLockfileOutput) -> Vec<(&str, &str)> {
        out.vulnerable
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect()
    }

    const CARGO_LOCK: &str = r#"# This file is automatically @generated by Cargo.
# It is not intended for manual editing.
version = 4

[[package]]
name = "bytes"
version = "1.5.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "a2bd12c1caf447e69cd4528f47f94d203fd2582878ecb9e9465484c4148a8223"

[[package]]
name = "myapp"
version = "0.1.0"
dependencies = [
 "bytes",
 "smallvec",
 "tokio",
]

[[package]]
name = "smallvec"
version = "1.6.0"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "tokio"
version = "1.38.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
dependencies = [
 "bytes",
]

[[package]]
name = "time"
version = "0.1.45"
source = "registry+https://github.com/rust-lang/crates.io-index"
"#;

    #[test]
    fn cargo_lock_parsed_and_checked() {
        for format in [None, Some("Cargo.lock"), Some("cargo.LOCK")] {
            let out = scan(CARGO_LOCK, format);
            assert_eq!(out.format, "Cargo.lock");
            assert_eq!(out.package_count, 5);
            assert_eq!(
                names(&out),
                vec![
                    ("bytes", "1.5.0"),
                    ("myapp", "0.1.0"),
                    ("smallvec", "1.6.0"),
                    ("time", "0.1.45"),
                    ("tokio", "1.38.0"),
                ]
            );
            assert!(out.packages.iter().all(|p| p.ecosystem == "crates.io"));
            assert_eq!(
                vulnerable(&out),
                vec![("smallvec", "1.6.0"), ("time", "0.1.45")]
            );
            assert_eq!(out.vulnerable[0].advisories[0].id, "RUSTSEC-2021-0003");
            assert_eq!(
                out.vulnerable[0].advisories[0].fixed_in.as_deref(),
                Some("1.6.1")
            );
            assert!(out.unpinned.is_empty());
        }
    }

    const PACKAGE_LOCK_V3: &str = r#"{
  "name": "web",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": { "name": "web", "version": "1.0.0", "dependencies": { "lodash": "^4.17.0" } },
    "node_modules/lodash": { "version": "4.17.15", "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.15.tgz" },
    "node_modules/express": { "version": "4.19.2" },
    "node_modules/express/node_modules/minimist": { "version": "1.2.5" },
    "node_modules/@types/node": { "version": "20.11.5", "dev": true },
    "node_modules/old-lodash": { "name": "lodash", "version": "4.17.4" },
    "node_modules/local-lib": { "resolved": "packages/local-lib", "link": true },
    "packages/local-lib": { "name": "local-lib", "version": "0.0.1" }
  }
}"#;

    #[test]
    fn package_lock_v2_v3_packages_map() {
        let out = scan(PACKAGE_LOCK_V3, None);
        assert_eq!(out.format, "package-lock.json");
        assert_eq!(
            names(&out),
            vec![
                ("@types/node", "20.11.5"),
                ("express", "4.19.2"),
                ("lodash", "4.17.15"),
                ("lodash", "4.17.4"),
                ("minimist", "1.2.5"),
            ]
        );
        assert_eq!(
            vulnerable(&out),
            vec![
                ("lodash", "4.17.15"),
                ("lodash", "4.17.4"),
                ("minimist", "1.2.5")
            ]
        );
        assert!(out.packages.iter().all(|p| p.ecosystem == "npm"));
    }

    const PACKAGE_LOCK_V1: &str = r#"{
  "name": "legacy",
  "version": "1.0.0",
  "lockfileVersion": 1,
  "requires": true,
  "dependencies": {
    "axios": { "version": "0.21.1", "resolved": "https://registry.npmjs.org/axios/-/axios-0.21.1.tgz",
      "dependencies": { "follow-redirects": { "version": "1.14.0" } } },
    "json5": { "version": "2.2.3" },
    "my-semver": { "version": "npm:semver@7.5.1" },
    "git-dep": { "version": "git+https://github.com/acme/git-dep.git#abc123" }
  }
}"#;

    #[test]
    fn package_lock_v1_dependencies() {
        let out = scan(PACKAGE_LOCK_V1, Some("package-lock.json"));
        assert_eq!(
            names(&out),
            vec![
                ("axios", "0.21.1"),
                ("follow-redirects", "1.14.0"),
                ("git-dep", "git+https://github.com/acme/git-dep.git#abc123"),
                ("json5", "2.2.3"),
                ("semver", "7.5.1"),
            ]
        );
        assert_eq!(
            vulnerable(&out),
            vec![("axios", "0.21.1"), ("semver", "7.5.1")]
        );
    }

    const REQUIREMENTS: &str = r#"# Production dependencies
-r base.txt
--index-url https://pypi.org/simple
requests==2.30.0  # pinned for proxies
urllib3[socks]==1.26.18 ; python_version >= "3.7"
Django==4.2.3
PyYAML===5.3.1
flask>=2.0
jinja2==3.1.*
numpy
certifi==2023.7.22 \
    --hash=sha256:539cc1d13202e33ca466e88b2807e29f4c13049d6d87031a3c110744495cb082
-e git+https://github.com/acme/tool.git#egg=tool
mypkg @ https://example.com/mypkg-1.0.tar.gz
"#;

    #[test]
    fn requirements_txt() {
        let out = scan(REQUIREMENTS, None);
        assert_eq!(out.format, "requirements.txt");
        assert_eq!(
            names(&out),
            vec![
                ("Django", "4.2.3"),
                ("PyYAML", "5.3.1"),
                ("certifi", "2023.7.22"),
                ("requests", "2.30.0"),
                ("urllib3", "1.26.18"),
            ]
        );
        assert_eq!(
            out.unpinned,
            vec![
                "flask>=2.0".to_string(),
                "jinja2==3.1.*".to_string(),
                "numpy".to_string(),
                "mypkg @ https://example.com/mypkg-1.0.tar.gz".to_string(),
            ]
        );
        assert_eq!(
            vulnerable(&out),
            vec![
                ("PyYAML", "5.3.1"),
                ("requests", "2.30.0"),
                ("urllib3", "1.26.18")
            ]
        );
        let urllib3 = &out.vulnerable[2];
        assert_eq!(urllib3.advisories.len(), 1);
        assert_eq!(urllib3.advisories[0].id, "GHSA-34jh-p97f-mpxf");
        assert!(out.packages.iter().all(|p| p.ecosystem == "PyPI"));
    }

    #[test]
    fn empty_inputs_with_explicit_format() {
        let out = scan("", Some("requirements.txt"));
        assert_eq!(out.package_count, 0);
        let out = scan("# only a comment\n", Some("requirements.txt"));
        assert_eq!(out.package_count, 0);
        let out = scan("version = 4\n", Some("Cargo.lock"));
        assert_eq!(out.package_count, 0);
        let out = scan("{\"lockfileVersion\": 3}", Some("package-lock.json"));
        assert_eq!(out.package_count, 0);
    }

    #[test]
    fn errors_name_the_field() {
        let e = |content: &str, format: Option<&str>| {
            scan_lockfile(&ScanLockfileArgs {
                content: content.into(),
                format: format.map(str::to_string),
            })
            .unwrap_err()
        };
        let err = e("", None);
        assert_eq!(err.field, "format");
        assert_eq!(e("<html>not a lockfile</html>", None).field, "format");
        assert_eq!(e("{\"a\": 1}", None).field, "format");
        let err = e("x", Some("yarn.lock"));
        assert_eq!(err.field, "format");
        assert!(err.message.contains("requirements.txt"));
        assert_eq!(e("[[package]\nname=", Some("Cargo.lock")).field, "content");
        assert_eq!(e("{not json", Some("package-lock.json")).field, "content");
        assert_eq!(e("[1, 2]", Some("package-lock.json")).field, "content");
        assert_eq!(
            e(&"a".repeat(MAX_CONTENT_BYTES + 1), Some("requirements.txt")).field,
            "content"
        );
    }

    #[test]
    fn detection() {
        assert_eq!(detect(CARGO_LOCK), Some(Format::CargoLock));
        assert_eq!(detect(PACKAGE_LOCK_V1), Some(Format::PackageLock));
        assert_eq!(detect(REQUIREMENTS), Some(Format::Requirements));
        assert_eq!(detect("just some prose, not requirements at all"), None);
        assert_eq!(detect("# comment\n\n"), None);
    }

    #[test]
    fn long_lists_are_capped_with_every_package_counted() {
        let pins: String = (0..MAX_PACKAGES + 2000)
            .map(|i| format!("p{i}==1.0\n"))
            .collect();
        let loose: String = (0..MAX_FINDINGS + 500).map(|i| format!("q{i}\n")).collect();
        let out = scan(&format!("{pins}{loose}"), Some("requirements.txt"));
        assert_eq!(out.packages.len(), MAX_PACKAGES);
        assert_eq!(out.package_count, MAX_PACKAGES + 2000);
        assert_eq!(out.unpinned.len(), MAX_FINDINGS);
        assert!(out.truncated);
        assert!(!scan("a==1.0\n", None).truncated);
    }
}
