//! The rules for volume and node identifiers, written once for every front end.

use crate::error::{InputField, InvalidInput, Problem};

/// The longest identifier accepted, in bytes: the CSI specification's limit for string fields.
pub const MAX_ID_LEN: usize = 128;

/// Checks that `id` is a usable volume identifier: non-empty, no NUL, at most [`MAX_ID_LEN`] bytes.
pub fn check_volume_id(id: &str) -> Result<(), InvalidInput> {
    check(InputField::Volume, id)
}

/// Checks that `id` is a usable node identifier: non-empty, no NUL, at most [`MAX_ID_LEN`] bytes.
pub fn check_node_id(id: &str) -> Result<(), InvalidInput> {
    check(InputField::Node, id)
}

fn check(field: InputField, id: &str) -> Result<(), InvalidInput> {
    let problem = if id.is_empty() {
        Problem::Empty
    } else if id.len() > MAX_ID_LEN {
        Problem::TooLong { len: id.len(), max: MAX_ID_LEN }
    } else if let Some(at) = id.bytes().position(|b| b == 0) {
        Problem::ContainsNul { at }
    } else {
        return Ok(());
    };
    Err(InvalidInput { field, problem })
}
