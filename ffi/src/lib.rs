//! `tether-ffi`: the C ABI of the Tether engine (library `libtether`, header
//! `include/tether.h`, generated from this crate by cbindgen).
//!
//! Every export follows the same rules: it runs behind a panic boundary, checks its pointers,
//! validates the UTF-8 and length of text, writes its outputs only on success, and returns a
//! [`tether_status`]. A failure's message and details are kept per OS thread
//! (`tether_last_error*`). Strings the library returns are freed by `tether_string_free`.
//! Engine errors become statuses in one place, [`status`].
//!
//! This is the only crate of the workspace with `unsafe` code; each block is small and says
//! why it is sound.

// Every export's safety contract is the header's rules block (ffi/cbindgen.toml) plus the
// pointer notes in its own comment, which is what C and Go callers read.
#![allow(clippy::missing_safety_doc)]
// Doc comments become the header's comments; C names there read better without backticks.
#![allow(clippy::doc_markdown)]

mod attach;
mod boundary;
mod engine;
mod epochs;
pub mod fence;
mod fill;
mod json;
mod library;
mod query;
mod state;
pub mod status;
pub mod types;

pub use attach::*;
pub use engine::*;
pub use epochs::*;
pub use fence::*;
pub use library::*;
pub use query::*;
pub use state::*;
pub use status::tether_status;
pub use types::*;
