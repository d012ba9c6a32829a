//! doorman: a policy-as-code authorization engine and HTTP sidecar on Cedar.
//!
//! The data flow, one module per step:
//!
//! - [`load`]: files on disk (policies, schema, entities) → a [`Snapshot`],
//!   or every diagnostic explaining why not, each pointing at file:line.
//! - [`snapshot`]: the immutable, validated bundle everything answers from.
//! - [`entities`]: request-scoped entities layered over the stored ones.
//! - [`decide`]: a [`Query`] → Cedar → an [`Answer`] (decision, reasons, errors).
//! - [`reload`]: file watching that triggers a reload of the whole snapshot.
//! - [`diag`]: diagnostics with file, line, column and a rendered excerpt.
//!
//! The binary (`src/main.rs`) is a thin CLI over this library, so tests and
//! benchmarks drive the same code the sidecar runs.

pub mod cli;
pub mod decide;
pub mod diag;
pub mod entities;
pub mod load;
pub mod reload;
pub mod server;
pub mod slice;
pub mod snapshot;
pub mod testing;

pub use decide::{Answer, Decision, PolicyError, Query, QueryError};
pub use diag::Diagnostic;
pub use entities::{Overlay, OverlayError};
pub use load::{LoadError, Sources, load};
pub use snapshot::{PolicyInfo, Snapshot, ValidationMode};
