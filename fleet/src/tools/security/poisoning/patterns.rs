//! The rule table: every regex and word list the heuristics use, the one-pass prefilter that
//! tells which of them can match a text at all, and the rules that are one pattern each.
//! Kept together so that a rule's pattern and its prefilter slot are edited side by side.

use std::sync::LazyLock;

use regex::{Regex, RegexSet};

use crate::tools::security::severity::Severity;

pub(super) fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in poisoning pattern is a valid regex")
}

pub(super) const HIDDEN_TAG_RE: &str = r"(?i)<\s*/?\s*(?:important|system|sys|instructions?|secret|hidden|admin|critical|prompt|assistant|context)\b[^<>]{0,40}>|\[\s*(?:system|inst|important)\s*\]|<!--";
pub(super) static HIDDEN_TAG: LazyLock<Regex> = LazyLock::new(|| compile(HIDDEN_TAG_RE));
pub(super) const PROMPT_OVERRIDE_RE: &str = r"(?i)\b(?:ignore|disregard|forget|override|bypass)\s+(?:(?:all|any|the|your|of|these)\s+)*(?:previous|prior|above|earlier|preceding|former|other|system|original)\s+(?:instructions?|prompts?|rules|directions|guidelines|messages|context)|\byou\s+are\s+now\b|\bnew\s+instructions?\s*:";
pub(super) static PROMPT_OVERRIDE: LazyLock<Regex> = LazyLock::new(|| compile(PROMPT_OVERRIDE_RE));
pub(super) const SENSITIVE_FILE_RE: &str = r"(?i)~/\.ssh|\.ssh/|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|\bauthorized_keys\b|(?:^|[^A-Za-z0-9_])\.env\b|\bmcp\.json\b|claude_desktop_config|\.cursor/|\.aws/credentials|\bcredentials\.json\b|\.git-credentials|\.netrc\b|\.npmrc\b|\.pypirc\b|\.docker/config\.json|\.kube/config|/etc/passwd|/etc/shadow|\bprivate[ _-]?keys?\b|\bwallet\.dat\b|\bkeychain\b";
pub(super) static SENSITIVE_FILE: LazyLock<Regex> = LazyLock::new(|| compile(SENSITIVE_FILE_RE));
pub(super) static READ_VERB: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"(?i)\b(?:read|reads|reading|cat|open|load|access|get|fetch|contents?|include|send|pass|upload|copy|print|provide|extract)\b",
    )
});
pub(super) const TRANSFER_VERB_RE: &str = r"(?i)\b(?:send|sending|pass|passing|include|including|post|upload|forward|transmit|exfiltrat\w*|append|attach|embed|put|insert|copy|leak|add)\b";
pub(super) static TRANSFER_VERB: LazyLock<Regex> = LazyLock::new(|| compile(TRANSFER_VERB_RE));
pub(super) static SECRET_DATA: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"(?i)\b(?:api[ _-]?keys?|tokens?|passwords?|secrets?|credentials?|private[ _-]?keys?|ssh[ _-]?keys?|conversation|chat[ _-]?history|previous\s+messages|system\s+prompt|environment\s+variables|env\s+vars?)\b",
    )
});
pub(super) static PLAIN_DATA: LazyLock<Regex> =
    LazyLock::new(|| compile(r"(?i)\b(?:contents?|files?|data|history|messages|keys?)\b"));
pub(super) static DESTINATION: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r#"(?i)\b(?:parameter|param|argument|field|sidenote|side\s+note|notes?|url|endpoint|webhook|server|email|address)\b|https?://|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"#,
    )
});
pub(super) const CONCEAL_STRONG_RE: &str = r"(?i)\b(?:do\s+not|don'?t|never|without)\s+(?:\w+\s+){0,2}?(?:tell|telling|inform|informing|mention|mentioning|notify|notifying|alert|alerting|show|showing|reveal|revealing|disclose|disclosing|let)\b[^.\n]{0,120}\busers?\b|\bwithout\s+(?:the\s+)?users?'?s?\s+(?:knowledge|consent|noticing|awareness|approval)|\busers?\s+(?:must|should|will)\s+(?:not|never)\s+(?:know|see|notice|find\s+out|be\s+told)|\bhide\s+(?:this|it|these)\s+from\s+(?:the\s+)?users?";
pub(super) static CONCEAL_STRONG: LazyLock<Regex> = LazyLock::new(|| compile(CONCEAL_STRONG_RE));
pub(super) const CONCEAL_WEAK_RE: &str = r"(?i)\b(?:secretly|covertly|surreptitiously)\b";
pub(super) static CONCEAL_WEAK: LazyLock<Regex> = LazyLock::new(|| compile(CONCEAL_WEAK_RE));
pub(super) const URL_RE: &str = r#"https?://[^\s)"'<>\]]+"#;
pub(super) static URL: LazyLock<Regex> = LazyLock::new(|| compile(URL_RE));
pub(super) static REDIRECT_TARGET: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"(?i)https?://|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}|\b(?:instead|override|overrides|replace|replaces|all\s+(?:emails?|messages?|requests?|calls?|data))\b",
    )
});
pub(super) const MODAL_RE: &str = r"(?i)\b(?:must|always|never|instead|override|overrides|replace|replaces|whenever|important|do\s+not\s+use|don'?t\s+use|should\s+(?:always|only|never))\b";
pub(super) static MODAL: LazyLock<Regex> = LazyLock::new(|| compile(MODAL_RE));
pub(super) static FILL_WITH: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"(?i)\b(?:fill|populate|put|pass|include|insert|provide|paste|add|set|contain|containing)\b[^.\n]{0,60}\b(?:contents?|conversation|chat\s+history|previous\s+messages|system\s+prompt|secrets?|credentials?|api[ _-]?keys?|tokens?|passwords?|env(?:ironment)?(?:\s+variables)?)\b",
    )
});
/// One pass over a text tells which of the text rules can match at all; the individual
/// regexes then run only for those (most descriptions trigger none).
pub(super) static TRIGGERS: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        HIDDEN_TAG_RE,
        PROMPT_OVERRIDE_RE,
        CONCEAL_STRONG_RE,
        CONCEAL_WEAK_RE,
        URL_RE,
        SENSITIVE_FILE_RE,
        TRANSFER_VERB_RE,
        MODAL_RE,
    ])
    .expect("built-in poisoning patterns are valid regexes")
});
pub(super) const T_HIDDEN: usize = 0;
pub(super) const T_OVERRIDE: usize = 1;
pub(super) const T_CONCEAL: usize = 2;
pub(super) const T_CONCEAL_WEAK: usize = 3;
pub(super) const T_URL: usize = 4;
pub(super) const T_SENSITIVE: usize = 5;
pub(super) const T_TRANSFER: usize = 6;
pub(super) const T_MODAL: usize = 7;

pub(super) static VALID_NAME: LazyLock<Regex> = LazyLock::new(|| compile(r"^[A-Za-z0-9_-]{1,64}$"));

/// Parameter names that serve as covert channels in published tool-poisoning attacks.
pub(super) const SUSPICIOUS_PARAMS: [&str; 12] = [
    "sidenote",
    "side_note",
    "sidenotes",
    "hidden",
    "hidden_note",
    "hidden_notes",
    "system_prompt",
    "systemprompt",
    "conversation_history",
    "chat_history",
    "exfil",
    "secret_notes",
];

pub(super) fn is_tag_char(c: char) -> bool {
    ('\u{E0000}'..='\u{E007F}').contains(&c)
}

/// Rules that are one pattern each: (pattern, prefilter trigger, rule id, severity).
pub(super) static PATTERN_RULES: [(&LazyLock<Regex>, usize, &str, Severity); 4] = [
    (
        &HIDDEN_TAG,
        T_HIDDEN,
        "hidden-instruction-tag",
        Severity::High,
    ),
    (
        &PROMPT_OVERRIDE,
        T_OVERRIDE,
        "prompt-override",
        Severity::High,
    ),
    (
        &CONCEAL_STRONG,
        T_CONCEAL,
        "conceal-from-user",
        Severity::High,
    ),
    (&URL, T_URL, "external-url", Severity::Low),
];
