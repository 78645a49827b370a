//! Tool-argument extraction. rmcp's own `Parameters<T>` turns a deserialization failure into a
//! tool result with `isError: true` and, for type errors, without naming the field. Our servers
//! answer JSON-RPC -32602 with the offending field's path in the message and in `data.field`,
//! so a load generator can classify it and a user can fix the call. The macro finds this type by
//! its name (`Parameters`) and takes the input schema from it just as from rmcp's.

use rmcp::{
    ErrorData,
    handler::server::{common::FromContextPart, tool::ToolCallContext},
};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

/// Deserialized tool arguments.
#[derive(Debug, Clone)]
pub struct Parameters<P>(pub P);

impl<P: JsonSchema> JsonSchema for Parameters<P> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        P::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        P::json_schema(generator)
    }
}

impl<S, P: DeserializeOwned> FromContextPart<ToolCallContext<'_, S>> for Parameters<P> {
    fn from_context_part(context: &mut ToolCallContext<S>) -> Result<Self, ErrorData> {
        let arguments = serde_json::Value::Object(context.arguments.take().unwrap_or_default());
        parse(arguments).map(Parameters)
    }
}

/// Deserializes arguments, reporting the path of the first bad field.
pub fn parse<P: DeserializeOwned>(arguments: serde_json::Value) -> Result<P, ErrorData> {
    serde_path_to_error::deserialize(arguments).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // For a missing or unknown field serde reports the parent's path; name the field itself.
        let field = match (path.as_str(), named_field(&inner)) {
            (".", Some(name)) => name.to_string(),
            (p, Some(name)) if p == name || p.ends_with(&format!(".{name}")) => p.to_string(),
            (parent, Some(name)) => format!("{parent}.{name}"),
            (p, None) => p.to_string(),
        };
        ErrorData::invalid_params(
            format!("invalid argument `{field}`: {inner}"),
            Some(serde_json::json!({ "field": field })),
        )
    })
}

fn named_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?
        .split('`')
        .next()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Args {
        text: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn field(v: serde_json::Value) -> String {
        let err = parse::<Args>(v).expect_err("must fail");
        assert_eq!(err.code.0, -32602);
        err.data
            .and_then(|d| d["field"].as_str().map(String::from))
            .unwrap_or_default()
    }

    #[test]
    fn names_missing_wrong_and_unknown_fields() {
        assert_eq!(field(json!({})), "text");
        assert_eq!(field(json!({"text": 5})), "text");
        assert_eq!(
            field(json!({"text": "a", "inner": {"count": "x"}})),
            "inner.count"
        );
        assert_eq!(field(json!({"text": "a", "inner": {}})), "inner.count");
        assert_eq!(field(json!({"text": "a", "bogus": 1})), "bogus");
        assert!(parse::<Args>(json!({"text": "ok"})).is_ok());
    }
}
