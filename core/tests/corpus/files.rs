//! Finding and reading the corpus: its files in order, and each scenario's name, CSI mark and
//! steps, every key checked.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::step::Fields;

/// A scenario, or the name and fault of one that could not be read.
pub type Read = Result<Scenario, (String, String)>;

pub struct Scenario {
    /// `area: name`, unique across the corpus.
    pub name: String,
    /// Why the scenario has no CSI equivalent, if it has none.
    pub csi: Option<String>,
    pub steps: Vec<Value>,
}

/// tests/contract/*.json, sorted; every runner's crate sits one folder below the root.
pub fn files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/contract");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("tests/contract exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// One area file's scenarios; a malformed scenario is an `Err` named after it.
pub fn read(path: &Path) -> Result<Vec<Read>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut file = Fields::new(&doc, "file")?;
    let area = file.str("area")?;
    file.str("design")?;
    let scenarios = file.array("scenarios")?;
    file.finish()?;
    Ok(scenarios.iter().map(|s| scenario(&area, s)).collect())
}

fn scenario(area: &str, s: &Value) -> Read {
    let name = format!("{area}: {}", s.get("name").and_then(Value::as_str).unwrap_or("(no name)"));
    let read = || -> Result<Scenario, String> {
        let mut f = Fields::new(s, "scenario")?;
        f.str("name")?;
        f.opt_str("row")?;
        let csi = f.opt_str("csi")?;
        let steps = f.array("steps")?.clone();
        f.finish()?;
        Ok(Scenario { name: name.clone(), csi, steps })
    };
    read().map_err(|e| (name.clone(), e))
}
