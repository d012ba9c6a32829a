//! Files on disk → a [`Snapshot`], or every reason why not.
//!
//! Loading is all-or-nothing: either every file parses and validates and a
//! snapshot comes out, or a [`LoadError`] lists every problem found (each
//! stage carries on past the first error so one run shows them all). This is
//! what makes hot reload safe: a broken edit produces an error, never a
//! half-loaded snapshot.
//!
//! A reload ([`load_over`]) starts from the snapshot that is serving: entity
//! files whose bytes did not change are not read again, and their entities
//! stay in the new store generation as they are (see [`entities`]).
//!
//! The revision is a SHA-256 over each input's kind, path and bytes (for
//! entity files, the SHA-256 of their bytes), in the order they are read
//! (sorted), so the same files always give the same revision and any
//! changed byte gives another.

mod candidate;
mod database;
mod entities;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use cedar_policy::{Policy, PolicyId, PolicySet, Schema, SchemaFragment, Template, Validator};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use candidate::{Candidate, load_candidate};
pub use database::{
    ApplyError, DatabaseSource, DatabaseState, MAX_DATABASES, Refusal, Row, RowBatch, Scope, Tls,
};
pub use entities::EntityFiles;
use entities::Reading;

use crate::diag::{Diagnostic, LineCursor};
use crate::shapes::EmptyContext;
use crate::slice::Slices;
use crate::snapshot::{PolicyInfo, Snapshot, ValidationMode, summary_line};
use crate::store::Store;
use crate::store::schema::Conformance;

/// Stores of at most this many entities are also kept whole as Cedar's own
/// `Entities` (about 4.5 KB per entity), so that a decision without request
/// entities evaluates against it directly instead of a per-request view.
pub const WHOLE_STORE_LIMIT: usize = 20_000;

/// Which files make up a snapshot, and how strictly to check them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// A directory read recursively for `*.cedar` files (or a single file).
    pub policies: PathBuf,
    /// A `*.cedarschema` / `*.cedarschema.json` file or a directory of them.
    pub schema: Option<PathBuf>,
    /// Entity files (`*.json`, `*.yaml`, `*.yml`) or directories of them.
    pub entities: Vec<PathBuf>,
    /// Databases to read entities from as well (see [`crate::postgres`]).
    /// [`load`] reads files only: a snapshot with database sources is not
    /// complete ([`Snapshot::is_complete`]) until their rows are applied.
    pub databases: Vec<DatabaseSource>,
    pub validation: ValidationMode,
    /// A gateway route map (`serve --routes`, see [`crate::gateway`]),
    /// loaded and checked against the schema with everything else.
    pub routes: Option<PathBuf>,
}

/// Why no snapshot was produced: every problem found, and how much did load.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{summary}: {} error{}", diagnostics.len(), if diagnostics.len() == 1 { "" } else { "s" })]
pub struct LoadError {
    pub diagnostics: Vec<Diagnostic>,
    /// Counts of what did load, in the same form as a good snapshot's summary.
    pub summary: String,
}

impl LoadError {
    fn single(d: Diagnostic) -> Self {
        LoadError {
            diagnostics: vec![d],
            summary: summary_line(0, 0, 0, 0),
        }
    }
}

/// Loads and validates everything `sources` names.
pub fn load(sources: &Sources) -> Result<Snapshot, LoadError> {
    load_over(sources, None)
}

/// Loads `sources` as a reload after `previous`: entity files whose bytes
/// are unchanged (and read against the same schema) are taken from it.
/// The result is the same snapshot a fresh [`load`] gives.
pub fn load_over(sources: &Sources, previous: Option<&Snapshot>) -> Result<Snapshot, LoadError> {
    let mut diags = Vec::new();
    let mut hasher = Sha256::new();

    let (policies, mut policy_diags) = load_policies(&sources.policies, &mut hasher);
    diags.append(&mut policy_diags);

    let (schema, schema_files, schema_key) = match &sources.schema {
        None => (None, 0, String::new()),
        Some(path) => match load_schema(path, &mut hasher) {
            Ok((s, n, key)) => (Some(s), n, key),
            Err(mut d) => {
                diags.append(&mut d);
                (None, 0, String::new())
            }
        },
    };
    let schema_failed = sources.schema.is_some() && schema.is_none();

    // Each source's records carry an id of their own above the files'; past
    // this many the ids would run out.
    if sources.databases.len() > MAX_DATABASES {
        diags.push(Diagnostic::new(
            Path::new(sources.databases[MAX_DATABASES].label()),
            0,
            0,
            format!("at most {MAX_DATABASES} database sources can be given to --entities"),
        ));
    }

    if sources.validation != ValidationMode::Off && sources.schema.is_none() {
        diags.push(Diagnostic::new(
            &sources.policies,
            0,
            0,
            format!(
                "validation mode `{}` needs a schema: pass --schema, or --validation off",
                sources.validation
            ),
        ));
    }

    // Validate whatever parsed, so one run reports syntax errors in one file
    // and type errors in another.
    let mut warnings = Vec::new();
    if let (Some(p), Some(s)) = (&policies, &schema) {
        let (errors, found) = validate(p, s, sources.validation);
        diags.extend(errors);
        warnings = found;
    }

    // Entities are parsed against the schema, so a broken schema would only
    // add noise here; the schema's own errors are already reported.
    let conformance = schema.as_ref().map(|s| Arc::new(Conformance::new(s)));
    let entities = if schema_failed {
        None
    } else {
        let reading = Reading {
            schema: schema.as_ref(),
            conformance: conformance.as_deref(),
            key: &schema_key,
        };
        let previous = previous.map(|p| (&*p.store, &*p.entity_files));
        let labels: Vec<String> = sources
            .databases
            .iter()
            .map(|d| d.label().to_owned())
            .collect();
        match entities::load(&sources.entities, &reading, previous, &mut hasher, &labels) {
            Ok(e) => Some(e),
            Err(mut d) => {
                diags.append(&mut d);
                None
            }
        }
    };

    // The route map is checked against the schema, so only a schema that
    // loaded (or none at all) can check it.
    let routes = match &sources.routes {
        Some(path) if !schema_failed => {
            match crate::gateway::load_route_map(path, schema.as_ref()) {
                Ok((map, bytes)) => {
                    hasher.update(b"routes\0");
                    hasher.update(path.display().to_string().as_bytes());
                    hasher.update(b"\0");
                    hasher.update(&bytes);
                    Some(Arc::new(map))
                }
                Err(mut d) => {
                    diags.append(&mut d);
                    None
                }
            }
        }
        _ => None,
    };

    let count = |p: &Option<LoadedPolicies>, template: bool| {
        p.as_ref().map_or(0, |p| {
            p.info.iter().filter(|i| i.template == template).count()
        })
    };
    // The database sources' entities stay in the store only while the
    // store is built over the previous one: same sources, same schema.
    let databases = match previous {
        Some(p)
            if p.entity_files.schema_key() == schema_key
                && p.databases
                    .iter()
                    .map(|d| d.label.as_str())
                    .eq(sources.databases.iter().map(|d| d.label())) =>
        {
            p.databases.clone()
        }
        _ => database::unread(&sources.databases),
    };
    match (policies, entities) {
        (Some(policies), Some((store, files))) if diags.is_empty() => {
            let revision = hex::encode(&hasher.finalize()[..8]);
            let mut snapshot = assemble(
                policies,
                schema,
                schema_files,
                conformance,
                store,
                files,
                revision,
                databases,
                sources.validation,
                warnings,
            );
            snapshot.routes = routes;
            Ok(snapshot)
        }
        (policies, entities) => Err(LoadError {
            summary: summary_line(
                count(&policies, false),
                count(&policies, true),
                schema_files,
                entities.map_or(0, |e| e.0.len()),
            ),
            diagnostics: diags,
        }),
    }
}

impl Snapshot {
    /// The same policies and schema over other entity files: what a test
    /// suite with its own sample world runs against.
    pub fn with_entity_files(&self, paths: &[PathBuf]) -> Result<Snapshot, LoadError> {
        let mut hasher = Sha256::new();
        hasher.update(self.revision.as_bytes());
        let key = self.entity_files.schema_key().to_owned();
        let reading = Reading {
            schema: self.schema.as_deref(),
            conformance: self.conformance.as_deref(),
            key: &key,
        };
        let (store, files) =
            entities::load(paths, &reading, None, &mut hasher, &[]).map_err(|diagnostics| {
                LoadError {
                    diagnostics,
                    summary: self.summary(),
                }
            })?;
        Ok(self.with_store(store, files, hex::encode(&hasher.finalize()[..8])))
    }

    /// The same policies and schema over entities given as Cedar entity JSON
    /// (`source` names where they came from, for messages).
    pub fn with_entity_json(&self, source: &Path, json: Value) -> Result<Snapshot, LoadError> {
        let Value::Array(items) = json else {
            return Err(LoadError::single(Diagnostic::new(
                source,
                0,
                0,
                "entities must be a JSON array of Cedar entities",
            )));
        };
        // Like every revision, a hash of the content: two worlds of the same
        // size must not share one.
        let mut hasher = Sha256::new();
        hasher.update(self.revision.as_bytes());
        hasher.update(serde_json::to_vec(&items).unwrap_or_default());
        let revision = hex::encode(&hasher.finalize()[..8]);
        let key = self.entity_files.schema_key().to_owned();
        let reading = Reading {
            schema: self.schema.as_deref(),
            conformance: self.conformance.as_deref(),
            key: &key,
        };
        let store =
            entities::from_json(source, items, &reading).map_err(|diagnostics| LoadError {
                diagnostics,
                summary: self.summary(),
            })?;
        Ok(self.with_store(store, EntityFiles::default(), revision))
    }

    /// The same policies and schema over other entities (files only).
    fn with_store(&self, store: Store, files: EntityFiles, revision: String) -> Snapshot {
        Snapshot {
            whole: whole(&store, &[]),
            store: Arc::new(store),
            entity_files: Arc::new(files),
            databases: Vec::new(),
            revision: revision.clone(),
            file_revision: revision,
            ..self.same_policies()
        }
    }

    /// The same policies, schema and files over a store that database
    /// rows changed.
    pub(crate) fn with_database_store(
        &self,
        store: Store,
        databases: Vec<DatabaseState>,
    ) -> Snapshot {
        Snapshot {
            whole: whole(&store, &databases),
            store: Arc::new(store),
            entity_files: Arc::clone(&self.entity_files),
            revision: database::revision(&self.file_revision, &databases),
            databases,
            file_revision: self.file_revision.clone(),
            ..self.same_policies()
        }
    }

    /// Everything but the entities, shared with `self`.
    fn same_policies(&self) -> Snapshot {
        Snapshot {
            policies: self.policies.clone(),
            schema: self.schema.clone(),
            whole: None,
            store: Arc::clone(&self.store),
            conformance: self.conformance.clone(),
            entity_files: Arc::clone(&self.entity_files),
            databases: self.databases.clone(),
            slices: Arc::clone(&self.slices),
            empty_context: Arc::clone(&self.empty_context),
            info: self.info.clone(),
            by_id: self.by_id.clone(),
            revision: self.revision.clone(),
            file_revision: self.file_revision.clone(),
            loaded_at: SystemTime::now(),
            validation: self.validation,
            schema_files: self.schema_files,
            warnings: Arc::clone(&self.warnings),
            routes: self.routes.clone(),
        }
    }
}

/// The whole store as Cedar's `Entities`, when it is small enough and
/// changes only with files: rebuilding it would cost every database change
/// as much as a decision costs for thousands of requests, so a store fed by
/// a database is always answered through per-request views.
fn whole(store: &Store, databases: &[DatabaseState]) -> Option<Arc<cedar_policy::Entities>> {
    (store.len() <= WHOLE_STORE_LIMIT && databases.is_empty()).then(|| Arc::new(store.to_cedar()))
}

#[allow(clippy::too_many_arguments)]
fn assemble(
    policies: LoadedPolicies,
    schema: Option<Schema>,
    schema_files: usize,
    conformance: Option<Arc<Conformance>>,
    store: Store,
    files: EntityFiles,
    file_revision: String,
    databases: Vec<DatabaseState>,
    validation: ValidationMode,
    warnings: Vec<Diagnostic>,
) -> Snapshot {
    let slices = Arc::new(Slices::build(&policies.set, schema.as_ref()));
    let empty_context = Arc::new(EmptyContext::build(schema.as_ref()));
    let by_id: foldhash::HashMap<String, usize> = policies
        .info
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.clone(), i))
        .collect();
    Snapshot {
        policies: Arc::new(policies.set),
        schema: schema.map(Arc::new),
        whole: whole(&store, &databases),
        store: Arc::new(store),
        conformance,
        entity_files: Arc::new(files),
        revision: database::revision(&file_revision, &databases),
        databases,
        file_revision,
        slices,
        empty_context,
        info: policies.info.into(),
        by_id: Arc::new(by_id),
        loaded_at: SystemTime::now(),
        validation,
        schema_files,
        warnings: warnings.into(),
        routes: None,
    }
}

// ---------------------------------------------------------------- policies

struct LoadedPolicies {
    set: PolicySet,
    info: Vec<PolicyInfo>,
    /// The text of every policy file, for rendering validation errors.
    texts: HashMap<String, String>,
}

enum Statement {
    Static(Policy),
    Template(Template),
}

/// Parses every policy file; returns what parsed (None if the directory
/// itself cannot be read) together with every problem found.
fn load_policies(dir: &Path, hasher: &mut Sha256) -> (Option<LoadedPolicies>, Vec<Diagnostic>) {
    let files = match list_files(dir, |name| name.ends_with(".cedar")) {
        Ok(f) => f,
        Err(d) => return (None, vec![d]),
    };
    let mut diags = Vec::new();
    let mut set = PolicySet::new();
    let mut info: Vec<PolicyInfo> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut texts = HashMap::new();

    for path in files {
        let text = match read(&path, hasher, "policy") {
            Ok(t) => t,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        let parsed = match PolicySet::from_str(&text) {
            Ok(p) => p,
            Err(errs) => {
                diags.extend(
                    errs.iter()
                        .map(|e| Diagnostic::from_miette(&path, &text, e)),
                );
                continue;
            }
        };
        let rel = relative_name(dir, &path);
        // Cedar numbers statements `policy0`, `policy1`, ... in source order,
        // templates and static policies alike.
        let mut statements: Vec<(usize, Statement)> = parsed
            .policies()
            .map(|p| (statement_index(p.id()), Statement::Static(p.clone())))
            .chain(
                parsed
                    .templates()
                    .map(|t| (statement_index(t.id()), Statement::Template(t.clone()))),
            )
            .collect();
        statements.sort_by_key(|(n, _)| *n);

        let mut cursor = 0;
        let mut lines = LineCursor::default();
        for (n, statement) in statements {
            let (annotation, src) = match &statement {
                Statement::Static(p) => (p.annotation("id").map(str::to_owned), p.to_cedar()),
                Statement::Template(t) => {
                    (t.annotation("id").map(str::to_owned), Some(t.to_cedar()))
                }
            };
            // The policy's text is a verbatim slice of the file, and policies
            // come in source order, so searching forward finds its position.
            let offset = src
                .and_then(|s| text[cursor..].find(&s).map(|o| (cursor + o, s.len())))
                .map_or(cursor, |(o, len)| {
                    cursor = o + len;
                    o
                });
            let (line, column) = lines.at(&text, offset);
            let id = annotation.unwrap_or_else(|| format!("{rel}#{n}"));
            let (effect, template, added) = match &statement {
                Statement::Static(p) => {
                    (effect_name(p.effect()), false, annotations(p.annotations()))
                }
                Statement::Template(t) => {
                    (effect_name(t.effect()), true, annotations(t.annotations()))
                }
            };
            let entry = PolicyInfo {
                id: id.clone(),
                effect,
                template,
                file: path.display().to_string(),
                line,
                column,
                annotations: added,
            };
            if let Some(&first) = seen.get(&id) {
                let other = &info[first];
                diags.push(
                    Diagnostic::new(
                        &path,
                        line,
                        column,
                        format!(
                            "duplicate policy ID `{id}`: {}:{} and {}:{}",
                            other.file, other.line, entry.file, entry.line
                        ),
                    )
                    .with_policy(&id),
                );
                continue;
            }
            let pid = PolicyId::new(&id);
            let result = match statement {
                Statement::Static(p) => set.add(p.new_id(pid)),
                Statement::Template(t) => set.add_template(t.new_id(pid)),
            };
            if let Err(e) = result {
                diags.push(Diagnostic::new(&path, line, column, e.to_string()).with_policy(&id));
                continue;
            }
            seen.insert(id, info.len());
            info.push(entry);
        }
        texts.insert(path.display().to_string(), text);
    }
    (Some(LoadedPolicies { set, info, texts }), diags)
}

fn statement_index(id: &PolicyId) -> usize {
    id.to_string()
        .strip_prefix("policy")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

fn effect_name(e: cedar_policy::Effect) -> &'static str {
    match e {
        cedar_policy::Effect::Permit => "permit",
        cedar_policy::Effect::Forbid => "forbid",
    }
}

fn annotations<'a>(
    it: impl Iterator<Item = (&'a str, &'a str)>,
) -> std::collections::BTreeMap<String, String> {
    it.map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// The validator's errors and its warnings (policies that can never apply,
/// confusable identifiers, ...), each located at file:line.
fn validate(
    policies: &LoadedPolicies,
    schema: &Schema,
    mode: ValidationMode,
) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
    let mode = match mode {
        ValidationMode::Off => return (Vec::new(), Vec::new()),
        ValidationMode::Strict => cedar_policy::ValidationMode::Strict,
        ValidationMode::Permissive => cedar_policy::ValidationMode::Permissive,
    };
    let result = Validator::new(schema.clone()).validate(&policies.set, mode);
    let locate = |id: &PolicyId, e: &dyn miette::Diagnostic| {
        // As written: `Display` escapes quotes and backslashes.
        let id = AsRef::<str>::as_ref(id).to_owned();
        let info = policies.info.iter().find(|p| p.id == id);
        match info.and_then(|i| policies.texts.get(&i.file).map(|t| (i, t))) {
            Some((i, text)) => Diagnostic::from_miette(Path::new(&i.file), text, e),
            None => Diagnostic::new(Path::new("<policies>"), 0, 0, e.to_string()),
        }
        .with_policy(id)
    };
    let errors = result
        .validation_errors()
        .map(|e| locate(e.policy_id(), e))
        .collect();
    let warnings = result
        .validation_warnings()
        .map(|w| locate(w.policy_id(), w))
        .collect();
    (errors, warnings)
}

// ------------------------------------------------------------------ schema

/// The schema, its file count, and a digest of its files' contents.
fn load_schema(
    path: &Path,
    hasher: &mut Sha256,
) -> Result<(Schema, usize, String), Vec<Diagnostic>> {
    let files = list_files(path, |name| {
        name.ends_with(".cedarschema") || name.ends_with(".cedarschema.json")
    })
    .map_err(|d| vec![d])?;
    if files.is_empty() {
        return Err(vec![Diagnostic::new(
            path,
            0,
            0,
            "no *.cedarschema or *.cedarschema.json file here",
        )]);
    }
    let mut diags = Vec::new();
    let mut fragments = Vec::new();
    let mut own = Sha256::new();
    for file in &files {
        let text = match read(file, hasher, "schema") {
            Ok(t) => t,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        own.update(file.to_string_lossy().as_bytes());
        own.update(text.as_bytes());
        let name = file.to_string_lossy();
        if name.ends_with(".json") {
            match SchemaFragment::from_json_str(&text) {
                Ok(f) => fragments.push(f),
                Err(e) => diags.push(json_schema_diagnostic(file, &text, &e)),
            }
        } else {
            match SchemaFragment::from_cedarschema_str(&text) {
                Ok((f, _warnings)) => fragments.push(f),
                Err(e) => diags.push(Diagnostic::from_miette(file, &text, &e)),
            }
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    Schema::from_schema_fragments(fragments)
        .map(|s| (s, files.len(), hex::encode(own.finalize())))
        .map_err(|e| vec![Diagnostic::new(path, 0, 0, e.to_string())])
}

/// JSON schema errors carry no span, but serde's message ends with
/// "at line L column C"; use it when it is there.
fn json_schema_diagnostic(file: &Path, text: &str, e: &dyn miette::Diagnostic) -> Diagnostic {
    let message = e.to_string();
    let mut d = Diagnostic::from_miette(file, text, e);
    if d.line == 0
        && let Some((l, c)) = parse_serde_location(&message)
    {
        d.line = l;
        d.column = crate::diag::char_column(text, l, c);
        d.message = crate::diag::without_json_position(&d.message, l, c);
        d.rendered = crate::diag::without_json_position(&d.rendered, l, c);
    }
    d
}

fn parse_serde_location(message: &str) -> Option<(usize, usize)> {
    let at = message.rfind("at line ")?;
    let mut words = message[at + 8..].split_whitespace();
    let line = words.next()?.parse().ok()?;
    let column = match (words.next(), words.next()) {
        (Some("column"), Some(c)) => c
            .trim_end_matches(|ch: char| !ch.is_ascii_digit())
            .parse()
            .ok()?,
        _ => 0,
    };
    Some((line, column))
}

// ---------------------------------------------------------------- entities

pub(crate) fn is_entity_file(name: &str) -> bool {
    name.ends_with(".json") || name.ends_with(".yaml") || name.ends_with(".yml")
}

pub(crate) fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// A YAML error located in `text` by doorman's convention: lines end at
/// `\n`, columns count characters. serde-saphyr's own line and column
/// follow YAML's, where a lone `\r` also ends a line, so after one they
/// named a line further down than the one at fault (found by fuzzing:
/// `fuzz/`, target `loader`); its byte offset places the error instead.
pub(crate) fn yaml_diagnostic(path: &Path, text: &str, e: &serde_saphyr::Error) -> Diagnostic {
    let yaml = e
        .location()
        .map(|l| (l.line() as usize, l.column() as usize));
    // The span's offset counts characters (its byte offset is not always
    // filled in).
    let byte = |chars: u64| {
        let chars = usize::try_from(chars).ok()?;
        (chars == text.chars().count())
            .then_some(text.len())
            .or_else(|| text.char_indices().nth(chars).map(|(i, _)| i))
    };
    let (line, column) = match e.location().and_then(|l| byte(l.span().offset())) {
        Some(offset) => crate::diag::line_col(text, offset),
        None => yaml.unwrap_or((0, 0)),
    };
    let message = e
        .to_string()
        .replace("<input>", &path.display().to_string());
    let first = message.lines().next().unwrap_or_default();
    // serde-saphyr starts with "error: line L column C: "; we print the
    // location ourselves.
    let first = first.trim_start_matches("error: ");
    let first = match first.split_once(": ") {
        Some((loc, rest)) if loc.starts_with("line ") => rest,
        _ => first,
    };
    // Some messages repeat YAML's position at their end.
    let first = match yaml {
        Some((l, c)) => first.replace(&format!(" at line {l}, column {c}"), ""),
        None => first.to_owned(),
    };
    let mut d = Diagnostic::new(path, line, column, first);
    // The excerpt without serde-saphyr's first line, which repeats the
    // message the diagnostic already prints.
    d.rendered = message.lines().skip(1).collect::<Vec<_>>().join("\n");
    d
}

/// The 1-based line on which each top-level list item starts: exact for
/// JSON; for YAML, the block-sequence items at the outermost indentation
/// (flow-style YAML lists fall back to "line unknown").
pub(crate) fn item_lines(text: &str, yaml: bool) -> Vec<usize> {
    if yaml {
        let mut indent = None;
        let mut lines = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if !(trimmed.starts_with("- ") || trimmed == "-") {
                continue;
            }
            let this = line.len() - trimmed.len();
            if *indent.get_or_insert(this) == this {
                lines.push(n + 1);
            }
        }
        return lines;
    }
    let (mut depth, mut line, mut in_string, mut escaped) = (0usize, 1usize, false, false);
    let mut lines = Vec::new();
    for ch in text.chars() {
        if ch == '\n' {
            line += 1;
        }
        if in_string {
            match (escaped, ch) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match ch {
            '"' => in_string = true,
            '{' | '[' => {
                if depth == 1 {
                    lines.push(line);
                }
                depth += 1;
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    lines
}

// ------------------------------------------------------------------- files

/// `path` itself when it is a file, else every file under it (recursively)
/// whose name passes `want`, in sorted path order. Editor droppings and
/// hidden files are skipped.
pub(crate) fn list_files(
    path: &Path,
    want: impl Fn(&str) -> bool,
) -> Result<Vec<PathBuf>, Diagnostic> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Diagnostic::new(path, 0, 0, format!("cannot read: {e}")))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    // Directories by their real path: a symlink loop (`a -> .`) would
    // otherwise be walked for ever, and a directory reached twice read twice.
    let mut visited = std::collections::HashSet::new();
    while let Some(dir) = stack.pop() {
        if !visited.insert(std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone())) {
            continue;
        }
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| Diagnostic::new(&dir, 0, 0, format!("cannot read directory: {e}")))?;
        for entry in entries {
            let entry = entry.map_err(|e| Diagnostic::new(&dir, 0, 0, e.to_string()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let p = entry.path();
            // The directory listing says what most entries are without a
            // `stat` each (a tenant-per-file layout has tens of thousands);
            // symlinks are followed (Kubernetes mounts config maps through
            // them), and an entry of unknown kind is looked at.
            let kind = match entry.file_type() {
                Ok(t) if !t.is_symlink() => Ok(t),
                _ => std::fs::metadata(&p).map(|m| m.file_type()),
            };
            let kind = match kind {
                Ok(kind) => kind,
                // A wanted file that cannot be read (a dangling link to a
                // policy file that failed to mount) must not vanish quietly.
                Err(e) if want(&name) => {
                    return Err(Diagnostic::new(&p, 0, 0, format!("cannot read: {e}")));
                }
                Err(_) => continue,
            };
            if kind.is_dir() {
                stack.push(p);
            } else if want(&name) {
                out.push(p);
            }
        }
    }
    sort_paths(&mut out);
    Ok(out)
}

/// Sorts paths in `Path`'s own order (component by component), which fixes
/// load order and the revision. Comparing `Path`s parses both at every
/// comparison (a fifth of a one-file reload over 10,000 files); on Unix the
/// same order is the byte order of the path with each separator as a NUL,
/// which no name holds, so a name sorts before its longer siblings.
fn sort_paths(paths: &mut [PathBuf]) {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        // Paths from `read_dir` under one root: no `.` parts, no doubled
        // separators, so components and separators map one to one.
        paths.sort_by_cached_key(|p| {
            p.as_os_str()
                .as_bytes()
                .iter()
                .map(|&b| if b == b'/' { 0 } else { b })
                .collect::<Vec<u8>>()
        });
    }
    #[cfg(not(unix))]
    paths.sort();
}

fn read(path: &Path, hasher: &mut Sha256, kind: &str) -> Result<String, Diagnostic> {
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostic::new(path, 0, 0, format!("cannot read: {e}")))?;
    for part in [
        kind.as_bytes(),
        path.to_string_lossy().as_bytes(),
        &(bytes.len() as u64).to_le_bytes(),
    ] {
        hasher.update(part);
    }
    hasher.update(&bytes);
    String::from_utf8(bytes).map_err(|e| Diagnostic::new(path, 0, 0, format!("not UTF-8: {e}")))
}

fn relative_name(dir: &Path, file: &Path) -> String {
    let rel = file
        .strip_prefix(dir)
        .ok()
        .filter(|r| !r.as_os_str().is_empty());
    let rel = rel.unwrap_or_else(|| Path::new(file.file_name().unwrap_or(file.as_os_str())));
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_items_are_located_by_line() {
        let text = "[\n  {\"uid\": {\"type\": \"A\", \"id\": \"[x\"}},\n\n  {\"uid\": {}}\n]";
        assert_eq!(item_lines(text, false), vec![2, 4]);
    }

    #[test]
    fn yaml_items_are_located_by_line() {
        let text = "# world\n- uid: {type: A, id: a}\n  parents:\n    - {type: B, id: b}\n- uid: {type: A, id: c}\n";
        assert_eq!(item_lines(text, true), vec![2, 5]);
    }

    #[test]
    fn serde_locations_are_read_from_messages() {
        assert_eq!(
            parse_serde_location("expected value at line 3 column 7"),
            Some((3, 7))
        );
        assert_eq!(parse_serde_location("no location"), None);
    }

    /// Found by fuzzing (`fuzz/`, target `loader`): serde_json counts
    /// columns in bytes, so an error after multi-byte characters pointed
    /// past them, even past the end of its line; and the message repeated
    /// that byte column.
    #[test]
    fn json_errors_are_located_in_characters() {
        let dir = tempfile::tempdir().unwrap();
        let policies = dir.path().join("policies");
        std::fs::create_dir(&policies).unwrap();
        let entities = dir.path().join("fuzz.json");
        std::fs::write(&entities, "[{\"uid\": \"ééééé\" x}]").unwrap();
        let schema = dir.path().join("fuzz.cedarschema.json");
        std::fs::write(&schema, "{\"éééé\": x}").unwrap();
        let sources = |schema: Option<PathBuf>, entities: Vec<PathBuf>| Sources {
            policies: policies.clone(),
            validation: if schema.is_some() {
                ValidationMode::Strict
            } else {
                ValidationMode::Off
            },
            schema,
            entities,
            databases: vec![],
            routes: None,
        };
        for (sources, column) in [
            (sources(None, vec![entities.clone()]), 18),
            (sources(Some(schema.clone()), vec![]), 10),
        ] {
            let e = load(&sources).map(|_| ()).unwrap_err();
            let d = &e.diagnostics[0];
            assert_eq!((d.line, d.column), (1, column), "{d:?}");
            assert!(!d.message.contains("column"), "{d:?}");
            assert!(!d.rendered.contains("column"), "{d:?}");
        }
    }

    /// Found by fuzzing (`fuzz/`, target `loader`): YAML counts a lone
    /// `\r` as a line break, so serde-saphyr's line for an error after one
    /// was a line further down than doorman's (which end at `\n`), past
    /// the line at fault or past the end of the file.
    #[test]
    fn yaml_errors_after_a_lone_carriage_return_are_on_the_right_line() {
        let dir = tempfile::tempdir().unwrap();
        let policies = dir.path().join("policies");
        std::fs::create_dir(&policies).unwrap();
        let entities = dir.path().join("fuzz.yaml");
        let text = "- uid: {type: Member, id: a}\r  parents: []\n- uid: {type: Member, id: b]\n";
        std::fs::write(&entities, text).unwrap();
        let sources = Sources {
            policies,
            validation: ValidationMode::Off,
            schema: None,
            entities: vec![entities],
            databases: vec![],
            routes: None,
        };
        let e = load(&sources).map(|_| ()).unwrap_err();
        let d = &e.diagnostics[0];
        let line = text.split('\n').nth(1).unwrap();
        assert_eq!(d.line, 2, "{d:?}");
        assert!(
            d.column >= 1 && d.column <= line.chars().count() + 1,
            "{d:?}"
        );
        assert!(!d.message.contains("line 3"), "{d:?}");
    }

    #[test]
    fn paths_sort_in_paths_own_order() {
        let names = [
            "/e/a",
            "/e/a-b",
            "/e/a/b",
            "/e/a/b-c",
            "/e/a.json",
            "/e/ab",
            "/e/a b",
            "/e/tenants/c10.json",
            "/e/tenants/c9.json",
            "/e/tenants-old/x",
            "/e/Z",
            "/e/é",
        ];
        let mut ours: Vec<PathBuf> = names.iter().map(PathBuf::from).collect();
        ours.reverse();
        let mut theirs = ours.clone();
        sort_paths(&mut ours);
        theirs.sort();
        assert_eq!(ours, theirs);
    }
}
