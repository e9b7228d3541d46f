//! Baselines the benchmarks measure Tether against (filled in with the benchmarks).
