//! `tether-driver`: the CSI driver `tether-csi`. Controller publish and unpublish are the
//! Tether engine's decisions; volumes live in an embedded store under `--state-dir`, with
//! every acknowledged change made durable first; metrics go to Prometheus.
//!
//! Hooks for a Kubernetes layer: [`nodes::NodeDirectory`] (which nodes exist),
//! [`events::EventSink`] (where events go) and [`store::VolumeStore`] (where volumes live).

pub mod adopt;
pub mod authority;
pub mod capability;
pub mod catalog;
pub mod controller;
pub mod driver;
pub mod events;
pub mod http;
pub mod inflight;
pub mod k8s;
pub mod logging;
pub mod metrics;
pub mod mount;
pub mod node;
pub mod nodes;
pub mod persisted;
pub mod proxy;
pub mod reconciler;
mod refence;
pub mod registration;
pub mod server;
pub mod service;
pub mod status;
pub mod step;
pub mod store;
pub mod volume;

/// The CSI messages and services, generated from `proto/csi.proto`.
#[allow(clippy::pedantic, missing_docs)]
pub mod csi {
    tonic::include_proto!("csi.v1");
}

pub use driver::{ChangeListener, Driver, Parts, Settings, StartupError};
