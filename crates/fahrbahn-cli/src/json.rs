//! JSON ↔ WAMP [`Value`] conversion for the command line.
//!
//! JSON has no binary type, so bytes are shown as `{"$bytes": "<base64>"}`
//! (standard alphabet, padded). On input, both that form and the WAMP JSON
//! serializer's own convention — a string starting with `"\u0000"` followed
//! by base64 — become [`Value::Bytes`]. Floats that JSON cannot carry (NaN,
//! ±infinity) are shown as `null`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fahrbahn::wamp::{Dict, List, Value};
use serde_json::{Map, Number, Value as Json};

/// The key of the object that stands for binary data.
pub(crate) const BYTES_KEY: &str = "$bytes";

/// Converts a WAMP value to JSON.
pub(crate) fn to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::Number((*i).into()),
        Value::UInt(u) => Json::Number((*u).into()),
        Value::Float(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => {
            let mut map = Map::new();
            map.insert(BYTES_KEY.to_owned(), Json::String(STANDARD.encode(b)));
            Json::Object(map)
        }
        Value::List(l) => list_to_json(l),
        Value::Dict(d) => dict_to_json(d),
    }
}

/// Converts a WAMP list to a JSON array.
pub(crate) fn list_to_json(list: &List) -> Json {
    Json::Array(list.iter().map(to_json).collect())
}

/// Converts a WAMP dictionary to a JSON object.
pub(crate) fn dict_to_json(dict: &Dict) -> Json {
    Json::Object(dict.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
}

/// Converts JSON to a WAMP value.
pub(crate) fn from_json(json: Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => match s.strip_prefix('\0').and_then(decode_base64) {
            Some(bytes) => Value::Bytes(bytes),
            None => Value::String(s),
        },
        Json::Array(a) => Value::List(a.into_iter().map(from_json).collect()),
        Json::Object(o) => {
            if o.len() == 1 {
                if let Some(Json::String(b64)) = o.get(BYTES_KEY) {
                    if let Some(bytes) = decode_base64(b64) {
                        return Value::Bytes(bytes);
                    }
                }
            }
            Value::Dict(from_json_object(o))
        }
    }
}

/// Converts a JSON object to a WAMP dictionary.
pub(crate) fn from_json_object(object: Map<String, Json>) -> Dict {
    object.into_iter().map(|(k, v)| (k, from_json(v))).collect()
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

/// A command line argument as a WAMP value: JSON if it parses as JSON,
/// otherwise the text itself as a string (so `5` is a number, `true` a
/// boolean, `'"5"'` the string "5", and `hello` the string "hello").
pub(crate) fn parse_arg(arg: &str) -> Value {
    match serde_json::from_str::<Json>(arg) {
        Ok(json) => from_json(json),
        Err(_) => Value::String(arg.to_owned()),
    }
}

/// Parses a `--kwargs` value: it must be a JSON object.
pub(crate) fn parse_kwargs(text: &str) -> Result<Dict, String> {
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(o)) => Ok(from_json_object(o)),
        Ok(other) => Err(format!(
            "--kwargs must be a JSON object like '{{\"key\": 1}}', not {}",
            kind(&other)
        )),
        Err(e) => Err(format!("--kwargs is not valid JSON: {e}")),
    }
}

fn kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// `{"args": [...], "kwargs": {...}}`.
pub(crate) fn envelope(args: &List, kwargs: &Dict) -> Json {
    let mut map = Map::new();
    map.insert("args".to_owned(), list_to_json(args));
    map.insert("kwargs".to_owned(), dict_to_json(kwargs));
    Json::Object(map)
}

/// What `fahrbahn call` prints for a result: `null` for no result, the
/// value itself for exactly one positional result and no keyword results,
/// otherwise the [`envelope`].
pub(crate) fn call_output(args: &List, kwargs: &Dict) -> Json {
    match (args.as_slice(), kwargs.is_empty()) {
        ([], true) => Json::Null,
        ([single], true) => to_json(single),
        _ => envelope(args, kwargs),
    }
}

/// A value as a command line argument for `register`: strings as they are,
/// anything else as its JSON text.
pub(crate) fn value_to_arg(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => to_json(other).to_string(),
    }
}

/// A command's output as a WAMP value: JSON if it parses, otherwise the
/// (trimmed) text as a string.
pub(crate) fn parse_output(text: &str) -> Value {
    parse_arg(text.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_parse_as_json_or_string() {
        assert_eq!(parse_arg("5"), Value::Int(5));
        assert_eq!(parse_arg("-5"), Value::Int(-5));
        assert_eq!(parse_arg("2.5"), Value::Float(2.5));
        assert_eq!(parse_arg("18446744073709551615"), Value::UInt(u64::MAX));
        assert_eq!(parse_arg("true"), Value::Bool(true));
        assert_eq!(parse_arg("null"), Value::Null);
        assert_eq!(parse_arg("hello"), Value::String("hello".into()));
        assert_eq!(parse_arg("\"5\""), Value::String("5".into()));
        assert_eq!(
            parse_arg("hello world"),
            Value::String("hello world".into())
        );
        assert_eq!(parse_arg(""), Value::String(String::new()));
        assert_eq!(
            parse_arg("[1, \"a\"]"),
            Value::List(vec![Value::Int(1), Value::String("a".into())])
        );
        let Value::Dict(d) = parse_arg(r#"{"a": {"b": [true]}}"#) else {
            panic!("not a dict");
        };
        assert_eq!(d["a"].get("b"), Some(&Value::List(vec![Value::Bool(true)])));
        // Not JSON: taken as the text.
        assert_eq!(parse_arg("{oops"), Value::String("{oops".into()));
    }

    #[test]
    fn bytes_round_trip() {
        let v = Value::Bytes(b"hello".to_vec());
        let j = to_json(&v);
        assert_eq!(j.to_string(), r#"{"$bytes":"aGVsbG8="}"#);
        assert_eq!(from_json(j), v);
        // The WAMP JSON serializer's convention is accepted on input.
        assert_eq!(parse_arg("\"\\u0000aGVsbG8=\""), v);
        // A "$bytes" key that is not base64, or with siblings, is a dict.
        assert!(matches!(parse_arg(r#"{"$bytes": "!!"}"#), Value::Dict(_)));
        assert!(matches!(
            parse_arg(r#"{"$bytes": "aGVsbG8=", "x": 1}"#),
            Value::Dict(_)
        ));
    }

    #[test]
    fn values_to_json() {
        let mut d = Dict::new();
        d.insert("n".into(), Value::Null);
        d.insert("f".into(), Value::Float(f64::NAN));
        d.insert("u".into(), Value::UInt(u64::MAX));
        d.insert("l".into(), Value::List(vec![Value::Int(-1), "x".into()]));
        assert_eq!(
            dict_to_json(&d).to_string(),
            r#"{"f":null,"l":[-1,"x"],"n":null,"u":18446744073709551615}"#
        );
        let back = from_json(dict_to_json(&d));
        assert_eq!(back.get("u"), Some(&Value::UInt(u64::MAX)));
    }

    #[test]
    fn kwargs_must_be_an_object() {
        let kw = parse_kwargs(r#"{"a": 1, "b": "x"}"#).unwrap();
        assert_eq!(kw.len(), 2);
        assert_eq!(kw["a"], Value::Int(1));
        assert!(parse_kwargs("[1]").unwrap_err().contains("an array"));
        assert!(parse_kwargs("{").unwrap_err().contains("not valid JSON"));
    }

    #[test]
    fn call_output_shapes() {
        let none = Dict::new();
        assert_eq!(call_output(&vec![], &none), Json::Null);
        assert_eq!(call_output(&vec![Value::Int(5)], &none).to_string(), "5");
        assert_eq!(
            call_output(&vec![Value::Int(1), Value::Int(2)], &none).to_string(),
            r#"{"args":[1,2],"kwargs":{}}"#
        );
        let mut kw = Dict::new();
        kw.insert("a".into(), Value::Bool(false));
        assert_eq!(
            call_output(&vec![Value::Int(1)], &kw).to_string(),
            r#"{"args":[1],"kwargs":{"a":false}}"#
        );
    }

    #[test]
    fn register_argument_and_output_conversion() {
        assert_eq!(value_to_arg(&"a b".into()), "a b");
        assert_eq!(value_to_arg(&Value::Int(3)), "3");
        assert_eq!(value_to_arg(&Value::Null), "null");
        assert_eq!(value_to_arg(&Value::List(vec!["x".into()])), r#"["x"]"#);
        assert_eq!(parse_output("42\n"), Value::Int(42));
        assert_eq!(
            parse_output("  hello there \n"),
            Value::String("hello there".into())
        );
    }
}
