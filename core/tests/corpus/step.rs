//! Reading one JSON object of the corpus: every key it has must be read, so a misspelt key
//! or an unknown step fails instead of being ignored.
#![allow(dead_code)]

use std::collections::BTreeSet;

use serde_json::{Map, Value};

pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    what: String,
    read: BTreeSet<&'static str>,
}

impl<'a> Fields<'a> {
    pub fn new(v: &'a Value, what: &str) -> Result<Self, String> {
        let map = v.as_object().ok_or_else(|| format!("{what}: not an object: {v}"))?;
        Ok(Self { map, what: what.to_owned(), read: BTreeSet::new() })
    }

    pub fn opt(&mut self, key: &'static str) -> Option<&'a Value> {
        self.read.insert(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn get(&mut self, key: &'static str) -> Result<&'a Value, String> {
        self.opt(key).ok_or_else(|| format!("{}: missing key {key:?}", self.what))
    }

    pub fn str(&mut self, key: &'static str) -> Result<String, String> {
        let v = self.get(key)?;
        v.as_str().map(str::to_owned).ok_or_else(|| format!("{}: {key} is not a string: {v}", self.what))
    }

    pub fn opt_str(&mut self, key: &'static str) -> Result<Option<String>, String> {
        match self.opt(key) {
            None => Ok(None),
            Some(v) => {
                v.as_str().map(|s| Some(s.to_owned())).ok_or_else(|| format!("{}: {key} is not a string", self.what))
            }
        }
    }

    pub fn u64(&mut self, key: &'static str) -> Result<u64, String> {
        let v = self.get(key)?;
        v.as_u64().ok_or_else(|| format!("{}: {key} is not an unsigned integer: {v}", self.what))
    }

    pub fn opt_f64(&mut self, key: &'static str) -> Result<Option<f64>, String> {
        match self.opt(key) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| format!("{}: {key} is not a number", self.what)),
        }
    }

    pub fn f64(&mut self, key: &'static str) -> Result<f64, String> {
        self.opt_f64(key)?.ok_or_else(|| format!("{}: missing key {key:?}", self.what))
    }

    pub fn bool_or(&mut self, key: &'static str, default: bool) -> Result<bool, String> {
        match self.opt(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| format!("{}: {key} is not a boolean", self.what)),
        }
    }

    pub fn array(&mut self, key: &'static str) -> Result<&'a Vec<Value>, String> {
        let v = self.get(key)?;
        v.as_array().ok_or_else(|| format!("{}: {key} is not an array", self.what))
    }

    pub fn strings(&mut self, key: &'static str) -> Result<Vec<String>, String> {
        self.array(key)?
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| format!("{}: {key} holds a non-string", self.what)))
            .collect()
    }

    /// Fails on any key that was never read.
    pub fn finish(self) -> Result<(), String> {
        let unknown: Vec<&String> = self.map.keys().filter(|k| !self.read.contains(k.as_str())).collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(format!("{}: unknown keys {unknown:?}", self.what))
        }
    }
}
