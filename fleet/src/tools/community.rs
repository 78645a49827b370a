//! Community profile tools: cheap, deterministic and useful, so that measured latency is the
//! transport's and the server's, plus `work`, the knob that models a real service time.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ToolInputError;

/// Largest text the text tools accept, so a single call cannot pin a core for long.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EchoArgs {
    /// Text returned unchanged.
    pub text: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EchoOutput {
    pub text: String,
}

pub fn echo(args: EchoArgs) -> EchoOutput {
    EchoOutput { text: args.text }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddArgs {
    /// First addend.
    pub a: f64,
    /// Second addend.
    pub b: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AddOutput {
    pub sum: f64,
}

pub fn add(args: &AddArgs) -> Result<AddOutput, ToolInputError> {
    let sum = args.a + args.b;
    if !sum.is_finite() {
        return Err(ToolInputError::new("b", "the sum overflows a 64-bit float"));
    }
    Ok(AddOutput { sum })
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TextStatsArgs {
    /// Text to analyse (at most 1 MiB).
    pub text: String,
    /// How many of the most frequent words to return (default 5, at most 100).
    #[serde(default)]
    pub top: Option<u32>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TextStatsOutput {
    pub bytes: usize,
    pub chars: usize,
    pub lines: usize,
    pub words: usize,
    pub unique_words: usize,
    pub sentences: usize,
    pub average_word_length: f64,
    /// Most frequent words (lowercased), most frequent first, ties alphabetical.
    pub top_words: Vec<WordCount>,
}

#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct WordCount {
    pub word: String,
    pub count: usize,
}

pub fn text_stats(args: &TextStatsArgs) -> Result<TextStatsOutput, ToolInputError> {
    let text = &args.text;
    if text.len() > MAX_TEXT_BYTES {
        return Err(ToolInputError::new(
            "text",
            format!("{} bytes is over the 1 MiB limit", text.len()),
        ));
    }
    let top = args.top.unwrap_or(5);
    if top > 100 {
        return Err(ToolInputError::new("top", "must be at most 100"));
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut words = 0usize;
    let mut word_chars = 0usize;
    for word in text
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-'))
        .map(|w| w.trim_matches(|c| c == '\'' || c == '-'))
        .filter(|w| !w.is_empty())
    {
        words += 1;
        word_chars += word.chars().count();
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    let sentences = text
        .split(['.', '!', '?'])
        .filter(|s| s.chars().any(char::is_alphanumeric))
        .count();
    let unique_words = counts.len();
    let mut top_words: Vec<WordCount> = counts
        .into_iter()
        .map(|(word, count)| WordCount { word, count })
        .collect();
    top_words.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.word.cmp(&b.word)));
    top_words.truncate(top as usize);
    Ok(TextStatsOutput {
        bytes: text.len(),
        chars: text.chars().count(),
        lines: text.lines().count(),
        words,
        unique_words,
        sentences,
        average_word_length: if words == 0 {
            0.0
        } else {
            word_chars as f64 / words as f64
        },
        top_words,
    })
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonQueryArgs {
    /// The JSON document to query.
    pub document: Value,
    /// RFC 6901 JSON pointer selecting a value, e.g. `/items/0/name`; empty selects the root.
    #[serde(default)]
    pub pointer: String,
    /// Optional filter applied to the elements of the selected array.
    #[serde(default)]
    pub filter: Option<Filter>,
}

/// Keeps the array elements whose `field` (a JSON pointer into the element) satisfies `op`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// JSON pointer into each element, e.g. `/status`.
    pub field: String,
    pub op: FilterOp,
    /// Value to compare with (not needed for `exists`).
    #[serde(default)]
    pub value: Option<Value>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FilterOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// Substring for strings, membership for arrays.
    Contains,
    Exists,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct JsonQueryOutput {
    /// The selected (and filtered) value.
    pub result: Value,
    /// Number of array elements kept by the filter; 1 for a plain pointer lookup.
    pub matched: usize,
}

pub fn json_query(args: &JsonQueryArgs) -> Result<JsonQueryOutput, ToolInputError> {
    check_pointer("pointer", &args.pointer)?;
    let selected = args.document.pointer(&args.pointer).ok_or_else(|| {
        ToolInputError::new(
            "pointer",
            format!("`{}` selects nothing in the document", args.pointer),
        )
    })?;
    let Some(filter) = &args.filter else {
        return Ok(JsonQueryOutput {
            result: selected.clone(),
            matched: 1,
        });
    };
    check_pointer("filter.field", &filter.field)?;
    let Value::Array(items) = selected else {
        return Err(ToolInputError::new(
            "filter",
            "a filter needs the pointer to select an array",
        ));
    };
    if filter.op != FilterOp::Exists && filter.value.is_none() {
        return Err(ToolInputError::new(
            "filter.value",
            "is required for every op except `exists`",
        ));
    }
    let kept: Vec<Value> = items
        .iter()
        .filter(|item| matches(item.pointer(&filter.field), filter))
        .cloned()
        .collect();
    Ok(JsonQueryOutput {
        matched: kept.len(),
        result: Value::Array(kept),
    })
}

fn check_pointer(field: &str, pointer: &str) -> Result<(), ToolInputError> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(ToolInputError::new(
            field,
            format!("`{pointer}` is not a JSON pointer: it must be empty or start with `/`"),
        ))
    }
}

fn matches(actual: Option<&Value>, filter: &Filter) -> bool {
    let Some(actual) = actual else {
        return false;
    };
    let Some(expected) = &filter.value else {
        return filter.op == FilterOp::Exists;
    };
    let ordering = || match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    };
    use std::cmp::Ordering::*;
    match filter.op {
        FilterOp::Exists => true,
        FilterOp::Eq => actual == expected,
        FilterOp::Ne => actual != expected,
        FilterOp::Lt => ordering() == Some(Less),
        FilterOp::Le => matches!(ordering(), Some(Less | Equal)),
        FilterOp::Gt => ordering() == Some(Greater),
        FilterOp::Ge => matches!(ordering(), Some(Greater | Equal)),
        FilterOp::Contains => match (actual, expected) {
            (Value::String(a), Value::String(b)) => a.contains(b.as_str()),
            (Value::Array(a), b) => a.contains(b),
            _ => false,
        },
    }
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkMode {
    /// Burn CPU on the server for the requested time (occupies a worker thread).
    Cpu,
    /// Wait asynchronously (models I/O such as a database or upstream call).
    Sleep,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkArgs {
    /// `cpu` or `sleep`.
    pub mode: WorkMode,
    /// Requested time in microseconds (bounded by the server's `max_work`).
    pub micros: u64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkOutput {
    pub mode: WorkMode,
    pub requested_micros: u64,
    /// Time the server actually spent, as it measured it.
    pub actual_micros: u64,
}

/// Validates a `work` request against the server's bound and returns the duration to spend.
pub fn work_duration(args: &WorkArgs, max: Duration) -> Result<Duration, ToolInputError> {
    let d = Duration::from_micros(args.micros);
    if d > max {
        return Err(ToolInputError::new(
            "micros",
            format!(
                "{} µs is over this server's limit of {} µs",
                args.micros,
                max.as_micros()
            ),
        ));
    }
    Ok(d)
}

/// Spins the current thread for `d`, doing real arithmetic so the time is CPU time.
pub fn burn_cpu(d: Duration) -> u64 {
    let start = Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rounds = 0u64;
    while start.elapsed() < d {
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        rounds += 1;
    }
    std::hint::black_box(x);
    rounds
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn add_and_overflow() {
        assert_eq!(add(&AddArgs { a: 2.5, b: 4.0 }).expect("adds").sum, 6.5);
        let err = add(&AddArgs {
            a: f64::MAX,
            b: f64::MAX,
        })
        .unwrap_err();
        assert_eq!(err.field, "b");
    }

    #[test]
    fn text_stats_counts() {
        let out = text_stats(&TextStatsArgs {
            text: "The cat sat. The dog ran!\nDon't stop".into(),
            top: Some(2),
        })
        .expect("stats");
        assert_eq!(out.words, 8);
        assert_eq!(out.lines, 2);
        assert_eq!(out.sentences, 3);
        assert_eq!(out.unique_words, 7);
        assert_eq!(
            out.top_words[0],
            WordCount {
                word: "the".into(),
                count: 2
            }
        );
        assert_eq!(out.top_words.len(), 2);
        let err = text_stats(&TextStatsArgs {
            text: "x".into(),
            top: Some(1000),
        })
        .unwrap_err();
        assert_eq!(err.field, "top");
    }

    #[test]
    fn json_query_pointer_and_filter() {
        let doc = json!({"items": [
            {"name": "a", "size": 3, "tags": ["x"]},
            {"name": "b", "size": 10},
            {"name": "c", "size": 7, "tags": ["x", "y"]}
        ]});
        let out = json_query(&JsonQueryArgs {
            document: doc.clone(),
            pointer: "/items/1/name".into(),
            filter: None,
        })
        .expect("query");
        assert_eq!(out.result, json!("b"));
        let out = json_query(&JsonQueryArgs {
            document: doc.clone(),
            pointer: "/items".into(),
            filter: Some(Filter {
                field: "/size".into(),
                op: FilterOp::Ge,
                value: Some(json!(7)),
            }),
        })
        .expect("query");
        assert_eq!(out.matched, 2);
        assert_eq!(out.result[0]["name"], "b");
        let out = json_query(&JsonQueryArgs {
            document: doc.clone(),
            pointer: "/items".into(),
            filter: Some(Filter {
                field: "/tags".into(),
                op: FilterOp::Contains,
                value: Some(json!("y")),
            }),
        })
        .expect("query");
        assert_eq!(
            out.result,
            json!([{"name": "c", "size": 7, "tags": ["x", "y"]}])
        );
    }

    #[test]
    fn json_query_errors_name_the_field() {
        let doc = json!({"a": 1});
        let missing = JsonQueryArgs {
            document: doc.clone(),
            pointer: "/b".into(),
            filter: None,
        };
        assert_eq!(json_query(&missing).unwrap_err().field, "pointer");
        let not_pointer = JsonQueryArgs {
            document: doc.clone(),
            pointer: "a".into(),
            filter: None,
        };
        assert_eq!(json_query(&not_pointer).unwrap_err().field, "pointer");
        let not_array = JsonQueryArgs {
            document: doc,
            pointer: "/a".into(),
            filter: Some(Filter {
                field: "/x".into(),
                op: FilterOp::Exists,
                value: None,
            }),
        };
        assert_eq!(json_query(&not_array).unwrap_err().field, "filter");
    }

    #[test]
    fn work_is_bounded_and_burns() {
        let args = WorkArgs {
            mode: WorkMode::Cpu,
            micros: 2_000_000,
        };
        assert_eq!(
            work_duration(&args, Duration::from_secs(1))
                .unwrap_err()
                .field,
            "micros"
        );
        let start = Instant::now();
        assert!(burn_cpu(Duration::from_millis(2)) > 0);
        assert!(start.elapsed() >= Duration::from_millis(2));
    }
}
