//! The corpus's one comparison rule: an expectation names a subset of the actual outcome's
//! JSON, and every value it names must match (numbers by value, so 29 equals 29.0).

use serde_json::Value;

/// `Ok` when every key `want` names is in `got` with an equal value; else the first difference.
pub fn subset(want: &Value, got: &Value, path: &str) -> Result<(), String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (key, wv) in w {
                let at = format!("{path}.{key}");
                let gv = g.get(key).ok_or_else(|| format!("{at}: expected {wv}, but the outcome has no such key"))?;
                subset(wv, gv, &at)?;
            }
            Ok(())
        }
        (Value::Array(w), Value::Array(g)) => {
            if w.len() != g.len() {
                return Err(format!("{path}: expected {want}, got {got}"));
            }
            w.iter().zip(g).enumerate().try_for_each(|(i, (wv, gv))| subset(wv, gv, &format!("{path}[{i}]")))
        }
        (Value::Number(w), Value::Number(g)) if same_number(w, g) => Ok(()),
        _ if want == got => Ok(()),
        _ => Err(format!("{path}: expected {want}, got {got}")),
    }
}

/// A step's verdict: a refusal only where one is expected, then the expectation as a subset.
pub fn judge(expect: Option<&Value>, got: &Value) -> Result<(), String> {
    let refused = got.get("error").is_some();
    match expect {
        Some(want) if want.get("error").is_none() && refused => Err(format!("expected {want}, refused with {got}")),
        Some(want) => subset(want, got, "expect"),
        None if refused => Err(format!("no error expected, got {got}")),
        None => Ok(()),
    }
}

/// Integers exactly (epochs use all 64 bits); anything else as a float.
fn same_number(w: &serde_json::Number, g: &serde_json::Number) -> bool {
    match (w.as_u64(), g.as_u64()) {
        (Some(a), Some(b)) => a == b,
        _ => w.as_f64() == g.as_f64(),
    }
}
