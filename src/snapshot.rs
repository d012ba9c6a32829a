//! The unit everything answers from: one immutable, validated bundle of
//! policies, schema and entities, with a content revision.
//!
//! A [`Snapshot`] is only ever produced by [`crate::load`], after every file
//! parsed and (unless validation is `off`) the validator accepted every
//! policy. It never changes afterwards: the sidecar swaps whole snapshots
//! instead of mutating one, so a request (or a whole batch) is answered by
//! exactly one consistent set of files.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use cedar_policy::{Entities, PolicySet, Schema};
use serde::Serialize;

use crate::shapes::EmptyContext;
use crate::slice::Slices;
use crate::store::Store;
use crate::store::schema::Conformance;

/// How strictly policies and requests are checked against the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ValidationMode {
    /// Cedar's strict validation (the default).
    #[default]
    Strict,
    /// Cedar's permissive validation.
    Permissive,
    /// No policy or request validation; the schema (if any) still directs parsing.
    Off,
}

impl FromStr for ValidationMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "strict" => Ok(Self::Strict),
            "permissive" => Ok(Self::Permissive),
            "off" => Ok(Self::Off),
            other => Err(format!(
                "unknown validation mode `{other}` (expected strict, permissive or off)"
            )),
        }
    }
}

impl fmt::Display for ValidationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Strict => "strict",
            Self::Permissive => "permissive",
            Self::Off => "off",
        })
    }
}

/// Where a policy came from and what it says about itself.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PolicyInfo {
    pub id: String,
    /// `permit` or `forbid`.
    #[schema(value_type = String, pattern = "^(permit|forbid)$")]
    pub effect: &'static str,
    /// True for a template (a policy with `?principal`/`?resource` slots).
    pub template: bool,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub annotations: BTreeMap<String, String>,
}

impl PolicyInfo {
    /// `file:line`, for messages.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// One validated, immutable bundle of policies, schema and entities.
///
/// Guarantees: every policy parsed, policy IDs are unique, the validator
/// accepted the policies in the snapshot's [`ValidationMode`] (unless it is
/// `off`), and the entities conform to the schema when there is one.
pub struct Snapshot {
    // The policy side is shared by every snapshot that differs only in
    // entities (a database change publishes one per window of changes).
    pub(crate) policies: Arc<PolicySet>,
    pub(crate) schema: Option<Arc<Schema>>,
    /// The stored entities, shared with the snapshots before and after it
    /// as far as they hold the same.
    pub(crate) store: Arc<Store>,
    /// For a small store, the whole of it as Cedar's `Entities`, so that a
    /// decision without request entities needs no per-request view.
    pub(crate) whole: Option<Arc<Entities>>,
    /// The schema's entity types described once, for checking entities.
    pub(crate) conformance: Option<Arc<Conformance>>,
    /// What the entity files held when read, so that a reload re-reads only
    /// files that changed.
    pub(crate) entity_files: Arc<crate::load::EntityFiles>,
    /// Each database source's standing; its entities are in `store`.
    pub(crate) databases: Vec<crate::load::DatabaseState>,
    /// The policies indexed by scope, so a request evaluates only those that
    /// can apply to it. Shared by snapshots that differ only in entities.
    pub(crate) slices: Arc<Slices>,
    /// Request shapes that need no validation when their context is empty.
    /// Depends on the schema only, like `slices`.
    pub(crate) empty_context: Arc<EmptyContext>,
    pub(crate) info: Arc<[PolicyInfo]>,
    pub(crate) by_id: Arc<foldhash::HashMap<String, usize>>,
    pub(crate) revision: String,
    /// The revision of the files alone.
    pub(crate) file_revision: String,
    pub(crate) loaded_at: SystemTime,
    pub(crate) validation: ValidationMode,
    pub(crate) schema_files: usize,
    /// The validator's warnings, at file:line (empty with validation off).
    pub(crate) warnings: Arc<[crate::diag::Diagnostic]>,
    /// The gateway route map, when one was given (checked against this
    /// snapshot's schema).
    pub(crate) routes: Option<Arc<crate::gateway::RouteMap>>,
}

impl Snapshot {
    /// The gateway route map this snapshot was loaded with, if any.
    pub fn route_map(&self) -> Option<&crate::gateway::RouteMap> {
        self.routes.as_deref()
    }

    /// A stable hash of the input files' paths and contents.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    pub fn validation(&self) -> ValidationMode {
        self.validation
    }

    /// Every policy and template, in load order (sorted file path, then position).
    pub fn policies(&self) -> &[PolicyInfo] {
        &self.info
    }

    pub fn policy(&self, id: &str) -> Option<&PolicyInfo> {
        self.by_id.get(id).map(|&i| &self.info[i])
    }

    /// Number of static (non-template) policies.
    pub fn policy_count(&self) -> usize {
        self.info.iter().filter(|p| !p.template).count()
    }

    pub fn template_count(&self) -> usize {
        self.info.iter().filter(|p| p.template).count()
    }

    /// Number of schema files (0 without a schema).
    pub fn schema_files(&self) -> usize {
        self.schema_files
    }

    /// Number of entities read from the entity files (action entities from
    /// the schema are not counted).
    pub fn entity_count(&self) -> usize {
        self.store.len()
    }

    /// The entity files this snapshot's load read anew (rather than took
    /// from the snapshot before it), by path.
    pub fn changed_entity_files(&self) -> &[String] {
        self.entity_files.changed()
    }

    /// What the validator warned about without refusing the policies
    /// (`doorman check` prints them; `--deny-warnings` refuses them).
    pub fn warnings(&self) -> &[crate::diag::Diagnostic] {
        &self.warnings
    }

    pub fn schema(&self) -> Option<&Schema> {
        self.schema.as_deref()
    }

    /// Identifies the schema entities were read against.
    pub(crate) fn schema_key(&self) -> &str {
        self.entity_files.schema_key()
    }

    /// The stored entities.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Decide every request through a per-request view of the store, even
    /// where the store is small enough to be evaluated whole: what the
    /// differential tests hold against Cedar.
    #[doc(hidden)]
    pub fn with_views_only(mut self) -> Snapshot {
        self.whole = None;
        self
    }

    pub fn policy_set(&self) -> &PolicySet {
        &self.policies
    }

    /// The one-line summary `check` prints: `42 policies, 1 schema, 118 entities`.
    pub fn summary(&self) -> String {
        summary_line(
            self.policy_count(),
            self.template_count(),
            self.schema_files,
            self.store.len(),
        )
    }
}

/// Shared by the snapshot and by a failed load, which still reports counts.
pub(crate) fn summary_line(
    policies: usize,
    templates: usize,
    schemas: usize,
    entities: usize,
) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut parts = vec![plural(policies, "policy", "policies")];
    if templates > 0 {
        parts.push(plural(templates, "template", "templates"));
    }
    parts.push(plural(schemas, "schema", "schemas"));
    parts.push(plural(entities, "entity", "entities"));
    parts.join(", ")
}
