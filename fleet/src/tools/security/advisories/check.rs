//! `check_package` itself: validates the arguments, normalises the name and parses the
//! version as the ecosystem does, and looks them up in the bundled snapshot.

use super::{
    ecosystem::{Ecosystem, validate_name},
    lookup::lookup,
    schema::{CheckPackageArgs, CheckPackageOutput},
    snapshot::DB,
};
use crate::tools::error::ToolInputError;

/// Date of the newest advisory in the bundled snapshot.
const SNAPSHOT_DATE: &str = "2024-06-17";

/// Looks `args` up in the bundled advisory snapshot.
pub fn check_package(args: &CheckPackageArgs) -> Result<CheckPackageOutput, ToolInputError> {
    let ecosystem = Ecosystem::parse(&args.ecosystem)?;
    let name = validate_name("name", &args.name)?;
    let version_str = args.version.trim();
    let version = ecosystem.parse_version_arg("version", version_str)?;
    let normalized = ecosystem.normalize_name(name);
    let advisories = lookup(ecosystem, &normalized, &version);
    Ok(CheckPackageOutput {
        ecosystem: ecosystem.as_str().to_string(),
        name: normalized,
        version: version_str.to_string(),
        vulnerable: !advisories.is_empty(),
        advisories,
        snapshot_date: SNAPSHOT_DATE.to_string(),
    })
}

/// Number of advisories in the bundled snapshot.
pub fn advisory_count() -> usize {
    DB.advisories.len()
}

/// Date of the newest advisory in the bundled snapshot (`YYYY-MM-DD`).
pub fn snapshot_date() -> &'static str {
    SNAPSHOT_DATE
}
