//! Lookups against the bundled snapshot (hits, misses, every range rule), name and version
//! handling per ecosystem, CVSS scores and the argument errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{
    cvss::cvss3_base_score,
    snapshot::{DB, OsvRecord, build_db},
    version::{PepVersion, parse_semverish},
    *,
};
use crate::tools::{error::ToolInputError, security::severity::Severity};

fn check(eco: &str, name: &str, version: &str) -> CheckPackageOutput {
    check_package(&CheckPackageArgs {
        ecosystem: eco.into(),
        name: name.into(),
        version: version.into(),
    })
    .unwrap()
}

fn ids(out: &CheckPackageOutput) -> Vec<&str> {
    out.advisories.iter().map(|a| a.id.as_str()).collect()
}

fn err(eco: &str, name: &str, version: &str) -> ToolInputError {
    check_package(&CheckPackageArgs {
        ecosystem: eco.into(),
        name: name.into(),
        version: version.into(),
    })
    .unwrap_err()
}

#[test]
fn snapshot_loads_completely() {
    assert!(advisory_count() >= 30, "{}", advisory_count());
    assert!(DB.unparsed.is_empty(), "{:?}", DB.unparsed);
    // Every record has at least one interval or version for a supported ecosystem.
    for (i, adv) in DB.advisories.iter().enumerate() {
        let covered = DB
            .index
            .values()
            .flatten()
            .any(|e| e.advisory == i && (!e.intervals.is_empty() || !e.versions.is_empty()));
        assert!(covered, "{} has no usable range", adv.id);
    }
    let ids: std::collections::HashSet<_> = DB.advisories.iter().map(|a| &a.id).collect();
    assert_eq!(ids.len(), advisory_count(), "duplicate ids");
    assert_eq!(snapshot_date(), "2024-06-17");
}

#[test]
fn lodash_hit_and_miss() {
    let out = check("npm", "lodash", "4.17.11");
    assert!(out.vulnerable);
    assert_eq!(
        ids(&out),
        vec![
            "GHSA-35jh-r3h4-6jhm",
            "GHSA-jf85-cpcp-j695",
            "GHSA-p6mc-m468-83gw"
        ]
    );
    let defaults_deep = &out.advisories[1];
    assert_eq!(defaults_deep.fixed_in.as_deref(), Some("4.17.12"));
    assert_eq!(defaults_deep.severity, Severity::Critical);
    assert_eq!(defaults_deep.aliases, vec!["CVE-2019-10744".to_string()]);
    assert_eq!(out.snapshot_date, snapshot_date());

    let out = check("npm", "lodash", "4.17.21");
    assert!(!out.vulnerable);
    assert!(out.advisories.is_empty());
    assert!(!check("npm", "left-pad", "1.3.0").vulnerable);
}

#[test]
fn introduced_inclusive_fixed_exclusive() {
    // tokio RUSTSEC-2021-0124: [0.1.14, 1.8.4) and [1.9.0, 1.13.1)
    let hit = |v: &str| ids(&check("crates.io", "tokio", v)).contains(&"RUSTSEC-2021-0124");
    assert!(!hit("0.1.13"));
    assert!(hit("0.1.14"));
    assert!(hit("1.8.3"));
    assert!(!hit("1.8.4"));
    assert!(!hit("1.8.5"));
    assert!(hit("1.9.0"));
    assert!(hit("1.13.0"));
    assert!(!hit("1.13.1"));
    assert!(!hit("1.40.0"));
    let out = check("crates.io", "tokio", "1.9.0");
    let adv = out
        .advisories
        .iter()
        .find(|a| a.id == "RUSTSEC-2021-0124")
        .unwrap();
    assert_eq!(adv.fixed_in.as_deref(), Some("1.13.1"));
    let out = check("crates.io", "tokio", "1.8.0");
    let adv = out
        .advisories
        .iter()
        .find(|a| a.id == "RUSTSEC-2021-0124")
        .unwrap();
    assert_eq!(adv.fixed_in.as_deref(), Some("1.8.4"));
}

#[test]
fn last_affected_inclusive() {
    let jwt = |v: &str| check("Go", "github.com/dgrijalva/jwt-go", v);
    let out = jwt("v3.2.0");
    assert_eq!(ids(&out), vec!["GHSA-w73w-5m7g-f7qc"]);
    assert_eq!(out.advisories[0].fixed_in, None);
    assert!(jwt("3.1.0").vulnerable);
    assert!(!jwt("v3.2.1").vulnerable);
    // Before the introducing pseudo-version.
    assert!(!jwt("v0.0.0-20150101000000-abcdefabcdef").vulnerable);
    assert!(jwt("v0.0.0-20160101000000-abcdefabcdef").vulnerable);
    // The /v4 module is separate and fixed in a pre-release.
    let v4 = |v: &str| check("Go", "github.com/dgrijalva/jwt-go/v4", v);
    assert!(v4("v4.0.0-preview0").vulnerable);
    assert!(!v4("v4.0.0-preview1").vulnerable);
}

#[test]
fn open_ranges_and_versions_list() {
    let records: Vec<OsvRecord> = serde_json::from_str(
        r#"[{"id":"TEST-1","summary":"s","affected":[{"package":{"ecosystem":"npm","name":"pkg"},
                 "ranges":[{"type":"SEMVER","events":[{"introduced":"2.0.0"}]}],
                 "versions":["1.5.0"]}]}]"#,
    )
    .unwrap();
    let db = build_db(records);
    let entry = &db.index[&(Ecosystem::Npm, "pkg".to_string())][0];
    let v = |s: &str| Ecosystem::Npm.parse_version(s).unwrap();
    assert!(entry.intervals[0].contains(&v("2.0.0")));
    assert!(entry.intervals[0].contains(&v("99.0.0")));
    assert!(!entry.intervals[0].contains(&v("1.9.9")));
    assert!(entry.versions.contains(&v("1.5.0")));
    assert_eq!(db.advisories[0].severity, Severity::Medium);
}

#[test]
fn multiple_release_lines() {
    // minimist GHSA-xvch-5gv4-984h: < 0.2.4 and [1.0.0, 1.2.6)
    let hit = |v: &str| check("npm", "minimist", v).vulnerable;
    assert!(hit("0.0.8"));
    assert!(!hit("0.2.4"));
    assert!(hit("1.2.5"));
    assert!(!hit("1.2.6"));
    let out = check("npm", "minimist", "0.2.1");
    assert_eq!(out.advisories[0].fixed_in.as_deref(), Some("0.2.4"));
    // time RUSTSEC-2020-0071: 0.2.0..=0.2.6 unaffected.
    let time = |v: &str| check("crates.io", "time", v).vulnerable;
    assert!(time("0.1.45"));
    assert!(!time("0.2.0"));
    assert!(!time("0.2.6"));
    assert!(time("0.2.7"));
    assert!(!time("0.2.23"));
    assert!(!time("0.3.36"));
}

#[test]
fn prerelease_ordering_npm() {
    // express: [5.0.0-alpha.1, 5.0.0-beta.3) and < 4.19.2
    let hit = |v: &str| check("npm", "express", v).vulnerable;
    assert!(hit("4.19.1"));
    assert!(!hit("4.19.2"));
    assert!(!hit("5.0.0-alpha.0"));
    assert!(hit("5.0.0-alpha.1"));
    assert!(hit("5.0.0-beta.2"));
    assert!(!hit("5.0.0-beta.3"));
    assert!(!hit("5.0.0"));
    // Build metadata does not change precedence.
    assert!(hit("4.19.1+build.7"));
}

#[test]
fn pypi_names_and_versions() {
    let out = check("pypi", "pyyaml", "5.3.1");
    assert_eq!(out.ecosystem, "PyPI");
    assert_eq!(out.name, "pyyaml");
    assert_eq!(ids(&out), vec!["GHSA-8q59-q68h-6hv4"]);
    assert_eq!(out.advisories[0].fixed_in.as_deref(), Some("5.4"));
    assert!(check("PyPI", "PyYAML", "5.4b2").vulnerable);
    assert!(!check("PyPI", "PyYAML", "5.4").vulnerable);
    assert!(!check("PyPI", "PyYAML", "5.4.0").vulnerable);
    assert!(!check("PyPI", "PyYAML", "5.4.1").vulnerable);
    assert!(check("PyPI", "PyYAML", "5.3.99").vulnerable);
    assert!(!check("PyPI", "PyYAML", "6.0").vulnerable);
    // Case normalisation.
    assert!(check("PyPI", "JINJA2", "3.1.2").vulnerable);
    assert!(check("pypi", "Django", "4.2.2").vulnerable);
    assert!(!check("pypi", "django", "4.2.3").vulnerable);
    assert!(!check("pypi", "django", "4.1.10").vulnerable);
    assert!(check("pypi", "django", "3.2.19").vulnerable);
    assert!(!check("pypi", "django", "3.1.14").vulnerable);
    // Werkzeug with a post release and a local label.
    assert!(check("PyPI", "werkzeug", "3.0.2.post1").vulnerable);
    assert!(!check("PyPI", "werkzeug", "3.0.3+local.1").vulnerable);
    // certifi's zero-padded calendar versions.
    assert!(check("PyPI", "certifi", "2023.5.7").vulnerable);
    assert!(!check("PyPI", "certifi", "2023.07.22").vulnerable);
    assert!(!check("PyPI", "certifi", "2014.12.1").vulnerable);
    // urllib3 two lines.
    let u = check("PyPI", "urllib3", "1.26.16");
    assert_eq!(
        ids(&u),
        vec![
            "GHSA-34jh-p97f-mpxf",
            "GHSA-g4mx-q9vg-27p4",
            "GHSA-v845-jxx5-vc9f"
        ]
    );
    let u = check("PyPI", "urllib3", "2.0.6");
    assert_eq!(ids(&u), vec!["GHSA-34jh-p97f-mpxf", "GHSA-g4mx-q9vg-27p4"]);
    assert!(!check("PyPI", "urllib3", "2.2.2").vulnerable);
}

#[test]
fn pypi_name_normalisation() {
    assert_eq!(
        Ecosystem::PyPi.normalize_name("Foo__Bar.baz"),
        "foo-bar-baz"
    );
    assert_eq!(Ecosystem::PyPi.normalize_name("PyYAML"), "pyyaml");
    assert_eq!(
        Ecosystem::CratesIo.normalize_name("Crossbeam_Deque"),
        "crossbeam-deque"
    );
    assert!(check("crates.io", "crossbeam_deque", "0.8.0").vulnerable);
    assert_eq!(Ecosystem::Npm.normalize_name("Lodash"), "lodash");
}

#[test]
fn pep440_ordering() {
    let p = |s: &str| PepVersion::parse(s).unwrap();
    let ordered = [
        "1.0.dev0",
        "1.0a1.dev0",
        "1.0a1",
        "1.0a2",
        "1.0b1",
        "1.0rc1",
        "1.0",
        "1.0.post1.dev0",
        "1.0.post1",
        "1.0.1",
        "1.1",
        "2!0.1",
    ];
    for w in ordered.windows(2) {
        assert!(p(w[0]) < p(w[1]), "{} < {}", w[0], w[1]);
    }
    assert_eq!(p("1.0"), p("1.0.0"));
    assert_eq!(p("1.0-1"), p("1.0.post1"));
    assert_eq!(p("1.0-RC.1"), p("1.0rc1"));
    assert_eq!(p("1.0alpha1"), p("1.0a1"));
    assert_eq!(p("v2.3"), p("2.3"));
    assert_eq!(p("1.0c1"), p("1.0rc1"));
    for bad in [
        "", "abc", "1..0", "1.0+", "1.0 beta", "^1.0", ">=2", "1.*", "1.0.0.x",
    ] {
        assert!(PepVersion::parse(bad).is_none(), "{bad}");
    }
}

#[test]
fn semverish_parsing() {
    let s = |v: &str| parse_semverish(v).unwrap().to_string();
    assert_eq!(s("v1.2.3"), "1.2.3");
    assert_eq!(s("2.3"), "2.3.0");
    assert_eq!(s("2"), "2.0.0");
    assert_eq!(s("1.0-beta"), "1.0.0-beta");
    assert_eq!(s("v2.0.0+incompatible"), "2.0.0+incompatible");
    for bad in [
        "", "v", "1.2.3.4", "^1.2", "1.x", "latest", "01.2.3", "1..2",
    ] {
        assert!(parse_semverish(bad).is_none(), "{bad}");
    }
}

#[test]
fn go_versions_and_package_paths() {
    assert!(check("go", "golang.org/x/net", "v0.16.0").vulnerable);
    assert!(check("GO", "golang.org/x/net", "0.22.0").vulnerable);
    assert!(!check("Go", "golang.org/x/net", "v0.23.0").vulnerable);
    let out = check("Go", "golang.org/x/net/http2", "v0.6.0");
    assert_eq!(out.advisories.len(), 3);
    assert_eq!(out.name, "golang.org/x/net/http2");
    assert!(check("Go", "golang.org/x/text/language", "v0.3.7").vulnerable);
    // Major-version suffixes are separate modules.
    assert!(!check("Go", "github.com/dgrijalva/jwt-go/v5", "v5.0.0").vulnerable);
    // Go module paths are case-sensitive.
    assert!(!check("Go", "Golang.org/x/net", "v0.1.0").vulnerable);
}

#[test]
fn cross_ecosystem_record() {
    // Terrapin lists russh (crates.io), golang.org/x/crypto (Go) and paramiko (PyPI).
    assert!(check("crates.io", "russh", "0.40.1").vulnerable);
    assert!(check("Go", "golang.org/x/crypto", "v0.16.0").vulnerable);
    let p = check("PyPI", "paramiko", "3.3.1");
    assert_eq!(ids(&p), vec!["GHSA-45x7-px36-x8w8"]);
    // No database_specific severity: derived from CVSS 5.9 -> medium.
    assert_eq!(p.advisories[0].severity, Severity::Medium);
    assert!(!check("npm", "russh", "0.40.1").vulnerable);
}

#[test]
fn cvss_scores() {
    let s = |v: &str| cvss3_base_score(v).unwrap();
    assert_eq!(s("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), 9.8);
    assert_eq!(s("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"), 7.5);
    assert_eq!(s("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:L/A:N"), 5.3);
    assert_eq!(s("CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"), 6.2);
    assert_eq!(s("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"), 6.1);
    assert_eq!(s("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:N"), 5.9);
    assert_eq!(s("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N"), 0.0);
    assert!(cvss3_base_score("CVSS:3.1/AV:X").is_none());
    let smallvec = check("crates.io", "smallvec", "1.6.0");
    assert_eq!(smallvec.advisories[0].severity, Severity::Critical);
    let hyper = check("crates.io", "hyper", "0.14.9");
    let sev: Vec<_> = hyper.advisories.iter().map(|a| a.severity).collect();
    assert_eq!(sev, vec![Severity::Medium, Severity::Critical]);
}

#[test]
fn invalid_inputs_name_the_field() {
    let e = err("maven", "log4j", "2.14.1");
    assert_eq!(e.field, "ecosystem");
    for eco in SUPPORTED_ECOSYSTEMS {
        assert!(e.message.contains(eco), "{}", e.message);
    }
    assert_eq!(err("npm", "lodash", "^4.17.0").field, "version");
    assert_eq!(err("npm", "lodash", "").field, "version");
    assert_eq!(err("PyPI", "requests", ">=2.0").field, "version");
    assert_eq!(err("npm", "lodash", &"1".repeat(200)).field, "version");
    assert_eq!(err("npm", "", "1.0.0").field, "name");
    assert_eq!(err("npm", "lo dash", "1.0.0").field, "name");
    assert_eq!(err("npm", &"a".repeat(300), "1.0.0").field, "name");
}

#[test]
fn args_schema_shape() {
    let r: Result<CheckPackageArgs, _> =
        serde_json::from_str(r#"{"ecosystem":"npm","name":"x","version":"1.0.0","extra":true}"#);
    assert!(r.is_err());
    let out = check("npm", "axios", "1.5.1");
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["snapshotDate"], "2024-06-17");
    assert_eq!(json["advisories"][0]["fixedIn"], "1.6.0");
    assert_eq!(json["advisories"][0]["severity"], "medium");
}
