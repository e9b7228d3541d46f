//! The contract corpus (tests/contract/*.json) run over `tether-core`: one line per scenario,
//! a closing count, and a failing exit on any disagreement, unknown step or unknown key.

#[path = "corpus/compare.rs"]
mod compare;
#[path = "corpus/files.rs"]
mod files;
#[path = "corpus/shape.rs"]
mod shape;
#[path = "corpus/step.rs"]
mod step;
#[path = "corpus/view.rs"]
mod view;
#[path = "corpus/world.rs"]
mod world;

fn main() {
    let (mut passed, mut failed) = (0, 0);
    let mut seen = std::collections::HashSet::new();
    for path in files::files() {
        let scenarios = files::read(&path).unwrap_or_else(|e| vec![Err((path.display().to_string(), e))]);
        for scenario in scenarios {
            let (name, result) = match scenario {
                Ok(s) => (s.name.clone(), world::World::run(&s.steps)),
                Err((name, why)) => (name, Err(why)),
            };
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
    println!("corpus-core: {passed} passed, {failed} failed");
    if failed > 0 || passed == 0 {
        std::process::exit(1);
    }
}
