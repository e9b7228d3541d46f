//! What a corpus runner reads of an engine in process: the `check` step's view of one volume,
//! the counters, and the invariants checked after every step.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::{json, Value};
use tether_core::{AccessMode, CoreError, Engine};

use crate::shape::Shape;

/// The `check` step: the volume's attachment, epoch, fence and detach record, and whether it
/// is within `grace` (the engine's grace period when `None`).
pub fn check(e: &Engine, shape: Shape, volume: &str, grace: Option<Duration>) -> Value {
    let grace = grace.unwrap_or(e.config().grace_period);
    let read = || -> Result<Value, CoreError> {
        let (at, fence, detach) = (e.get(volume)?, e.fence(volume)?, e.detach_timestamp(volume)?);
        let (within, epoch) = (e.is_within_grace_period(volume, grace)?, e.epoch(volume)?);
        Ok(shape.volume(at.as_ref(), epoch, fence.as_ref(), detach.as_ref(), within))
    };
    read().unwrap_or_else(|err| shape.error(&err))
}

/// The `stats` step: every counter by its Rust name.
pub fn stats(e: &Engine) -> Value {
    Value::Object(e.stats().fields().iter().map(|&(k, v)| (k.to_owned(), json!(v))).collect())
}

/// No RWO volume on two nodes, no RWX volume on three, and each fence lists its volume's nodes.
pub fn invariants(e: &Engine) -> Result<(), String> {
    for a in e.list() {
        let limit = if a.access.mode == AccessMode::Rwo { 1 } else { 2 };
        if a.nodes.len() > limit {
            return Err(format!("invariant broken: {} is {} on {}", a.volume, a.access, a.nodes));
        }
        let fence = e.fence(&a.volume).unwrap().ok_or("an attached volume has no fence")?;
        let fenced: Vec<String> = fence.nodes().map(|n| n.node.to_string()).collect();
        let held: Vec<String> = a.nodes.iter().map(ToString::to_string).collect();
        if fenced != held || fence.epoch != a.epoch {
            return Err(format!("invariant broken: fence {fence} of {} does not match {}", a.volume, a.nodes));
        }
    }
    Ok(())
}
