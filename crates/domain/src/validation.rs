//! Field-by-field validation of JSON request bodies, with Laravel-style per-field messages.
//!
//! Bodies are read as `serde_json::Value` first so that one wrong type does not hide the other
//! problems: every field gets checked and every problem is reported under its own name.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::phone::PhoneNormalizer;

/// Problems found in a request, by field name; serialises as `{"field": ["message", …]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ValidationErrors(BTreeMap<String, Vec<String>>);

impl ValidationErrors {
    /// No problems yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem with `field`.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_default().push(message.into());
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `field` has a problem recorded.
    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }
}

/// Settings that validation depends on, built once at start-up.
#[derive(Debug, Clone, Copy)]
pub struct ValidationContext {
    /// Reads national phone numbers in the configured default region.
    pub phones: PhoneNormalizer,
    /// The zone `schedule_at` wall-clock times are read in.
    pub timezone: Tz,
}

/// How a field is read: in full (create, PUT) every field comes from the body; as a patch,
/// an absent field keeps its stored value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Create or replace: absent fields take their defaults.
    Full,
    /// Partial update: absent fields keep what is stored.
    Patch,
}

/// Reads typed fields out of a JSON object, recording a message per bad field.
pub struct FieldReader<'a> {
    body: &'a Map<String, Value>,
    /// Problems found so far.
    pub errors: ValidationErrors,
}

/// The outcome of reading one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field<T> {
    /// The key is not in the body.
    Absent,
    /// The key is present with `null` (or an empty string for optional text).
    Null,
    /// A well-typed value.
    Value(T),
    /// Present but wrong; an error was recorded.
    Invalid,
}

impl<T> Field<T> {
    /// Whether the body mentions the field at all.
    pub fn is_present(&self) -> bool {
        !matches!(self, Field::Absent)
    }

    /// The value for a `Full` read: absent and null both become `None`.
    pub fn into_option(self) -> Option<T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Resolves against a stored value: absent keeps `stored`, null clears, a value replaces.
    pub fn or_keep(self, stored: Option<T>) -> Option<T> {
        match self {
            Field::Absent | Field::Invalid => stored,
            Field::Null => None,
            Field::Value(v) => Some(v),
        }
    }
}

impl<'a> FieldReader<'a> {
    /// Starts reading `body`.
    pub fn new(body: &'a Map<String, Value>) -> Self {
        Self {
            body,
            errors: ValidationErrors::new(),
        }
    }

    /// The raw value of `key`, if present.
    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.body.get(key)
    }

    /// A string of at most `max` characters; an empty or blank string reads as `Null`.
    pub fn string(&mut self, key: &str, max: usize) -> Field<String> {
        match self.body.get(key) {
            None => Field::Absent,
            Some(Value::Null) => Field::Null,
            Some(Value::String(s)) if s.trim().is_empty() => Field::Null,
            Some(Value::String(s)) if s.chars().count() > max => {
                self.errors.add(
                    key,
                    format!(
                        "The {} may not be greater than {max} characters.",
                        label(key)
                    ),
                );
                Field::Invalid
            }
            Some(Value::String(s)) if s.contains('\0') => {
                self.errors
                    .add(key, format!("The {} contains a NUL character.", label(key)));
                Field::Invalid
            }
            Some(Value::String(s)) => Field::Value(s.clone()),
            Some(_) => {
                self.errors
                    .add(key, format!("The {} must be a string.", label(key)));
                Field::Invalid
            }
        }
    }

    /// A boolean; `true`/`false` and, as the API's own reads show booleans, `1`/`0`.
    pub fn boolean(&mut self, key: &str) -> Field<bool> {
        match self.body.get(key) {
            None => Field::Absent,
            Some(Value::Null) => Field::Null,
            Some(Value::Bool(b)) => Field::Value(*b),
            Some(Value::Number(n)) if n.as_u64() == Some(0) => Field::Value(false),
            Some(Value::Number(n)) if n.as_u64() == Some(1) => Field::Value(true),
            Some(_) => {
                self.errors.add(
                    key,
                    format!("The {} field must be true or false.", label(key)),
                );
                Field::Invalid
            }
        }
    }

    /// A whole number in `min..=max` (a JSON integer; a string is refused).
    pub fn integer(&mut self, key: &str, min: u64, max: u64) -> Field<u64> {
        match self.body.get(key) {
            None => Field::Absent,
            Some(Value::Null) => Field::Null,
            Some(Value::Number(n)) if n.as_u64().is_some_and(|v| (min..=max).contains(&v)) => {
                Field::Value(n.as_u64().unwrap_or(min))
            }
            Some(_) => {
                self.errors.add(
                    key,
                    format!(
                        "The {} must be a whole number between {min} and {max}.",
                        label(key)
                    ),
                );
                Field::Invalid
            }
        }
    }

    /// Records that a required field is missing.
    pub fn required(&mut self, key: &str) {
        self.errors
            .add(key, format!("The {} field is required.", label(key)));
    }

    /// Records a custom message for `key`.
    pub fn fail(&mut self, key: &str, message: impl Into<String>) {
        self.errors.add(key, message);
    }
}

/// `session_id` → `session id`, as Laravel words its messages.
pub fn label(key: &str) -> String {
    key.replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_and_reports_each_field() {
        let body = json!({"a": "x", "b": 5, "c": 1, "d": "", "e": null, "f": "toolong"});
        let map = body.as_object().unwrap();
        let mut r = FieldReader::new(map);
        assert_eq!(r.string("a", 10), Field::Value("x".into()));
        assert_eq!(r.string("b", 10), Field::Invalid);
        assert_eq!(r.boolean("c"), Field::Value(true));
        assert_eq!(r.string("d", 10), Field::Null);
        assert_eq!(r.string("e", 10), Field::Null);
        assert_eq!(r.string("f", 3), Field::Invalid);
        assert_eq!(r.string("zz", 3), Field::Absent);
        assert_eq!(r.boolean("a"), Field::Invalid);
        let errors = r.errors;
        assert!(errors.has("b") && errors.has("f") && errors.has("a"));
        assert!(!errors.has("c"));
        assert_eq!(
            serde_json::to_value(&errors).unwrap()["b"][0],
            "The b must be a string."
        );
    }

    #[test]
    fn or_keep_semantics() {
        assert_eq!(Field::<u8>::Absent.or_keep(Some(1)), Some(1));
        assert_eq!(Field::<u8>::Null.or_keep(Some(1)), None);
        assert_eq!(Field::Value(2).or_keep(Some(1)), Some(2));
    }
}
