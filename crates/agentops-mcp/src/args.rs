//! A tool call's arguments, read field by field: a wrong type, a missing
//! required field or an oversized value is an error naming the field.

use serde_json::{Map, Value};

/// The most a query, a task or a name may hold.
pub const MAX_SHORT: usize = 16 * 1024;
/// The most an entry's body may hold (the knowledge crate caps entries too).
pub const MAX_BODY: usize = 1024 * 1024;

pub struct Args<'a> {
    tool: &'a str,
    map: Map<String, Value>,
}

/// An argument problem: the message names the tool and the field.
#[derive(Debug)]
pub struct ArgError {
    pub field: String,
    pub message: String,
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Args<'a> {
    pub fn new(tool: &'a str, map: Option<Map<String, Value>>) -> Self {
        Self {
            tool,
            map: map.unwrap_or_default(),
        }
    }

    fn err(&self, field: &str, what: String) -> ArgError {
        ArgError {
            field: field.to_owned(),
            message: format!("{}: argument `{field}`: {what}", self.tool),
        }
    }

    /// Fields the tool does not take are an error, not silently ignored.
    pub fn only(&self, known: &[String]) -> Result<(), ArgError> {
        for k in self.map.keys() {
            if !known.iter().any(|x| x == k) {
                return Err(self.err(
                    k,
                    format!(
                        "this tool takes no such argument (it takes: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn present(&self, field: &str) -> Option<&Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    pub fn str_opt(&self, field: &str, max: usize) -> Result<Option<String>, ArgError> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::String(s)) if s.len() > max => Err(self.err(
                field,
                format!("{} bytes, more than the {max} it may hold", s.len()),
            )),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.err(field, format!("expected a string, got {}", kind_of(v)))),
        }
    }

    pub fn str_req(&self, field: &str, max: usize) -> Result<String, ArgError> {
        match self.str_opt(field, max)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(self.err(field, "is empty".into())),
            None => Err(self.err(field, "is required".into())),
        }
    }

    pub fn u64_opt(&self, field: &str, max: u64) -> Result<Option<u64>, ArgError> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if v <= max => Ok(Some(v)),
                Some(v) => Err(self.err(field, format!("{v} is more than the most, {max}"))),
                None => Err(self.err(
                    field,
                    format!("expected a whole number from 0 to {max}, got {n}"),
                )),
            },
            Some(v) => Err(self.err(
                field,
                format!("expected a whole number, got {}", kind_of(v)),
            )),
        }
    }

    pub fn bool_opt(&self, field: &str) -> Result<Option<bool>, ArgError> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.err(field, format!("expected a boolean, got {}", kind_of(v)))),
        }
    }

    pub fn strings(&self, field: &str) -> Result<Vec<String>, ArgError> {
        match self.present(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                if items.len() > 256 {
                    return Err(self.err(field, format!("{} items, more than 256", items.len())));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Value::String(s) if s.len() <= MAX_SHORT => Ok(s.clone()),
                        Value::String(s) => Err(self.err(
                            &format!("{field}[{i}]"),
                            format!("{} bytes, more than {MAX_SHORT}", s.len()),
                        )),
                        v => Err(self.err(
                            &format!("{field}[{i}]"),
                            format!("expected a string, got {}", kind_of(v)),
                        )),
                    })
                    .collect()
            }
            Some(v) => Err(self.err(
                field,
                format!("expected an array of strings, got {}", kind_of(v)),
            )),
        }
    }
}
