//! The checks on one piece of text a tool shows the model (its description, title or a
//! parameter's description): hidden tags, prompt overrides, concealment, sensitive files,
//! exfiltration, invisible characters and shadowing of other tools, collected per tool.

use std::collections::HashMap;

use regex::Regex;

use super::{
    patterns::{
        CONCEAL_STRONG, CONCEAL_WEAK, DESTINATION, MODAL, PATTERN_RULES, PLAIN_DATA, READ_VERB,
        REDIRECT_TARGET, SECRET_DATA, SENSITIVE_FILE, T_CONCEAL, T_CONCEAL_WEAK, T_MODAL,
        T_SENSITIVE, T_TRANSFER, TRANSFER_VERB, TRIGGERS, is_tag_char,
    },
    schema::{PoisoningFinding, ToolDescription},
    spans::{EVIDENCE_CHARS, evidence_around, identifier_spans, sentences},
};
use crate::tools::security::{
    severity::Severity,
    text::{excerpt, is_invisible},
};

/// One tool's findings so far: one per (rule, location), at the highest severity seen.
pub(super) struct ToolAudit {
    pub(super) tool: String,
    pub(super) findings: Vec<PoisoningFinding>,
    /// Where in `findings` each (rule, location) is, so a repeat costs no search.
    pub(super) seen: HashMap<(&'static str, String), usize>,
}

impl ToolAudit {
    pub(super) fn push(
        &mut self,
        rule: &'static str,
        severity: Severity,
        location: &str,
        evidence: String,
    ) {
        let next = self.findings.len();
        let at = *self
            .seen
            .entry((rule, location.to_string()))
            .or_insert(next);
        if at != next {
            // Keep one finding per (rule, location), at the highest severity seen.
            if let Some(f) = self.findings.get_mut(at)
                && severity > f.severity
            {
                f.severity = severity;
                f.evidence = evidence;
            }
            return;
        }
        self.findings.push(PoisoningFinding {
            tool: self.tool.clone(),
            rule: rule.to_string(),
            severity,
            location: location.to_string(),
            evidence,
        });
    }

    /// Text checks shared by titles, descriptions and schema descriptions.
    pub(super) fn text(
        &mut self,
        text: &str,
        location: &str,
        own: usize,
        tools: &[ToolDescription],
        by_name: &HashMap<String, Vec<usize>>,
    ) {
        self.invisible(text, location);
        let hits = TRIGGERS.matches(text);
        if !hits.matched_any() {
            return;
        }
        let first = |re: &Regex, t: usize| hits.matched(t).then(|| re.find(text)).flatten();
        for (re, trigger, rule, severity) in PATTERN_RULES {
            if let Some(m) = first(re, trigger) {
                self.push(
                    rule,
                    severity,
                    location,
                    evidence_around(text, m.start(), m.end()),
                );
            }
        }
        // The weak concealment wording only counts when the strong one did not match.
        if first(&CONCEAL_STRONG, T_CONCEAL).is_none()
            && let Some(m) = first(&CONCEAL_WEAK, T_CONCEAL_WEAK)
        {
            self.push(
                "conceal-from-user",
                Severity::Medium,
                location,
                evidence_around(text, m.start(), m.end()),
            );
        }
        // Sentence-level rules only run when their trigger occurs somewhere in the text.
        let check_sensitive = hits.matched(T_SENSITIVE);
        let check_transfer = hits.matched(T_TRANSFER);
        if check_sensitive || check_transfer {
            for (start, end) in sentences(text) {
                let sentence = &text[start..end];
                if let Some(m) = SENSITIVE_FILE.find(sentence).filter(|_| check_sensitive) {
                    let severity = if READ_VERB.is_match(sentence) {
                        Severity::High
                    } else {
                        Severity::Medium
                    };
                    self.push(
                        "sensitive-file-access",
                        severity,
                        location,
                        evidence_around(text, start + m.start(), start + m.end()),
                    );
                }
                if let Some(m) = TRANSFER_VERB.find(sentence).filter(|_| check_transfer) {
                    let secret =
                        SECRET_DATA.is_match(sentence) || SENSITIVE_FILE.is_match(sentence);
                    if (secret || PLAIN_DATA.is_match(sentence)) && DESTINATION.is_match(sentence) {
                        self.push(
                            "exfiltration-instruction",
                            if secret {
                                Severity::High
                            } else {
                                Severity::Medium
                            },
                            location,
                            evidence_around(text, start + m.start(), end),
                        );
                    }
                }
            }
        }
        if hits.matched(T_MODAL) {
            self.shadowing(text, location, own, tools, by_name);
        }
    }

    pub(super) fn invisible(&mut self, text: &str, location: &str) {
        let mut first: Option<(usize, usize, char)> = None;
        let mut count = 0;
        let mut tags = false;
        for (ci, (bi, c)) in text.char_indices().enumerate() {
            if is_invisible(c) {
                count += 1;
                tags |= is_tag_char(c);
                if first.is_none() {
                    first = Some((ci, bi, c));
                }
            }
        }
        if let Some((ci, bi, c)) = first {
            let what = if tags {
                "Unicode tag characters (can smuggle invisible ASCII instructions)"
            } else {
                "invisible or bidi-control characters"
            };
            let ctx = evidence_around(text, bi, bi + c.len_utf8());
            self.push(
                "invisible-unicode",
                if tags {
                    Severity::Critical
                } else {
                    Severity::High
                },
                location,
                excerpt(
                    &format!(
                        "{count} {what}, first U+{:04X} at character {}: {ctx}",
                        c as u32,
                        ci + 1
                    ),
                    EVIDENCE_CHARS,
                ),
            );
        }
    }

    pub(super) fn shadowing(
        &mut self,
        text: &str,
        location: &str,
        own: usize,
        tools: &[ToolDescription],
        by_name: &HashMap<String, Vec<usize>>,
    ) {
        if by_name.len() < 2 {
            return;
        }
        // Words come in text order, so one walk over the sentences finds each word's, and a
        // sentence is judged once however many tool names it holds: linear in the text.
        let mut sentences = sentences(text).peekable();
        let mut judged: Option<usize> = None;
        for (start, end) in identifier_spans(text) {
            let word = text[start..end].to_ascii_lowercase();
            if word.len() < 3 || !by_name.contains_key(&word) {
                continue;
            }
            if tools
                .get(own)
                .is_some_and(|t| t.name.eq_ignore_ascii_case(&word))
            {
                continue;
            }
            while sentences.next_if(|&(_, e)| e < end).is_some() {}
            let Some(&(s_start, s_end)) = sentences.peek().filter(|&&(s, _)| s <= start) else {
                continue;
            };
            if judged.replace(s_start) == Some(s_start) {
                continue;
            }
            let sentence = &text[s_start..s_end];
            if !MODAL.is_match(sentence) {
                continue;
            }
            let severity = if REDIRECT_TARGET.is_match(sentence) {
                Severity::High
            } else {
                Severity::Medium
            };
            self.push(
                "tool-shadowing",
                severity,
                location,
                evidence_around(text, s_start, s_end),
            );
        }
    }
}
