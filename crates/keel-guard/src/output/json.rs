//! Format validation for replies that must be JSON (`response_format`): the reply must parse,
//! and, when a schema is given, satisfy it. The schema support is a documented subset of JSON
//! Schema (type, enum, const, properties, required, additionalProperties, items, min/max
//! items, min/max length, minimum/maximum, anyOf/oneOf/allOf); other keywords are ignored,
//! never counted as failures.

use serde::Serialize;
use serde_json::Value;

/// Deeper schemas than this are not followed (a hostile schema cannot recurse forever).
const MAX_DEPTH: usize = 32;

/// Why a reply is not acceptable JSON: where (a JSON pointer) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonViolation {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for JsonViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

fn violation(path: &str, message: impl Into<String>) -> JsonViolation {
    JsonViolation { path: path.to_owned(), message: message.into() }
}

/// Parses `reply` as JSON; with `object_only` the top level must be an object (what
/// `json_object` promises); with `schema`, the value must satisfy it.
pub fn validate_json(reply: &str, object_only: bool, schema: Option<&Value>) -> Result<Value, JsonViolation> {
    let v: Value = serde_json::from_str(reply.trim()).map_err(|e| violation("", format!("not valid JSON ({e})")))?;
    if object_only && !v.is_object() {
        return Err(violation("", "the top level is not a JSON object"));
    }
    if let Some(s) = schema {
        check(&v, s, "", 0)?;
    }
    Ok(v)
}

fn type_matches(v: &Value, t: &str) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.as_i64().is_some() || v.as_u64().is_some() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => true,
    }
}

fn check(v: &Value, schema: &Value, path: &str, depth: usize) -> Result<(), JsonViolation> {
    let Some(s) = schema.as_object() else { return Ok(()) };
    if depth > MAX_DEPTH {
        return Ok(());
    }
    match s.get("type") {
        Some(Value::String(t)) if !type_matches(v, t) => return Err(violation(path, format!("expected {t}"))),
        Some(Value::Array(ts)) if !ts.iter().filter_map(Value::as_str).any(|t| type_matches(v, t)) => {
            return Err(violation(path, format!("expected one of {}", Value::Array(ts.clone()))))
        }
        _ => {}
    }
    if let Some(Value::Array(options)) = s.get("enum") {
        if !options.contains(v) {
            return Err(violation(path, format!("not one of {}", Value::Array(options.clone()))));
        }
    }
    if let Some(c) = s.get("const") {
        if c != v {
            return Err(violation(path, format!("must be {c}")));
        }
    }
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        for sub in all {
            check(v, sub, path, depth + 1)?;
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(subs) = s.get(key).and_then(Value::as_array) {
            let ok = subs.iter().filter(|sub| check(v, sub, path, depth + 1).is_ok()).count();
            if ok == 0 || (key == "oneOf" && ok > 1) {
                return Err(violation(path, format!("matches {ok} of the `{key}` alternatives")));
            }
        }
    }
    match v {
        Value::Object(map) => {
            if let Some(req) = s.get("required").and_then(Value::as_array) {
                for k in req.iter().filter_map(Value::as_str) {
                    if !map.contains_key(k) {
                        return Err(violation(path, format!("missing required property `{k}`")));
                    }
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            for (k, child) in map {
                let at = format!("{path}/{k}");
                match props.and_then(|p| p.get(k)) {
                    Some(sub) => check(child, sub, &at, depth + 1)?,
                    None => match s.get("additionalProperties") {
                        Some(Value::Bool(false)) => return Err(violation(&at, "property not allowed")),
                        Some(sub @ Value::Object(_)) => check(child, sub, &at, depth + 1)?,
                        _ => {}
                    },
                }
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if s.get("minItems").and_then(Value::as_u64).is_some_and(|m| n < m) {
                return Err(violation(path, format!("{n} items, fewer than minItems")));
            }
            if s.get("maxItems").and_then(Value::as_u64).is_some_and(|m| n > m) {
                return Err(violation(path, format!("{n} items, more than maxItems")));
            }
            if let Some(sub) = s.get("items").filter(|i| i.is_object()) {
                for (i, item) in items.iter().enumerate() {
                    check(item, sub, &format!("{path}/{i}"), depth + 1)?;
                }
            }
        }
        Value::String(text) => {
            let n = text.chars().count() as u64;
            if s.get("minLength").and_then(Value::as_u64).is_some_and(|m| n < m) {
                return Err(violation(path, "shorter than minLength"));
            }
            if s.get("maxLength").and_then(Value::as_u64).is_some_and(|m| n > m) {
                return Err(violation(path, "longer than maxLength"));
            }
        }
        Value::Number(num) => {
            let x = num.as_f64().unwrap_or(f64::NAN);
            if s.get("minimum").and_then(Value::as_f64).is_some_and(|m| x < m) {
                return Err(violation(path, format!("{x} is below the minimum")));
            }
            if s.get("maximum").and_then(Value::as_f64).is_some_and(|m| x > m) {
                return Err(violation(path, format!("{x} is above the maximum")));
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({ "type": "object", "required": ["city", "days"], "additionalProperties": false,
                "properties": { "city": { "type": "string", "minLength": 2 },
                                "days": { "type": "integer", "minimum": 1, "maximum": 90 },
                                "tags": { "type": "array", "items": { "enum": ["a", "b"] }, "maxItems": 2 } } })
    }

    #[test]
    fn parses_and_checks_the_schema_subset() {
        let s = schema();
        assert!(validate_json(r#" {"city": "Oslo", "days": 30, "tags": ["a"]} "#, true, Some(&s)).is_ok());
        let e = validate_json(r#"{"city": "Oslo"}"#, true, Some(&s)).unwrap_err();
        assert!(e.message.contains("`days`"), "{e}");
        let e = validate_json(r#"{"city": "Oslo", "days": 120}"#, true, Some(&s)).unwrap_err();
        assert_eq!(e.path, "/days");
        let e = validate_json(r#"{"city": "Oslo", "days": 3, "tags": ["c"]}"#, true, Some(&s)).unwrap_err();
        assert_eq!(e.path, "/tags/0");
        let e = validate_json(r#"{"city": "Oslo", "days": 3, "extra": 1}"#, true, Some(&s)).unwrap_err();
        assert_eq!((e.path.as_str(), e.message.as_str()), ("/extra", "property not allowed"));
        assert!(validate_json(r#"{"city": "Oslo", "days": "3"}"#, true, Some(&s)).is_err());
    }

    #[test]
    fn prose_fenced_json_and_arrays_fail_where_an_object_was_promised() {
        assert!(validate_json("Sure! Here it is: {\"a\": 1}", true, None)
            .unwrap_err()
            .message
            .contains("not valid JSON"));
        assert!(validate_json("```json\n{\"a\": 1}\n```", true, None).is_err());
        assert!(validate_json("[1, 2]", true, None).is_err());
        assert!(validate_json("[1, 2]", false, None).is_ok());
        let one_of = json!({ "oneOf": [{ "type": "integer" }, { "type": "number" }] });
        assert!(validate_json("1", false, Some(&one_of)).is_err(), "an integer matches both alternatives");
        assert!(validate_json("1.5", false, Some(&one_of)).is_ok());
    }
}
