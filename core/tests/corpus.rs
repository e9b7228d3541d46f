//! The contract corpus (tests/contract/*.json) run over `tether-core`: one line per scenario,
//! a closing count, and a failing exit on any disagreement, unknown step or unknown key.

#[path = "corpus/compare.rs"]
mod compare;
#[path = "corpus/shape.rs"]
mod shape;
#[path = "corpus/step.rs"]
mod step;
#[path = "corpus/world.rs"]
mod world;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/contract")
}

/// A scenario's name and whether it passed (else why not).
type Outcome = (String, Result<(), String>);

/// Every scenario of one area file.
fn run_file(path: &Path) -> Result<Vec<Outcome>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut file = step::Fields::new(&doc, "file")?;
    let area = file.str("area")?;
    file.str("design")?;
    let scenarios = file.array("scenarios")?;
    file.finish()?;
    let mut out = Vec::new();
    for s in scenarios {
        let mut f = step::Fields::new(s, "scenario")?;
        let name = format!("{area}: {}", f.str("name")?);
        f.opt_str("row")?;
        f.opt_str("csi")?;
        let steps = f.array("steps")?;
        let result = f.finish().and_then(|()| world::World::run(steps));
        out.push((name, result));
    }
    Ok(out)
}

fn main() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/contract exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let (mut passed, mut failed) = (0, 0);
    let mut seen = std::collections::HashSet::new();
    for path in &files {
        let results = run_file(path).unwrap_or_else(|e| vec![(path.display().to_string(), Err(e))]);
        for (name, result) in results {
            let result = if seen.insert(name.clone()) { result } else { Err("a second scenario of this name".into()) };
            match result {
                Ok(()) => {
                    passed += 1;
                    println!("ok   {name}");
                }
                Err(why) => {
                    failed += 1;
                    println!("FAIL {name}: {why}");
                }
            }
        }
    }
    println!("corpus (tether-core): {passed} passed, {failed} failed");
    if failed > 0 || passed == 0 {
        std::process::exit(1);
    }
}
