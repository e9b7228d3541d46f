//! Adopting attachments recorded outside the driver (Kubernetes `VolumeAttachment`s): the rule
//! is the engine's (`tether_core::adopt`, the node limit and epoch arithmetic written once in
//! core); the driver gathers what it observed (`k8s::rebuild`) and calls `Engine::adopt`.

pub use tether_core::adopt::{plan, AdoptReport, Observed, ObservedNode, ObservedVolume, Refused};
