//! doorman: a policy-as-code authorization engine and HTTP sidecar on Cedar.
//!
//! The data flow, one module per step, each importing only those above it
//! in this list:
//!
//! - [`diag`], [`uid`]: diagnostics with file, line, column and an excerpt;
//!   entity references as users type them.
//! - [`store`]: doorman's compact entity store, its ancestors closed once,
//!   generations sharing what did not change.
//! - [`entity_json`]: Cedar entity JSON read fast, straight into the
//!   store's records (stored and request entities alike).
//! - [`slice`], [`shapes`]: what a request needs evaluated (policies by
//!   scope) and validated (request shapes), indexed at load time.
//! - [`snapshot`]: the immutable, validated bundle everything answers from.
//! - [`load`]: files on disk (policies, schema, entities) → a [`Snapshot`],
//!   or every diagnostic explaining why not, each pointing at file:line; a
//!   reload re-reads only the entity files that changed.
//! - [`postgres`]: entity rows and their changes read from the
//!   application's PostgreSQL (the load side of them is [`load`]'s).
//! - [`gateway`]: route maps: an HTTP request (method, path, headers, a
//!   verified JWT) → a [`Query`]; loaded with the snapshot.
//! - [`entities`]: request-scoped entities, parsed and checked.
//! - [`view`]: what one request can reach, as a small Cedar `Entities`.
//! - [`decide`]: a [`Query`] → Cedar → an [`Answer`] (decision, reasons, errors).
//! - [`search`]: the principals, resources or actions a question allows,
//!   each decided by [`decide`], candidates found by the store's type index.
//! - [`reload`]: keeping the serving snapshot current: file watching and
//!   reloads, and following database sources' changes.
//! - [`server`], [`testing`], [`cli`]: the sidecar, `doorman test`, the CLI.
//! - [`fmt`], [`diff`]: `doorman fmt`; `doorman diff`, what a policy edit
//!   changes (over the loaded world, every request, and logged traffic).
//!
//! - `fuzzing` (hidden): thin forwarders to the server's private request
//!   readers, for the fuzz targets in `fuzz/` only; not a stable API.
//!
//! The binary (`src/main.rs`) is a thin CLI over this library, so tests and
//! benchmarks drive the same code the sidecar runs.

pub mod cli;
pub mod clip;
pub mod decide;
pub mod diag;
pub mod diff;
pub mod entities;
pub mod entity_json;
pub mod fmt;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod load;
pub mod postgres;
pub mod reload;
pub mod search;
pub mod server;
pub mod shapes;
pub mod slice;
pub mod snapshot;
pub mod store;
pub mod testing;
pub mod uid;
pub mod view;

pub use decide::{Answer, Decision, PolicyError, Query, QueryError};
pub use diag::Diagnostic;
pub use entities::{Overlay, OverlayError};
pub use load::{LoadError, Sources, load, load_over};
pub use search::{Cursor, Page, Searched};
pub use snapshot::{PolicyInfo, Snapshot, ValidationMode};
pub use store::Store;
