//! The JSON text of a value: [`Json`], the WAMP JSON view of a [`Value`],
//! [`List`] or [`Dict`] (binary as `"\u0000"` + base64), and `Display` for
//! values as that JSON.

use std::{fmt, io};

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::{Dict, List, Value};

/// The WAMP JSON view of a [`Value`], [`List`] or [`Dict`].
///
/// WAMP's JSON serializer carries [`Value::Bytes`] as a string holding a NUL
/// character followed by the standard base64 of the bytes; `Json` applies
/// that convention:
///
/// - as `Display`, it writes the value as compact JSON (`{:#}`: indented),
///   exactly the text the JSON serializer puts on the wire. Strings are JSON
///   escaped, floats print so that they read back the same (`1.0` stays
///   `1.0`), non-finite floats print as `null`. `Display` for [`Value`] is
///   the same text; `Json` exists mainly for a message's `args` (a [`List`])
///   and `kwargs` (a [`Dict`]), which are plain collections;
/// - as `Serialize`, it hands the value to any serde serializer with binary
///   as that string (for a JSON encoder other than the built-in one).
///
/// ```
/// use fahrbahn_core::wamp::{Dict, Json, Value};
///
/// let args = vec![Value::from("headline #1"), Value::Bytes(vec![1, 2, 3])];
/// let mut kwargs = Dict::new();
/// kwargs.insert("n".into(), Value::from(1));
/// kwargs.insert("ratio".into(), Value::from(0.5));
///
/// assert_eq!(Json(&args).to_string(), r#"["headline #1","\u0000AQID"]"#);
/// assert_eq!(Json(&kwargs).to_string(), r#"{"n":1,"ratio":0.5}"#);
/// assert_eq!(format!("{:#}", Json(&kwargs)), "{\n  \"n\": 1,\n  \"ratio\": 0.5\n}");
/// ```
#[derive(Debug)]
pub struct Json<'a, T: ?Sized>(pub &'a T);

impl<T: ?Sized> Clone for Json<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized> Copy for Json<'_, T> {}

impl Serialize for Json<'_, Value> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Bytes(b) => s.serialize_str(&binary_string(b)),
            Value::List(l) => Json(l).serialize(s),
            Value::Dict(d) => Json(d).serialize(s),
            other => other.serialize(s),
        }
    }
}

impl Serialize for Json<'_, List> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for v in self.0 {
            seq.serialize_element(&Json(v))?;
        }
        seq.end()
    }
}

impl Serialize for Json<'_, Dict> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, &Json(v))?;
        }
        map.end()
    }
}

/// The WAMP JSON string for binary data: NUL, then the standard base64.
fn binary_string(bytes: &[u8]) -> String {
    use base64::Engine as _;
    let mut text = String::with_capacity(1 + bytes.len().div_ceil(3) * 4);
    text.push('\0');
    base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut text);
    text
}

impl fmt::Display for Json<'_, Value> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_json(self, f)
    }
}

impl fmt::Display for Json<'_, List> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_json(self, f)
    }
}

impl fmt::Display for Json<'_, Dict> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_json(self, f)
    }
}

/// Displays the value as JSON, the text the WAMP JSON serializer sends; see
/// [`Json`] for the details. `{:#}` indents it.
///
/// ```
/// use fahrbahn_core::wamp::Value;
///
/// let v: Value = [("dividend", Value::from(1.0)), ("text", Value::from("a \"b\"\n"))]
///     .into_iter()
///     .collect();
/// assert_eq!(v.to_string(), r#"{"dividend":1.0,"text":"a \"b\"\n"}"#);
/// assert_eq!(Value::from(f64::NAN).to_string(), "null");
/// ```
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Json(self).fmt(f)
    }
}

/// Writes `value` as JSON to `f`, compact, or indented for `{:#}`.
fn write_json<T: Serialize + ?Sized>(value: &T, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let pretty = f.alternate();
    let mut out = FormatterWriter(f);
    let written = if pretty {
        serde_json::to_writer_pretty(&mut out, value)
    } else {
        serde_json::to_writer(&mut out, value)
    };
    written.map_err(|_| fmt::Error)
}

/// `io::Write` over a `fmt::Formatter`, for serde_json's writer API.
///
/// serde_json hands every write whole UTF-8 sequences (it splits strings only
/// at the ASCII characters it escapes), so each chunk converts on its own.
struct FormatterWriter<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl io::Write for FormatterWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let text =
            std::str::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.0.write_str(text).map_err(io::Error::other)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wamp::Serializer;

    fn dict(entries: &[(&str, Value)]) -> Dict {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    /// The bytes the JSON serializer sends for `v`.
    fn wire(v: &Value) -> String {
        let mut out = Vec::new();
        Serializer::Json.encode_value(v, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn scalars() {
        assert_eq!(Value::Null.to_string(), "null");
        assert_eq!(Value::Bool(true).to_string(), "true");
        assert_eq!(Value::Bool(false).to_string(), "false");
        assert_eq!(Value::Int(-42).to_string(), "-42");
        assert_eq!(Value::Int(i64::MIN).to_string(), "-9223372036854775808");
        assert_eq!(Value::UInt(u64::MAX).to_string(), "18446744073709551615");
    }

    #[test]
    fn floats_read_back_the_same() {
        assert_eq!(Value::Float(1.0).to_string(), "1.0");
        assert_eq!(Value::Float(-0.0).to_string(), "-0.0");
        assert_eq!(Value::Float(0.1).to_string(), "0.1");
        assert_eq!(Value::Float(2.5e-8).to_string(), "2.5e-8");
        for f in [0.1, 1.0 / 3.0, 1e300, -2.5e-8, f64::MAX, f64::MIN_POSITIVE] {
            let text = Value::Float(f).to_string();
            assert_eq!(text.parse::<f64>().unwrap(), f, "{text}");
        }
    }

    #[test]
    fn non_finite_floats_are_null() {
        for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(Value::Float(f).to_string(), "null");
        }
    }

    #[test]
    fn strings_are_escaped() {
        let v = Value::from("quote \" backslash \\ newline \n tab \t nul \0 bell \u{7}");
        assert_eq!(
            v.to_string(),
            r#""quote \" backslash \\ newline \n tab \t nul \u0000 bell \u0007""#
        );
        assert_eq!(Value::from("").to_string(), r#""""#);
    }

    #[test]
    fn unicode_is_written_as_is() {
        let v = Value::from("grüße, 世界 🚗\n🚗");
        assert_eq!(v.to_string(), "\"grüße, 世界 🚗\\n🚗\"");
        let d = dict(&[("schlüssel", Value::from("wert"))]);
        assert_eq!(Json(&d).to_string(), r#"{"schlüssel":"wert"}"#);
    }

    #[test]
    fn bytes_use_the_wamp_json_convention() {
        assert_eq!(Value::Bytes(vec![1, 2, 3]).to_string(), r#""\u0000AQID""#);
        assert_eq!(
            Value::Bytes(vec![0xff; 4]).to_string(),
            r#""\u0000/////w==""#
        );
        assert_eq!(Value::Bytes(Vec::new()).to_string(), r#""\u0000""#);
    }

    #[test]
    fn containers_nest() {
        let v = Value::from_iter([
            Value::from(1),
            Value::from_iter([Value::Null, Value::from_iter([Value::from(true)])]),
            Value::Dict(dict(&[
                ("b", Value::List(List::new())),
                ("a", Value::Dict(Dict::new())),
                ("c", Value::Bytes(vec![7])),
            ])),
        ]);
        assert_eq!(
            v.to_string(),
            r#"[1,[null,[true]],{"a":{},"b":[],"c":"\u0000Bw=="}]"#
        );
    }

    #[test]
    fn empty_containers() {
        assert_eq!(Value::List(List::new()).to_string(), "[]");
        assert_eq!(Value::Dict(Dict::new()).to_string(), "{}");
        assert_eq!(Json(&List::new()).to_string(), "[]");
        assert_eq!(Json(&Dict::new()).to_string(), "{}");
        assert_eq!(format!("{:#}", Json(&List::new())), "[]");
        assert_eq!(format!("{:#}", Json(&Dict::new())), "{}");
    }

    #[test]
    fn args_and_kwargs() {
        let args: List = vec!["headline #1".into()];
        let kwargs = dict(&[("n", Value::from(1))]);
        assert_eq!(
            format!("{} {}", Json(&args), Json(&kwargs)),
            r#"["headline #1"] {"n":1}"#
        );
        assert_eq!(Json(&Value::from(2)).to_string(), "2");
    }

    #[test]
    fn alternate_indents() {
        let v = Value::Dict(dict(&[
            ("list", Value::from_iter([Value::from(1), Value::from("x")])),
            ("empty", Value::Dict(Dict::new())),
        ]));
        assert_eq!(
            format!("{v:#}"),
            "{\n  \"empty\": {},\n  \"list\": [\n    1,\n    \"x\"\n  ]\n}"
        );
        assert_eq!(format!("{:#}", Value::from(1.5)), "1.5");
    }

    #[test]
    fn display_is_the_json_wire_text() {
        let v = Value::from_iter([
            Value::Null,
            Value::from(-7),
            Value::UInt(u64::MAX),
            Value::from(1.0),
            Value::from(f64::NAN),
            Value::from("ä \"\u{1}\" 🚗"),
            Value::Bytes((0..=255).collect()),
            Value::Dict(dict(&[("k", Value::Bytes(vec![9]))])),
        ]);
        assert_eq!(v.to_string(), wire(&v));
    }

    #[test]
    fn serialize_applies_the_binary_convention() {
        let v = Value::Dict(dict(&[("b", Value::Bytes(vec![1, 2, 3]))]));
        assert_eq!(
            serde_json::to_string(&Json(&v)).unwrap(),
            r#"{"b":"\u0000AQID"}"#
        );
    }
}
