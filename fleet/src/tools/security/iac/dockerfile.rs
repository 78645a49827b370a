//! The Dockerfile rules: a small parser of instructions (line continuations, comments, JSON
//! and shell forms) and one pass over them that reports every `docker-*` rule with the
//! instruction's line.

use std::sync::LazyLock;

use regex::Regex;

use std::collections::HashSet;

use super::{image::image_tag_problem, schema::IacFinding};
use crate::tools::security::{
    severity::Severity,
    text::{Capped, MAX_FINDINGS, excerpt},
};

/// A built-in pattern (a test proves every one compiles).
pub(super) fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in IaC pattern is a valid regex")
}

pub(super) static CURL_PIPE_SHELL: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"(?i)\b(?:curl|wget)\b[^|;&]*\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:/usr)?(?:/bin/)?(?:ba|z|da|k|a)?sh\b",
    )
});
pub(super) static APT_INSTALL: LazyLock<Regex> =
    LazyLock::new(|| compile(r"\bapt-get\s+(?:-\S+\s+)*install\b"));

pub(super) struct Instruction {
    line: u32,
    keyword: String,
    args: String,
}

/// Logical instructions: comments dropped, continuation lines joined (honouring an
/// `# escape=` parser directive), keyword upper-cased.
pub(super) fn parse_dockerfile(content: &str) -> Vec<Instruction> {
    let mut escape = '\\';
    let mut in_directives = true;
    let mut out = Vec::new();
    let mut pending: Option<(u32, String)> = None;
    for (idx, raw) in content.lines().enumerate() {
        let line_no = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let trimmed = raw.trim();
        if in_directives {
            if let Some(directive) = trimmed.strip_prefix('#')
                && let Some((k, v)) = directive.split_once('=')
            {
                if k.trim().eq_ignore_ascii_case("escape") {
                    escape = v.trim().chars().next().unwrap_or('\\');
                }
                continue;
            }
            in_directives = false;
        }
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_none()) {
            continue;
        }
        let (body, continues) = match trimmed.strip_suffix(escape) {
            Some(body) => (body, true),
            None => (trimmed, false),
        };
        let (start, mut text) = pending.take().unwrap_or((line_no, String::new()));
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(body.trim());
        if continues {
            pending = Some((start, text));
        } else if !text.trim().is_empty() {
            out.push(split_instruction(start, &text));
        }
    }
    if let Some((start, text)) = pending
        && !text.trim().is_empty()
    {
        out.push(split_instruction(start, &text));
    }
    out
}

pub(super) fn split_instruction(line: u32, text: &str) -> Instruction {
    let text = text.trim();
    let (keyword, args) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    Instruction {
        line,
        keyword: keyword.to_ascii_uppercase(),
        args: args.trim().to_string(),
    }
}

pub(super) fn docker_finding(
    rule: &str,
    severity: Severity,
    message: String,
    line: Option<u32>,
) -> IacFinding {
    IacFinding {
        rule: rule.to_string(),
        severity,
        message,
        line,
        document: None,
        resource: None,
        path: None,
    }
}

pub(super) fn scan_dockerfile(content: &str) -> (Capped<IacFinding>, usize) {
    let instructions = parse_dockerfile(content);
    let mut findings = Capped::new(MAX_FINDINGS);
    // Stage names, lower-cased: a set, as a Dockerfile of a thousand stages is a valid input.
    let mut stages: HashSet<String> = HashSet::new();
    // (line of the final stage's FROM, last USER in it as (line, value)).
    let mut final_from: Option<u32> = None;
    let mut last_user: Option<(u32, String)> = None;
    for ins in &instructions {
        let line = Some(ins.line);
        match ins.keyword.as_str() {
            "FROM" => {
                let tokens: Vec<&str> = ins
                    .args
                    .split_whitespace()
                    .filter(|t| !t.starts_with("--"))
                    .collect();
                let image = tokens.first().copied().unwrap_or("");
                let is_stage = stages.contains(&image.to_ascii_lowercase());
                if let [_, as_kw, alias, ..] = tokens.as_slice()
                    && as_kw.eq_ignore_ascii_case("as")
                {
                    stages.insert(alias.to_ascii_lowercase());
                }
                if !image.is_empty()
                    && !is_stage
                    && !image.eq_ignore_ascii_case("scratch")
                    && !image.contains('$')
                    && let Some(problem) = image_tag_problem(image)
                {
                    findings.push(docker_finding(
                            "docker-image-latest",
                            Severity::Medium,
                            format!(
                                "base image `{}` {problem}; pin a version tag or digest for reproducible, reviewable builds",
                                excerpt(image, 80)
                            ),
                            line,
                        ));
                }
                final_from = Some(ins.line);
                last_user = None;
            }
            "USER" => {
                last_user = Some((ins.line, ins.args.clone()));
            }
            "ADD" => {
                let tokens: Vec<&str> = ins.args.split_whitespace().collect();
                let pinned = tokens.iter().any(|t| t.starts_with("--checksum"));
                let operands: Vec<&str> = tokens
                    .iter()
                    .copied()
                    .filter(|t| !t.starts_with("--"))
                    .collect();
                let sources = operands.len().saturating_sub(1);
                if let Some(url) = operands[..sources].iter().find(|t| {
                    let l = t.to_ascii_lowercase();
                    l.starts_with("http://") || l.starts_with("https://")
                }) {
                    findings.push(docker_finding(
                        "docker-add-remote-url",
                        if pinned { Severity::Low } else { Severity::Medium },
                        format!(
                            "ADD downloads `{}`{}; prefer RUN curl with checksum verification or COPY of a vetted file",
                            excerpt(url, 80),
                            if pinned { " (checksum pinned)" } else { " without integrity checks" }
                        ),
                        line,
                    ));
                }
            }
            "RUN" => {
                if CURL_PIPE_SHELL.is_match(&ins.args) {
                    findings.push(docker_finding(
                        "docker-curl-pipe-shell",
                        Severity::High,
                        "RUN pipes a downloaded script straight into a shell; download, verify a checksum or signature, then run".into(),
                        line,
                    ));
                }
                if APT_INSTALL.is_match(&ins.args) && !ins.args.contains("--no-install-recommends")
                {
                    findings.push(docker_finding(
                        "docker-apt-install-recommends",
                        Severity::Low,
                        "apt-get install without --no-install-recommends pulls in extra packages and attack surface".into(),
                        line,
                    ));
                }
            }
            "ENV" | "ARG" => {
                for (name, value) in env_pairs(&ins.keyword, &ins.args) {
                    if !is_secret_name(&name) {
                        continue;
                    }
                    if ins.keyword == "ENV" && value.as_deref().is_some_and(str::is_empty) {
                        continue;
                    }
                    let (severity, how) = if ins.keyword == "ENV" {
                        (
                            Severity::High,
                            "is baked into every image layer and `docker inspect`",
                        )
                    } else {
                        (Severity::Medium, "is recorded in the image history")
                    };
                    findings.push(docker_finding(
                        "docker-secret-in-env",
                        severity,
                        format!(
                            "{} `{}` looks like a secret and {how}; use a build secret (RUN --mount=type=secret) or runtime injection",
                            ins.keyword,
                            excerpt(&name, 60)
                        ),
                        line,
                    ));
                }
            }
            "EXPOSE"
                if ins.args.split_whitespace().any(|p| {
                    let port = p.split('/').next().unwrap_or(p);
                    port == "22"
                }) =>
            {
                findings.push(docker_finding(
                        "docker-expose-ssh",
                        Severity::Medium,
                        "EXPOSE 22: running an SSH daemon in a container widens the attack surface; use `docker exec`/`kubectl exec`".into(),
                        line,
                    ));
            }
            _ => {}
        }
    }
    if let Some(from_line) = final_from {
        match &last_user {
            None => findings.push(docker_finding(
                "docker-root-user",
                Severity::Medium,
                format!(
                    "the final stage (FROM at line {from_line}) sets no USER, so the container runs as root; add a non-root USER"
                ),
                None,
            )),
            Some((line, user)) => {
                let name = user.split(':').next().unwrap_or("").trim();
                if name.eq_ignore_ascii_case("root") || name == "0" {
                    findings.push(docker_finding(
                        "docker-root-user",
                        Severity::Medium,
                        format!(
                            "the final USER is `{}`, so the container runs as root; switch to a non-root user",
                            excerpt(user, 40)
                        ),
                        Some(*line),
                    ));
                }
            }
        }
    }
    // In line order: the final stage's root-user finding goes where its USER is.
    findings.sort_by_key(|f| f.line.unwrap_or(u32::MAX));
    (findings, instructions.len())
}

/// `(name, value)` pairs of an `ENV` or `ARG` instruction.
pub(super) fn env_pairs(keyword: &str, args: &str) -> Vec<(String, Option<String>)> {
    let tokens = shell_words(args);
    let first_has_eq = tokens.first().is_some_and(|t| t.contains('='));
    if keyword == "ENV" && !first_has_eq {
        // Legacy `ENV NAME value with spaces`.
        return match args.split_once(char::is_whitespace) {
            Some((name, value)) => vec![(name.to_string(), Some(value.trim().to_string()))],
            None if !args.is_empty() => vec![(args.to_string(), None)],
            None => Vec::new(),
        };
    }
    tokens
        .into_iter()
        .map(|t| match t.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (t, None),
        })
        .collect()
}

/// Whitespace-separated words, with `"…"`/`'…'` quoting (quotes removed).
pub(super) fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

pub(super) fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    const POINTER_SUFFIXES: [&str; 7] = [
        "_FILE",
        "_PATH",
        "_DIR",
        "_URL",
        "_URI",
        "_ENDPOINT",
        "_HOST",
    ];
    const NOT_SECRET: [&str; 6] = [
        "PUBLIC",
        "GPG",
        "PGP",
        "FINGERPRINT",
        "KEYRING",
        "KEYSERVER",
    ];
    if POINTER_SUFFIXES.iter().any(|s| upper.ends_with(s))
        || NOT_SECRET.iter().any(|s| upper.contains(s))
    {
        return false;
    }
    if [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "APIKEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
    ]
    .iter()
    .any(|s| upper.contains(s))
    {
        return true;
    }
    upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|seg| seg == "KEY" || seg == "PASS" || seg == "PWD")
        || upper.ends_with("KEY")
}
