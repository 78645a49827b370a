//! `scan_secrets`: finds credentials in a piece of text (a source file, a config file, a log).
//!
//! Rules (ids as reported in `rule`):
//!
//! | rule | matches | severity |
//! | --- | --- | --- |
//! | `aws-access-key-id` | `AKIA`/`ASIA` + 16 upper-case alphanumerics | high |
//! | `aws-secret-access-key` | 40-char base64 value assigned to an `aws_secret_access_key`-like name | critical |
//! | `github-token` | `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` tokens and `github_pat_` fine-grained tokens | critical |
//! | `private-key` | a PEM `-----BEGIN … PRIVATE KEY-----` block | critical |
//! | `slack-token` | `xoxb-`/`xoxp-`/`xoxa-`/`xoxr-`/`xoxs-` tokens | high |
//! | `slack-webhook` | `https://hooks.slack.com/services/T…/B…/…` | high |
//! | `jwt` | three base64url segments whose first two start with `eyJ` | medium |
//! | `generic-high-entropy` | a value of 16+ characters assigned to a name containing `secret`, `token`, `password`, `api_key`, … whose Shannon entropy is at least [`ENTROPY_THRESHOLD`] bits per character and which mixes letters and digits | medium |
//!
//! Positions: `line` and `column` are 1-based; `column` counts characters (not bytes) and
//! points at the first character of the secret itself (for assignments, the value, not the
//! name). The secret is never echoed: `redacted` keeps its first four characters (fewer for
//! matches under 16 characters: at most a quarter), then `…`, then its length.
//!
//! False positives: placeholders such as AWS's documented `AKIAIOSFODNN7EXAMPLE` are still
//! reported, but with `likelyExample: true` (the match or its line mentions `example`,
//! `dummy`, `sample`, `fake`, `placeholder`, …, or is a long run of one character, or the
//! given `path` looks like an example/fixture file). Generic assignments whose value is an
//! obvious placeholder (`changeme`, `<token>`, `${VAR}`, all-`x`) are not reported at all.

use std::sync::LazyLock;

use regex::Regex;

use super::{
    severity::Severity,
    text::{MAX_CONTENT_BYTES, check_len, count_lines, count_newlines},
};
use crate::tools::error::ToolInputError;

/// Minimum Shannon entropy, in bits per character, for the `generic-high-entropy` rule.
/// Random base64 scores about 5–6, random hex about 3.7–4, English words and identifiers
/// usually 2.5–3.5; 3.5 keeps hex secrets while dropping most prose-like values.
pub const ENTROPY_THRESHOLD: f64 = 3.5;

/// Minimum length of a value for the `generic-high-entropy` rule.
pub const GENERIC_MIN_LEN: usize = 16;

/// Findings past this many are dropped and `truncated` is set (the cap every security tool
/// shares).
pub use super::text::MAX_FINDINGS;

const MAX_PATH_BYTES: usize = 4096;

/// Arguments of `scan_secrets`.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScanSecretsArgs {
    /// Text to scan, e.g. the contents of one source or config file. At most 1 MiB.
    pub content: String,
    /// Where the text came from (e.g. `config/.env.example`). Optional; only used to mark
    /// findings in example, sample or fixture files as `likelyExample`. At most 4096 bytes.
    #[serde(default)]
    pub path: Option<String>,
}

/// One suspected secret.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretFinding {
    /// Rule id, e.g. `aws-access-key-id` or `generic-high-entropy`.
    pub rule: String,
    /// What the rule detects.
    pub description: String,
    /// 1-based line of the first character of the secret.
    pub line: usize,
    /// 1-based column, in characters, of the first character of the secret.
    pub column: usize,
    /// The secret with everything after its first four characters hidden, plus its length,
    /// e.g. `AKIA…(20 chars)`.
    pub redacted: String,
    /// How serious a leak of this kind usually is.
    pub severity: Severity,
    /// True when the match looks like a documentation placeholder rather than a live secret.
    pub likely_example: bool,
}

/// Result of `scan_secrets`.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanSecretsOutput {
    /// The `path` argument, echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Findings ordered by position.
    pub findings: Vec<SecretFinding>,
    /// Number of lines in `content`.
    pub lines_scanned: usize,
    /// Number of bytes in `content`.
    pub bytes_scanned: usize,
    /// True when more than 1000 findings were found and the rest were dropped.
    pub truncated: bool,
}

struct Rule {
    id: &'static str,
    description: &'static str,
    severity: Severity,
    regex: &'static LazyLock<Regex>,
    /// Capture group holding the secret (0 = whole match).
    group: usize,
    /// Run on the ASCII-lower-cased text: the case-insensitive rules are written in lower
    /// case so their keyword literals can drive the regex prefilter (a `(?i)` pattern has
    /// too many case variants for it). Byte offsets are the same in both texts.
    lowercase: bool,
}

fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in secret pattern is a valid regex")
}

static AWS_KEY_ID: LazyLock<Regex> = LazyLock::new(|| compile(r"\b((?:AKIA|ASIA)[A-Z0-9]{16})\b"));
static AWS_SECRET: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r#"(?:aws[_.-]?secret[_.-]?(?:access[_.-]?)?key|secret[_.-]?access[_.-]?key)["']?\s*(?::=|=>|:|=)\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
    )
});
static GITHUB: LazyLock<Regex> = LazyLock::new(|| {
    compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{50,255})\b")
});
static PEM: LazyLock<Regex> =
    LazyLock::new(|| compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"));
static PEM_END: LazyLock<Regex> =
    LazyLock::new(|| compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"));
static SLACK_TOKEN: LazyLock<Regex> =
    LazyLock::new(|| compile(r"\b(xox[abprs]-[A-Za-z0-9]{8,}(?:-[A-Za-z0-9]+)+)\b"));
static SLACK_WEBHOOK: LazyLock<Regex> = LazyLock::new(|| {
    compile(r"(https://hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{16,})")
});
static JWT: LazyLock<Regex> =
    LazyLock::new(|| compile(r"\b(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"));
static GENERIC: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r#"(?:secret|token|passw(?:or)?d|pwd|api[_.-]?key|apikey|access[_.-]?key|auth[_.-]?key|private[_.-]?key|credential)[a-z0-9_.-]*["']?\s*(?::=|=>|:|=)\s*["'`]?([A-Za-z0-9+/=_\-.~!@#$%^&*]{16,512})"#,
    )
});

static RULES: [Rule; 8] = [
    Rule {
        id: "private-key",
        description: "PEM-encoded private key block",
        severity: Severity::Critical,
        regex: &PEM,
        group: 0,
        lowercase: false,
    },
    Rule {
        id: "aws-secret-access-key",
        description: "AWS secret access key assigned to an aws_secret_access_key-like name",
        severity: Severity::Critical,
        regex: &AWS_SECRET,
        group: 1,
        lowercase: true,
    },
    Rule {
        id: "github-token",
        description: "GitHub personal access, OAuth, app or refresh token",
        severity: Severity::Critical,
        regex: &GITHUB,
        group: 1,
        lowercase: false,
    },
    Rule {
        id: "aws-access-key-id",
        description: "AWS access key id (long-term AKIA or temporary ASIA)",
        severity: Severity::High,
        regex: &AWS_KEY_ID,
        group: 1,
        lowercase: false,
    },
    Rule {
        id: "slack-token",
        description: "Slack bot, user, app or refresh token",
        severity: Severity::High,
        regex: &SLACK_TOKEN,
        group: 1,
        lowercase: false,
    },
    Rule {
        id: "slack-webhook",
        description: "Slack incoming webhook URL",
        severity: Severity::High,
        regex: &SLACK_WEBHOOK,
        group: 1,
        lowercase: false,
    },
    Rule {
        id: "jwt",
        description: "JSON Web Token (may carry a live session or API credential)",
        severity: Severity::Medium,
        regex: &JWT,
        group: 1,
        lowercase: false,
    },
    Rule {
        id: "generic-high-entropy",
        description: "High-entropy value assigned to a secret-like name (password, token, api key, ...)",
        severity: Severity::Medium,
        regex: &GENERIC,
        group: 1,
        lowercase: true,
    },
];

/// Markers that make a match (or its line) look like documentation rather than a live secret.
const EXAMPLE_MARKERS: [&str; 9] = [
    "example",
    "dummy",
    "sample",
    "placeholder",
    "fake",
    "changeme",
    "redacted",
    "your_",
    "xxxxxxxx",
];

/// Payload of the jwt.io sample token, seen in countless docs and tests.
const JWT_IO_SAMPLE_PAYLOAD: &str =
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ";

/// Scans `args.content` for secrets. See the module docs for the rules.
pub fn scan_secrets(args: &ScanSecretsArgs) -> Result<ScanSecretsOutput, ToolInputError> {
    check_len("content", &args.content, MAX_CONTENT_BYTES)?;
    if let Some(path) = &args.path {
        check_len("path", path, MAX_PATH_BYTES)?;
    }
    let text = args.content.as_str();
    let example_path = args.path.as_deref().is_some_and(path_looks_like_example);

    // (start, end) byte spans already reported, so the generic rule does not repeat a
    // specific rule's finding and the same span is never reported twice.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut raw: Vec<(usize, usize, &Rule, bool)> = Vec::new();
    let mut truncated = false;

    let lowered = text.to_ascii_lowercase();
    'rules: for rule in &RULES {
        let is_generic = rule.id == "generic-high-entropy";
        let haystack = if rule.lowercase { &lowered } else { text };
        for caps in rule.regex.captures_iter(haystack) {
            let Some(m) = caps.get(rule.group) else {
                continue;
            };
            let (start, mut end) = (m.start(), m.end());
            let secret = &text[start..end];
            if rule.id == "private-key" {
                // Cover the whole block when its END line is present.
                if let Some(e) = PEM_END.find(&text[end..]) {
                    end += e.end();
                }
            }
            if spans.iter().any(|&(s, e)| start < e && s < end) {
                continue;
            }
            if is_generic && !generic_value_qualifies(secret) {
                continue;
            }
            if raw.len() >= MAX_FINDINGS {
                truncated = true;
                break 'rules;
            }
            let likely_example =
                example_path || looks_like_example(secret, line_context(text, start));
            raw.push((start, end, rule, likely_example));
            spans.push((start, end));
        }
    }
    raw.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.id.cmp(b.2.id)));

    // Positions in one forward pass (findings are sorted), so long single-line inputs
    // with many findings stay linear.
    let (mut offset, mut line, mut column) = (0usize, 1usize, 1usize);
    let findings = raw
        .into_iter()
        .map(|(start, end, rule, likely_example)| {
            let gap = &text[offset..start];
            match gap.rfind('\n') {
                Some(last_newline) => {
                    line += count_newlines(gap);
                    column = gap[last_newline + 1..].chars().count() + 1;
                }
                None => column += gap.chars().count(),
            }
            offset = start;
            SecretFinding {
                rule: rule.id.to_string(),
                description: rule.description.to_string(),
                line,
                column,
                redacted: redact(&text[start..end]),
                severity: rule.severity,
                likely_example,
            }
        })
        .collect();
    Ok(ScanSecretsOutput {
        path: args.path.clone(),
        findings,
        lines_scanned: count_lines(text),
        bytes_scanned: text.len(),
        truncated,
    })
}

/// First four characters, `…`, and the length in characters. Never more of the secret.
pub fn redact(secret: &str) -> String {
    let len = secret.chars().count();
    let keep: String = secret.chars().take(4.min(len / 4)).collect();
    format!("{keep}…({len} chars)")
}

/// Shannon entropy of `s` in bits per character.
pub fn shannon_entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    let mut other: std::collections::BTreeMap<char, u32> = std::collections::BTreeMap::new();
    let mut total = 0u32;
    for c in s.chars() {
        total += 1;
        if (c as u32) < 256 {
            counts[c as usize] += 1;
        } else {
            *other.entry(c).or_insert(0) += 1;
        }
    }
    if total == 0 {
        return 0.0;
    }
    let n = f64::from(total);
    counts
        .iter()
        .copied()
        .chain(other.values().copied())
        .filter(|&c| c > 0)
        .map(|c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

fn generic_value_qualifies(value: &str) -> bool {
    // Trailing punctuation picked up from code (`"...";`) is not part of the value.
    let value = value.trim_end_matches(['.', ',', ';']);
    if value.chars().count() < GENERIC_MIN_LEN {
        return false;
    }
    let lower = value.to_ascii_lowercase();
    if EXAMPLE_MARKERS.iter().any(|m| lower.contains(m))
        || lower.contains("process.env")
        || lower.contains("os.environ")
        || lower.starts_with("http")
        || is_one_char_run(value)
    {
        return false;
    }
    let has_digit = value.bytes().any(|b| b.is_ascii_digit());
    let has_alpha = value.bytes().any(|b| b.is_ascii_alphabetic());
    has_digit && has_alpha && shannon_entropy(value) >= ENTROPY_THRESHOLD
}

fn is_one_char_run(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => {
            let rest = s.chars().filter(|&c| c == first).count();
            rest * 10 >= s.chars().count() * 8
        }
        None => true,
    }
}

fn looks_like_example(secret: &str, line: &str) -> bool {
    let lower_line = line.to_ascii_lowercase();
    EXAMPLE_MARKERS.iter().any(|m| lower_line.contains(m))
        || secret.contains(JWT_IO_SAMPLE_PAYLOAD)
        || has_long_run(secret, 8)
}

fn has_long_run(s: &str, n: usize) -> bool {
    let mut prev = None;
    let mut run = 0;
    for c in s.chars() {
        if Some(c) == prev {
            run += 1;
            if run >= n {
                return true;
            }
        } else {
            prev = Some(c);
            run = 1;
        }
    }
    false
}

fn path_looks_like_example(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [
        "example",
        "sample",
        "fixture",
        "testdata",
        "mock",
        ".template",
        ".dist",
    ]
    .iter()
    .any(|m| lower.contains(m))
}

/// The line around byte `offset`, limited to 256 bytes either side (enough to see an
/// `example` marker, cheap on minified single-line inputs).
fn line_context(text: &str, offset: usize) -> &str {
    let mut lo = offset.saturating_sub(256);
    while !text.is_char_boundary(lo) {
        lo += 1;
    }
    let mut hi = (offset + 256).min(text.len());
    while !text.is_char_boundary(hi) {
        hi -= 1;
    }
    let start = text[lo..offset].rfind('\n').map_or(lo, |i| lo + i + 1);
    let end = text[offset..hi].find('\n').map_or(hi, |i| offset + i);
    &text[start..end]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn scan(content: &str) -> ScanSecretsOutput {
        scan_secrets(&ScanSecretsArgs {
            content: content.to_string(),
            path: None,
        })
        .unwrap()
    }

    fn rules(out: &ScanSecretsOutput) -> Vec<&str> {
        out.findings.iter().map(|f| f.rule.as_str()).collect()
    }

    /// Assembled at run time so this file itself does not trip secret scanners.
    fn fake(prefix: &str, body: &str) -> String {
        format!("{prefix}{body}")
    }

    const B36: &str = "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8";

    #[test]
    fn aws_access_key_id_with_position() {
        let key = fake("AKIA", "Z7Q3KX2LMN4PR5TW");
        let content = format!("# config\n  let id = \"{key}\";\n");
        let out = scan(&content);
        assert_eq!(rules(&out), vec!["aws-access-key-id"]);
        let f = &out.findings[0];
        assert_eq!((f.line, f.column), (2, 13));
        assert_eq!(f.severity, Severity::High);
        assert!(!f.likely_example);
        assert_eq!(f.redacted, "AKIA…(20 chars)");
        // Temporary credentials too.
        assert_eq!(
            rules(&scan(&fake("ASIA", "Z7Q3KX2LMN4PR5TW"))),
            vec!["aws-access-key-id"]
        );
    }

    #[test]
    fn aws_documented_example_is_flagged_as_example() {
        let out = scan("aws_access_key_id = AKIAIOSFODNN7EXAMPLE");
        assert_eq!(rules(&out), vec!["aws-access-key-id"]);
        assert!(out.findings[0].likely_example);
    }

    #[test]
    fn aws_key_id_negatives() {
        // Too short, lower case, embedded in a longer word.
        let out = scan("AKIA1234 akiaz7q3kx2lmn4pr5tw XAKIAZ7Q3KX2LMN4PR5TWQ");
        assert!(out.findings.is_empty(), "{:?}", out.findings);
    }

    #[test]
    fn aws_secret_access_key_assignment() {
        let secret = fake("wJalrXUtnFEMI/K7MDENG/", "bPxRfiCYzQ8r3Lk2Pq9Zx");
        assert_eq!(secret.len(), 43);
        let secret = &secret[..40];
        let content = format!("[default]\naws_secret_access_key = {secret}\n");
        let out = scan(&content);
        assert_eq!(rules(&out), vec!["aws-secret-access-key"]);
        let f = &out.findings[0];
        assert_eq!((f.line, f.column), (2, 25));
        assert_eq!(f.severity, Severity::Critical);
        assert!(!f.redacted.contains(&secret[4..]));
        // camelCase and quoted JSON form.
        let json = format!("{{\"awsSecretAccessKey\": \"{secret}\"}}");
        assert_eq!(rules(&scan(&json)), vec!["aws-secret-access-key"]);
        // A 40-char value under an unrelated name is not an AWS secret (may be generic).
        let other = format!("checksum = {secret}");
        assert!(!rules(&scan(&other)).contains(&"aws-secret-access-key"));
    }

    #[test]
    fn github_tokens() {
        for prefix in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
            let tok = fake(prefix, B36);
            let out = scan(&format!("token: {tok}"));
            assert_eq!(rules(&out), vec!["github-token"], "{prefix}");
            assert_eq!(out.findings[0].column, 8);
        }
        let pat = fake(
            "github_pat_",
            &format!("11ABCDEFG0{}_{}", "x1Y2z3".repeat(2), B36.repeat(2)),
        );
        assert_eq!(rules(&scan(&pat)), vec!["github-token"]);
        // Too short / wrong prefix.
        assert!(
            scan("ghp_short ghx_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8")
                .findings
                .is_empty()
        );
    }

    #[test]
    fn pem_private_key_block() {
        let content = "const A = 1;\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----\n";
        let out = scan(content);
        assert_eq!(rules(&out), vec!["private-key"]);
        let f = &out.findings[0];
        assert_eq!((f.line, f.column), (2, 1));
        assert!(f.redacted.starts_with("----…("));
        assert!(!f.redacted.contains("MIIE"));
        for kind in ["", "EC ", "OPENSSH ", "ENCRYPTED ", "DSA "] {
            let c = format!("-----BEGIN {kind}PRIVATE KEY-----\nabc\n");
            assert_eq!(rules(&scan(&c)), vec!["private-key"], "{kind}");
        }
        // Public keys and certificates are fine.
        let public = "-----BEGIN PUBLIC KEY-----\nabc\n-----BEGIN CERTIFICATE-----\n";
        assert!(scan(public).findings.is_empty());
    }

    #[test]
    fn jwt_detected_and_sample_marked() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIiwiZXhwIjoxOTAwMDAwMDAwfQ.Qm9ndXNTaWduYXR1cmVWYWx1ZQ";
        let out = scan(&format!("Authorization: Bearer {jwt}"));
        assert_eq!(rules(&out), vec!["jwt"]);
        assert!(!out.findings[0].likely_example);
        assert_eq!(out.findings[0].column, 23);
        let sample = format!(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{JWT_IO_SAMPLE_PAYLOAD}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        );
        let out = scan(&sample);
        assert_eq!(rules(&out), vec!["jwt"]);
        assert!(out.findings[0].likely_example);
        // Two segments only, or not starting with eyJ.
        assert!(
            scan("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0")
                .findings
                .is_empty()
        );
        assert!(
            scan("abcdefghijk.lmnopqrstuv.wxyzabcdefg")
                .findings
                .is_empty()
        );
    }

    #[test]
    fn slack_token_and_webhook() {
        let tok = fake(
            "xoxb-",
            "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        );
        assert_eq!(rules(&scan(&format!("SLACK={tok}"))), vec!["slack-token"]);
        let hook = fake(
            "https://hooks.slack.com/services/",
            "T00AB1234/B01CD5678/AbCdEfGhIjKlMnOpQrStUvWx",
        );
        assert_eq!(
            rules(&scan(&format!("url = \"{hook}\""))),
            vec!["slack-webhook"]
        );
        assert!(scan("xoxb-short").findings.is_empty());
    }

    #[test]
    fn generic_high_entropy_assignment() {
        let value = "q8Zr3Lk2Pq9ZxT7vN4mB1cW6";
        let out = scan(&format!("DB_PASSWORD={value}\n"));
        assert_eq!(rules(&out), vec!["generic-high-entropy"]);
        let f = &out.findings[0];
        assert_eq!((f.line, f.column), (1, 13));
        assert_eq!(f.redacted, "q8Zr…(24 chars)");
        let out = scan(&format!("  \"api_key\": \"{value}\","));
        assert_eq!(rules(&out), vec!["generic-high-entropy"]);
        assert_eq!(out.findings[0].column, 15);
    }

    #[test]
    fn generic_negatives() {
        let cases = [
            "password = \"changeme-changeme-123\"",          // placeholder
            "token = get_token_from_vault(name)",            // call, not literal
            "secret_key = settings.SECRET_KEY_FROM_ENV_VAR", // no digit
            "password: aaaaaaaaaaaaaaaaaaaaaaaa1",           // low entropy
            "api_key = ${API_KEY_FROM_ENVIRONMENT_1}",       // interpolation
            "token = short1",                                // too short
            "description = \"an ordinary sentence 42 here\"", // no secret-like name
        ];
        for c in cases {
            assert!(scan(c).findings.is_empty(), "{c}: {:?}", scan(c).findings);
        }
    }

    #[test]
    fn specific_rule_wins_over_generic() {
        let tok = fake("ghp_", B36);
        let out = scan(&format!("GITHUB_TOKEN={tok}"));
        assert_eq!(rules(&out), vec!["github-token"]);
    }

    #[test]
    fn redaction_never_leaks_secret() {
        let tok = fake("ghp_", B36);
        let key = fake("AKIA", "Z7Q3KX2LMN4PR5TW");
        let content = format!("a={tok}\nb={key}\npassword=q8Zr3Lk2Pq9ZxT7vN4mB1cW6\n");
        let out = scan(&content);
        assert_eq!(out.findings.len(), 3);
        let json = serde_json::to_string(&out).unwrap();
        for secret in [tok.as_str(), key.as_str(), "q8Zr3Lk2Pq9ZxT7vN4mB1cW6"] {
            assert!(!json.contains(secret));
            assert!(!json.contains(&secret[4..12]));
        }
        assert_eq!(redact("abcdefgh"), "ab…(8 chars)");
        assert_eq!(redact("abcdefghijklmnop"), "abcd…(16 chars)");
        assert_eq!(redact("abc"), "…(3 chars)");
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let key = fake("AKIA", "Z7Q3KX2LMN4PR5TW");
        let out = scan(&format!("ünïcødé → {key}"));
        assert_eq!(out.findings[0].column, 11);
    }

    #[test]
    fn truncates_after_max_findings_on_one_long_line() {
        let key = fake("AKIA", "Z7Q3KX2LMN4PR5TW");
        let content = vec![key.as_str(); MAX_FINDINGS + 100].join(" ");
        let out = scan(&content);
        assert!(out.truncated);
        assert_eq!(out.findings.len(), MAX_FINDINGS);
        assert_eq!(out.lines_scanned, 1);
        let last = out.findings.last().unwrap();
        assert_eq!((last.line, last.column), (1, (MAX_FINDINGS - 1) * 21 + 1));
    }

    #[test]
    fn counts_and_path_echo() {
        let out = scan_secrets(&ScanSecretsArgs {
            content: "a\nb\nc\n".into(),
            path: Some("src/main.rs".into()),
        })
        .unwrap();
        assert_eq!(out.lines_scanned, 3);
        assert_eq!(out.bytes_scanned, 6);
        assert_eq!(out.path.as_deref(), Some("src/main.rs"));
        assert!(out.findings.is_empty());
        assert!(!out.truncated);
    }

    #[test]
    fn example_path_marks_findings() {
        let key = fake("AKIA", "Z7Q3KX2LMN4PR5TW");
        let out = scan_secrets(&ScanSecretsArgs {
            content: key,
            path: Some("config/.env.example".into()),
        })
        .unwrap();
        assert!(out.findings[0].likely_example);
    }

    #[test]
    fn oversized_content_names_field() {
        let err = scan_secrets(&ScanSecretsArgs {
            content: "a".repeat(MAX_CONTENT_BYTES + 1),
            path: None,
        })
        .unwrap_err();
        assert_eq!(err.field, "content");
        assert!(err.message.contains("1 MiB"));
        let err = scan_secrets(&ScanSecretsArgs {
            content: String::new(),
            path: Some("p".repeat(MAX_PATH_BYTES + 1)),
        })
        .unwrap_err();
        assert_eq!(err.field, "path");
    }

    #[test]
    fn entropy_values() {
        assert_eq!(shannon_entropy(""), 0.0);
        assert_eq!(shannon_entropy("aaaa"), 0.0);
        assert!((shannon_entropy("abcd") - 2.0).abs() < 1e-9);
        assert!(shannon_entropy("q8Zr3Lk2Pq9ZxT7vN4mB1cW6") > ENTROPY_THRESHOLD);
    }

    #[test]
    fn deny_unknown_fields() {
        let r: Result<ScanSecretsArgs, _> = serde_json::from_str(r#"{"content":"x","extra":1}"#);
        assert!(r.is_err());
        let r: ScanSecretsArgs = serde_json::from_str(r#"{"content":"x"}"#).unwrap();
        assert!(r.path.is_none());
    }
}
