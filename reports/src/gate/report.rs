//! The outcome of a gate evaluation and its reports: a terminal summary, JUnit XML for CI test
//! views and Markdown for a GitHub step summary.

use std::{fmt::Write as _, path::Path};

use super::{
    check::{Check, Layer, Status},
    config::{Config, Relative},
    error::{EXIT_FAIL, EXIT_PASS, GateError},
};
use crate::fmt_micros;

/// Every check of one gate evaluation, and the reports made of them.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Invariants of each run, then relative rules, then ceilings of each run.
    pub checks: Vec<Check>,
    /// The judged runs' names.
    pub runs: Vec<String>,
    /// The baseline runs' names.
    pub baseline: Vec<String>,
    pub config: Config,
}

impl Outcome {
    /// True when no check failed; skipped checks do not fail a gate.
    pub fn passed(&self) -> bool {
        self.count(Status::Failed) == 0
    }

    /// [`EXIT_PASS`] or [`EXIT_FAIL`]; input errors ([`GateError`]) are [`EXIT_USAGE`].
    ///
    /// [`EXIT_USAGE`]: super::EXIT_USAGE
    pub fn exit_code(&self) -> i32 {
        if self.passed() { EXIT_PASS } else { EXIT_FAIL }
    }

    /// Checks with that status.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// The failed checks, in report order.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Failed)
    }

    /// The verdict in one line, e.g. `gate failed: 2 of 31 checks failed (25 passed, 4
    /// skipped)`.
    pub fn verdict(&self) -> String {
        let (p, f, s) = (
            self.count(Status::Passed),
            self.count(Status::Failed),
            self.count(Status::Skipped),
        );
        let total = self.checks.len();
        if f == 0 {
            format!("gate passed: {p} of {total} checks passed ({s} skipped)")
        } else {
            format!("gate failed: {f} of {total} checks failed ({p} passed, {s} skipped)")
        }
    }

    /// For a terminal: the verdict, then one line per failed check and per skipped one (but
    /// the scenarios a run did not include, which the reports list).
    pub fn summary(&self) -> String {
        let mut s = self.verdict();
        let failed = self.failures();
        let skipped = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Skipped && !c.name.ends_with(".ran"));
        for c in failed.chain(skipped) {
            let _ = write!(s, "\n  {c}");
        }
        s
    }

    /// JUnit XML: one `<testsuite>` per layer, one `<testcase>` per check, `<failure>` for a
    /// failed check and `<skipped>` for one that could not apply, as CI test views read it.
    pub fn junit_xml(&self) -> String {
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            x,
            "<testsuites name=\"loadgen gate\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" \
             errors=\"0\">",
            self.checks.len(),
            self.count(Status::Failed),
            self.count(Status::Skipped)
        );
        for layer in Layer::ALL {
            let checks: Vec<&Check> = self.checks.iter().filter(|c| c.layer == layer).collect();
            let n = |s: Status| checks.iter().filter(|c| c.status == s).count();
            let _ = writeln!(
                x,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" \
                 errors=\"0\">",
                layer.name(),
                checks.len(),
                n(Status::Failed),
                n(Status::Skipped)
            );
            for c in checks {
                let name = match &c.run {
                    Some(run) => format!("{} [{run}]", c.name),
                    None => c.name.clone(),
                };
                let _ = write!(
                    x,
                    "    <testcase classname=\"gate.{}\" name=\"{}\"",
                    layer.name(),
                    xml(&name)
                );
                let detail = format!("measured: {}\nlimit: {}", c.measured, c.limit);
                match c.status {
                    Status::Passed => {
                        let _ = writeln!(
                            x,
                            ">\n      <system-out>{}</system-out>\n    </testcase>",
                            xml(&format!("{detail}\n{}", c.message))
                        );
                    }
                    Status::Failed => {
                        let _ = writeln!(
                            x,
                            ">\n      <failure message=\"{}\" type=\"gate\">{}</failure>\n    \
                             </testcase>",
                            xml(&c.message),
                            xml(&detail)
                        );
                    }
                    Status::Skipped => {
                        let _ = writeln!(
                            x,
                            ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                            xml(&c.message)
                        );
                    }
                }
            }
            x.push_str("  </testsuite>\n");
        }
        x.push_str("</testsuites>\n");
        x
    }

    /// Markdown for a GitHub step summary: the verdict on the first line, then a table per
    /// layer (measured against limit; for relative rules the medians, change, interval and
    /// p-value).
    pub fn markdown(&self) -> String {
        let mut m = String::new();
        let icon = if self.passed() { "✅" } else { "❌" };
        let _ = writeln!(m, "## {icon} Performance {}\n", md(&self.verdict()));
        let names = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter().map(|s| md(s)).collect::<Vec<_>>().join(", ")
            }
        };
        let _ = writeln!(
            m,
            "Runs: {}  \nBaseline: {}\n",
            names(&self.runs),
            names(&self.baseline)
        );
        for layer in Layer::ALL {
            let checks: Vec<&Check> = self.checks.iter().filter(|c| c.layer == layer).collect();
            let _ = writeln!(m, "### {}\n", layer.title());
            if checks.is_empty() {
                m.push_str("No rules of this layer are configured.\n\n");
                continue;
            }
            if layer == Layer::Relative {
                relative_table(&mut m, &checks, &self.config.relative);
            } else {
                m.push_str("| | check | run | measured | limit | note |\n");
                m.push_str("|---|---|---|---|---|---|\n");
                for c in checks {
                    let _ = writeln!(
                        m,
                        "| {} {} | {} | {} | {} | {} | {} |",
                        c.status.icon(),
                        c.status.label(),
                        md(&c.name),
                        md(c.run.as_deref().unwrap_or("")),
                        md(&c.measured),
                        md(&c.limit),
                        md(&c.message)
                    );
                }
                m.push('\n');
            }
        }
        m
    }

    /// Writes [`Outcome::junit_xml`] and [`Outcome::markdown`] to the given paths.
    pub fn write_reports(&self, junit: &Path, markdown: &Path) -> Result<(), GateError> {
        for (path, text) in [(junit, self.junit_xml()), (markdown, self.markdown())] {
            std::fs::write(path, text).map_err(|source| GateError::Write {
                path: path.display().to_string(),
                source,
            })?;
        }
        Ok(())
    }
}

fn relative_table(m: &mut String, checks: &[&Check], rel: &Relative) {
    let confidence = confidence(rel.alpha);
    let _ = writeln!(
        m,
        "A regression needs p < {} and the whole {confidence} % interval of the change above \
         +{} %.\n",
        rel.alpha, rel.min_effect_percent
    );
    let _ = writeln!(
        m,
        "| | metric | baseline median | head median | change | {confidence} % CI | p-value \
         | samples (baseline / head) | note |"
    );
    m.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for c in checks {
        let cells = match &c.comparison {
            Some(k) => [
                fmt_us(k.baseline_median),
                fmt_us(k.head_median),
                fmt_change(k.change_percent),
                format!(
                    "{} to {}",
                    fmt_change(k.ci_low_percent),
                    fmt_change(k.ci_high_percent)
                ),
                fmt_p(k.p_value),
                format!("{} / {}", k.baseline_n, k.head_n),
            ],
            None => Default::default(),
        };
        let _ = writeln!(
            m,
            "| {} {} | {} | {} | {} |",
            c.status.icon(),
            c.status.label(),
            md(&c.name),
            cells.map(|s| md(&s)).join(" | "),
            md(&c.message)
        );
    }
    m.push('\n');
}

/// The confidence of the interval, `1 - alpha`, in percent without trailing zeros: `99`,
/// `99.9`.
pub(super) fn confidence(alpha: f64) -> String {
    let s = format!("{:.3}", 100.0 * (1.0 - alpha));
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A median of microseconds for people.
pub(super) fn fmt_us(us: f64) -> String {
    if us.is_finite() && us >= 0.0 {
        fmt_micros(us.round() as u64)
    } else {
        format!("{us} µs")
    }
}

pub(super) fn fmt_change(percent: f64) -> String {
    if percent.is_finite() {
        format!("{percent:+.1} %")
    } else {
        format!("{percent} %")
    }
}

pub(super) fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// Text for XML content and attribute values: the five special characters escaped, line
/// breaks kept as character references (attributes would fold them), and characters XML 1.0
/// forbids replaced.
// Not `escape::esc`: XML wants `&apos;`, line breaks as references and no control characters.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Text for a Markdown table cell: pipes escaped, HTML neutralised, one line.
fn md(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_specials_and_drops_forbidden_characters() {
        assert_eq!(
            xml("a<b>&\"c'\n\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#10;\u{FFFD}"
        );
        assert_eq!(xml("µs ≤ 5"), "µs ≤ 5");
    }

    #[test]
    fn markdown_cells_stay_one_cell() {
        assert_eq!(md("a|b\nc <i>&"), "a\\|b c &lt;i&gt;&amp;");
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(confidence(0.01), "99");
        assert_eq!(confidence(0.05), "95");
        assert_eq!(confidence(0.001), "99.9");
        assert_eq!(fmt_p(0.4321), "0.432");
        assert_eq!(fmt_p(0.000_012), "1.2e-5");
        assert_eq!(fmt_change(30.04), "+30.0 %");
        assert_eq!(fmt_change(-4.0), "-4.0 %");
        assert_eq!(fmt_change(f64::INFINITY), "inf %");
        assert_eq!(fmt_us(2_345.4), "2.35 ms");
    }
}
