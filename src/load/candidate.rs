//! A candidate policy set read beside a serving snapshot (`serve --shadow`).
//!
//! A shadow evaluation asks "what would these other policies have answered
//! to the very same question?", so everything but the policies (schema,
//! entities, database rows) must be the serving snapshot's. A [`Candidate`]
//! is therefore only the policy side, parsed and validated once against the
//! live schema; [`Candidate::beside`] pairs it with any live snapshot by
//! sharing that snapshot's `Arc`s, which costs a few reference counts, not
//! a load. When the live schema or validation mode changes the candidate is
//! no longer valid for it ([`Candidate::fits`] says so) and is read again.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use cedar_policy::{PolicySet, Schema};
use sha2::{Digest, Sha256};

use super::{LoadError, load_policies, validate};
use crate::diag::Diagnostic;
use crate::slice::Slices;
use crate::snapshot::{PolicyInfo, Snapshot, ValidationMode, summary_line};

/// A policy set parsed and validated against one live snapshot's schema.
///
/// Guarantees, like a [`Snapshot`]'s: every policy parsed, ids are unique,
/// and the validator accepted them in the live snapshot's mode against the
/// schema it was read with.
pub struct Candidate {
    policies: Arc<PolicySet>,
    slices: Arc<Slices>,
    info: Arc<[PolicyInfo]>,
    by_id: Arc<foldhash::HashMap<String, usize>>,
    warnings: Arc<[Diagnostic]>,
    revision: String,
    /// The schema and mode it was validated with (compared by pointer: a
    /// reload that re-reads the schema makes a new `Arc`).
    schema: Option<Arc<Schema>>,
    validation: ValidationMode,
    loaded_at: SystemTime,
}

/// Reads the policies under `dir` and validates them as `live`'s own were.
pub fn load_candidate(dir: &Path, live: &Snapshot) -> Result<Candidate, LoadError> {
    let mut hasher = Sha256::new();
    let (policies, mut diags) = load_policies(dir, &mut hasher);
    let mut warnings = Vec::new();
    if let (Some(p), Some(schema)) = (&policies, &live.schema) {
        let (errors, found) = validate(p, schema, live.validation);
        diags.extend(errors);
        warnings = found;
    }
    match policies {
        Some(p) if diags.is_empty() => {
            let slices = Arc::new(Slices::build(&p.set, live.schema.as_deref()));
            let by_id = p
                .info
                .iter()
                .enumerate()
                .map(|(i, info)| (info.id.clone(), i))
                .collect();
            Ok(Candidate {
                policies: Arc::new(p.set),
                slices,
                info: p.info.into(),
                by_id: Arc::new(by_id),
                warnings: warnings.into(),
                revision: hex::encode(&hasher.finalize()[..8]),
                schema: live.schema.clone(),
                validation: live.validation,
                loaded_at: SystemTime::now(),
            })
        }
        p => {
            let count = |template: bool| {
                p.as_ref().map_or(0, |p| {
                    p.info.iter().filter(|i| i.template == template).count()
                })
            };
            Err(LoadError {
                summary: summary_line(count(false), count(true), 0, 0),
                diagnostics: diags,
            })
        }
    }
}

impl Candidate {
    /// True when this candidate was validated against `live`'s schema and
    /// mode, so [`Candidate::beside`] may pair them.
    pub fn fits(&self, live: &Snapshot) -> bool {
        let same_schema = match (&self.schema, &live.schema) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        same_schema && self.validation == live.validation
    }

    /// A snapshot that answers with these policies over everything else of
    /// `live` (its schema, entities and request checks), sharing all of it.
    pub fn beside(&self, live: &Snapshot) -> Snapshot {
        Snapshot {
            policies: self.policies.clone(),
            schema: live.schema.clone(),
            store: live.store.clone(),
            whole: live.whole.clone(),
            conformance: live.conformance.clone(),
            entity_files: live.entity_files.clone(),
            databases: live.databases.clone(),
            slices: self.slices.clone(),
            empty_context: live.empty_context.clone(),
            info: self.info.clone(),
            by_id: self.by_id.clone(),
            revision: self.revision.clone(),
            file_revision: self.revision.clone(),
            loaded_at: self.loaded_at,
            validation: live.validation,
            schema_files: live.schema_files,
            warnings: self.warnings.clone(),
            routes: live.routes.clone(),
        }
    }

    /// A hash of the candidate's policy files (paths and bytes).
    pub fn revision(&self) -> &str {
        &self.revision
    }

    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// Policies and templates, in load order.
    pub fn policies(&self) -> &[PolicyInfo] {
        &self.info
    }
}
