//! Entity files → a [`Store`] generation, re-reading only what changed.
//!
//! Each file is its own unit: parsed, checked against the schema and turned
//! into records on its own (on every core), and remembered by a stamp of
//! its metadata and a SHA-256 of its bytes. A reload over a previous
//! snapshot takes the previous store, re-reads only files whose stamp
//! changed (and re-parses only those whose bytes changed), and applies the
//! difference: the records of changed and deleted files out, those of
//! changed and new files in ([`Store::apply`]). A tenant-per-file layout
//! therefore reloads a tenant in the time its own file takes, whatever the
//! number of tenants.
//!
//! Everything is reused only while the schema is the same: entity data is
//! read against it, so a schema change re-reads every file.
//!
//! The stamp is (device, inode, length, modification and change times, to
//! the nanosecond). A write changes the change time, which no tool can set
//! back, so a file whose stamp is unchanged holds the bytes it held.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cedar_policy::Schema;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{is_entity_file, is_yaml, item_lines, list_files, yaml_diagnostic};
use crate::diag::{Diagnostic, error_chain};
use crate::entity_json::{Json, Reader};
use crate::store::schema::Conformance;
use crate::store::{Key, Names, Record, Store, StoreError, Types};

/// What the entity files held when last read.
#[derive(Debug, Default)]
pub struct EntityFiles {
    files: Vec<FileState>,
    /// The schema the records were read against ("" without a schema).
    schema: String,
    next_id: u32,
    /// Files read anew by the load that produced this.
    changed: Vec<String>,
}

impl EntityFiles {
    pub(crate) fn changed(&self) -> &[String] {
        &self.changed
    }

    pub(crate) fn schema_key(&self) -> &str {
        &self.schema
    }

    /// The path of the file with id `id`.
    pub(crate) fn path_of(&self, id: u32) -> Option<&Path> {
        self.files
            .iter()
            .find(|f| f.id == id)
            .map(|f| f.path.as_path())
    }
}

#[derive(Debug, Clone)]
struct FileState {
    path: PathBuf,
    stamp: Option<Stamp>,
    digest: [u8; 32],
    id: u32,
    keys: Arc<[Key]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp([i64; 7]);

impl Stamp {
    #[cfg(unix)]
    fn of(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(Stamp([
            m.dev() as i64,
            m.ino() as i64,
            m.size() as i64,
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        ]))
    }

    /// Elsewhere every file is read and hashed each time.
    #[cfg(not(unix))]
    fn of(_: &Path) -> Option<Stamp> {
        None
    }
}

/// The schema as entity reading sees it.
pub(crate) struct Reading<'s> {
    pub schema: Option<&'s Schema>,
    pub conformance: Option<&'s Conformance>,
    /// Identifies the schema's content ("" without a schema).
    pub key: &'s str,
}

/// One file's outcome in a load.
enum Read {
    /// As before: the previous state stands.
    Same(FileState),
    /// New content, with its records.
    New(FileState, Vec<Record>),
    Failed(Vec<Diagnostic>),
}

/// Reads the entity files under `paths` into a store generation over
/// `previous` (when its schema is the same), adding each file's path and
/// digest to `hasher` in order.
pub(crate) fn load(
    paths: &[PathBuf],
    reading: &Reading<'_>,
    previous: Option<(&Store, &EntityFiles)>,
    hasher: &mut Sha256,
    databases: &[String],
) -> Result<(Store, EntityFiles), Vec<Diagnostic>> {
    let mut files = Vec::new();
    for path in paths {
        files.extend(list_files(path, is_entity_file).map_err(|d| vec![d])?);
    }
    let previous = previous.filter(|(_, f)| f.schema == reading.key);
    let before: foldhash::HashMap<&Path, &FileState> = previous
        .map(|(_, f)| f.files.iter().map(|s| (s.path.as_path(), s)).collect())
        .unwrap_or_default();
    let mut next_id = previous.map_or(0, |(_, f)| f.next_id);
    let ids: Vec<u32> = files
        .iter()
        .map(|p| match before.get(p.as_path()) {
            Some(s) => s.id,
            None => {
                next_id += 1;
                next_id - 1
            }
        })
        .collect();

    let reads = read_all(&files, &ids, &before, reading);

    let mut diags = Vec::new();
    let mut states = Vec::with_capacity(files.len());
    let mut added = Vec::new();
    let mut changed = Vec::new();
    for read in reads {
        match read {
            Read::Same(state) => states.push(state),
            Read::New(state, mut records) => {
                changed.push(state.path.display().to_string());
                added.append(&mut records);
                states.push(state);
            }
            Read::Failed(mut d) => diags.append(&mut d),
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    for s in &states {
        hasher.update(b"entities");
        hasher.update(s.path.to_string_lossy().as_bytes());
        hasher.update(s.digest);
    }
    // Out: every key of a previous file that is gone or was read anew.
    let kept: foldhash::HashSet<u32> = states
        .iter()
        .filter(|s| {
            before
                .get(s.path.as_path())
                .is_some_and(|b| b.digest == s.digest)
        })
        .map(|s| s.id)
        .collect();
    let removed: Vec<Key> = before
        .values()
        .filter(|s| !kept.contains(&s.id))
        .flat_map(|s| s.keys.iter().cloned())
        .collect();
    let base = match previous {
        Some((store, _)) => store.clone(),
        None => Store::new(
            reading
                .conformance
                .map(|c| c.actions().clone())
                .unwrap_or_default(),
        ),
    };
    let store = base
        .apply(&removed, added)
        .map_err(|e| vec![store_error(e, &states, databases)])?;
    Ok((
        store,
        EntityFiles {
            files: states,
            schema: reading.key.to_owned(),
            next_id,
            changed,
        },
    ))
}

/// Reads every file on a pool of threads, one file at a time each; the
/// results come back in `files` order.
fn read_all(
    files: &[PathBuf],
    ids: &[u32],
    before: &foldhash::HashMap<&Path, &FileState>,
    reading: &Reading<'_>,
) -> Vec<Read> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, files.len().max(1));
    let next = AtomicUsize::new(0);
    let mut out: Vec<(usize, Read)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut parser = Parser::new(reading);
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(i) else { break };
                        let prior = before.get(path.as_path()).copied();
                        done.push((i, parser.file(path, ids[i], prior)));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join().unwrap_or_else(|_| {
                    vec![(
                        usize::MAX,
                        Read::Failed(vec![Diagnostic::new(
                            Path::new("<entities>"),
                            0,
                            0,
                            "an entity reader failed",
                        )]),
                    )]
                })
            })
            .collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// One thread's reading state: the fast reader and what it shares.
pub(super) struct Parser<'s> {
    reading: &'s Reading<'s>,
    reader: Option<Reader<'s>>,
    types: Types,
    names: Names,
}

impl<'s> Parser<'s> {
    pub(super) fn new(reading: &'s Reading<'s>) -> Self {
        Self::learning(reading, true)
    }

    /// `learn`: whether the fast reader consults Cedar's parser on the
    /// first entity of each type (see [`Reader::new`]): worth it for many
    /// entities, not for a handful.
    pub(super) fn learning(reading: &'s Reading<'s>, learn: bool) -> Self {
        Parser {
            reading,
            reader: reading.schema.map(|s| Reader::new(s, learn)),
            types: Types::default(),
            names: Names::default(),
        }
    }

    fn file(&mut self, path: &Path, id: u32, prior: Option<&FileState>) -> Read {
        let stamp = Stamp::of(path);
        if let Some(prior) = prior
            && stamp.is_some()
            && prior.stamp == stamp
        {
            return Read::Same(prior.clone());
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                return Read::Failed(vec![Diagnostic::new(
                    path,
                    0,
                    0,
                    format!("cannot read: {e}"),
                )]);
            }
        };
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if let Some(prior) = prior
            && prior.digest == digest
        {
            return Read::Same(FileState {
                stamp,
                ..prior.clone()
            });
        }
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                return Read::Failed(vec![Diagnostic::new(path, 0, 0, format!("not UTF-8: {e}"))]);
            }
        };
        match self.records(path, &text, id) {
            Ok(records) => {
                let keys = records.iter().map(|r| r.key.clone()).collect();
                Read::New(
                    FileState {
                        path: path.to_path_buf(),
                        stamp,
                        digest,
                        id,
                        keys,
                    },
                    records,
                )
            }
            Err(d) => Read::Failed(d),
        }
    }

    /// Every entity of one file, or every problem in it with its line.
    fn records(
        &mut self,
        path: &Path,
        text: &str,
        id: u32,
    ) -> Result<Vec<Record>, Vec<Diagnostic>> {
        let mut records = Vec::new();
        let mut refused: Vec<(usize, String)> = Vec::new();
        let mut seen: foldhash::HashMap<Key, usize> = foldhash::HashMap::default();
        let mut index = 0usize;
        let mut each = |item: &Json<'_>, value: &dyn Fn() -> Value| {
            let label = || uid_label(&value());
            match self.record(item, value, id) {
                Ok(Some(record)) => match seen.get(&record.key) {
                    Some(first) => refused.push((
                        index,
                        format!(
                            "duplicate entity {}: also item {} of this file",
                            label(),
                            first + 1
                        ),
                    )),
                    None => {
                        seen.insert(record.key.clone(), index);
                        records.push(record);
                    }
                },
                Ok(None) => {}
                Err(message) => refused.push((index, format!("entity {}: {message}", label()))),
            }
            index += 1;
        };
        if is_yaml(path) {
            match serde_saphyr::from_str::<Value>(text) {
                Ok(Value::Array(items)) => {
                    for item in &items {
                        each(&Json::of(item), &|| item.clone());
                    }
                }
                Ok(Value::Null) => {}
                Ok(_) => return Err(vec![not_a_list(path)]),
                Err(e) => return Err(vec![yaml_diagnostic(path, text, &e)]),
            }
        } else {
            let mut de = serde_json::Deserializer::from_str(text);
            let read = serde::Deserializer::deserialize_any(&mut de, Items(&mut each))
                .and_then(|()| de.end());
            if let Err(e) = read {
                let message = e.to_string();
                return Err(vec![if message.contains("a list of entities") {
                    not_a_list(path)
                } else {
                    let (line, bytes) = (e.line(), e.column());
                    let column = crate::diag::char_column(text, line, bytes);
                    let message = crate::diag::without_json_position(&message, line, bytes);
                    Diagnostic::new(path, line, column, message)
                }]);
            }
        }
        if refused.is_empty() {
            return Ok(records);
        }
        let lines = item_lines(text, is_yaml(path));
        Err(refused
            .into_iter()
            .map(|(i, message)| {
                Diagnostic::new(path, lines.get(i).copied().unwrap_or(0), 0, message)
            })
            .collect())
    }

    /// One entity: read fast where it can be, else by Cedar's parser; then
    /// checked against the schema. `None` for an action entity when there
    /// is a schema: checked against it, and then the schema's stands, as in
    /// Cedar's own `Entities`.
    /// `value`: the item as serde_json reads it, for Cedar's parser.
    pub(super) fn record(
        &mut self,
        item: &Json<'_>,
        value: &dyn Fn() -> Value,
        id: u32,
    ) -> Result<Option<Record>, String> {
        let conformance = self.reading.conformance;
        // The fast reading stands only if the schema certainly accepts it
        // (see `crate::entities::Overlay::parse`); else Cedar's parser reads
        // it and Cedar's check on that reading decides, with its message.
        if let (Some(reader), Some(c)) = (self.reader.as_mut(), conformance)
            && let Some(record) = reader.record(item, &mut self.types, &mut self.names, id)
            && c.accepts(&record)
        {
            return Ok(Some(record));
        }
        let entity = cedar_policy::Entity::from_json_value(value(), self.reading.schema)
            .map_err(|e| error_chain(&e))?;
        if let Some(c) = conformance {
            c.check(entity.as_ref())?;
        }
        let core: &cedar_policy_core::ast::Entity = entity.as_ref();
        if conformance.is_some() && core.uid().entity_type().is_action() {
            return Ok(None);
        }
        Record::from_cedar(core, &mut self.types, &mut self.names, id)
            .map(Some)
            .ok_or_else(|| "holds a value that is not known yet (an unknown)".to_owned())
    }
}

/// Entities given as a JSON value rather than files (a test suite's own
/// world), as one more store.
pub(crate) fn from_json(
    source: &Path,
    items: Vec<Value>,
    reading: &Reading<'_>,
) -> Result<Store, Vec<Diagnostic>> {
    let mut parser = Parser::new(reading);
    let mut records = Vec::with_capacity(items.len());
    let mut diags = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let label = uid_label(&item);
        match parser.record(&Json::of(&item), &|| item.clone(), 0) {
            Ok(Some(r)) => records.push(r),
            Ok(None) => {}
            Err(m) => diags.push(Diagnostic::new(
                source,
                0,
                0,
                format!("entities[{i}]: entity {label}: {m}"),
            )),
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    let actions = reading
        .conformance
        .map(|c| c.actions().clone())
        .unwrap_or_default();
    Store::new(actions).apply(&[], records).map_err(|e| {
        vec![match e {
            StoreError::Duplicate { key, .. } => {
                Diagnostic::new(source, 0, 0, format!("duplicate entity `{}`", key.uid()))
            }
            StoreError::Cycle { key, through, .. } => {
                Diagnostic::new(source, 0, 0, cycle(&key, &through))
            }
        }]
    })
}

fn cycle(key: &Key, through: &Key) -> String {
    format!(
        "entity `{}` is its own ancestor (through `{}`): entity parents must not form a cycle",
        key.uid(),
        through.uid()
    )
}

/// A store refusal, placed at the file (and line) of the entity it names.
fn store_error(e: StoreError, states: &[FileState], databases: &[String]) -> Diagnostic {
    let path = |id: u32| {
        states
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.path.clone())
            .or_else(|| super::database::source_path(id, databases))
            .unwrap_or_else(|| PathBuf::from("<entities>"))
    };
    match e {
        StoreError::Duplicate { key, first, second } => {
            let (a, b) = (path(first), path(second));
            let line = line_of(&b, &key);
            Diagnostic::new(
                &b,
                line,
                0,
                format!(
                    "duplicate entity `{}`: also at {}:{}",
                    key.uid(),
                    a.display(),
                    line_of(&a, &key)
                ),
            )
        }
        StoreError::Cycle { key, through, file } => {
            let p = path(file);
            let line = line_of(&p, &through);
            Diagnostic::new(&p, line, 0, cycle(&key, &through))
        }
    }
}

/// The line of the item defining `key` in `path` (0 when not found); only
/// on the error path, so it simply reads the file again.
fn line_of(path: &Path, key: &Key) -> usize {
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0;
    };
    let items: Vec<Value> = if is_yaml(path) {
        serde_saphyr::from_str(&text).unwrap_or_default()
    } else {
        serde_json::from_str(&text).unwrap_or_default()
    };
    let want = key.uid();
    let (ty, id) = (
        want.entity_type().to_string(),
        want.eid().as_ref().to_owned(),
    );
    let at = items.iter().position(|item| {
        let uid = item.get("uid");
        let uid = uid.and_then(|u| u.get("__entity")).or(uid);
        uid.and_then(|u| u.get("type")).and_then(Value::as_str) == Some(ty.as_str())
            && uid.and_then(|u| u.get("id")).and_then(Value::as_str) == Some(id.as_str())
    });
    at.and_then(|i| item_lines(&text, is_yaml(path)).get(i).copied())
        .unwrap_or(0)
}

fn not_a_list(path: &Path) -> Diagnostic {
    Diagnostic::new(
        path,
        1,
        1,
        "an entity file must hold a list of entities ({uid, attrs, parents})",
    )
}

fn uid_label(item: &Value) -> String {
    let uid = item.get("uid");
    let uid = uid.and_then(|u| u.get("__entity")).or(uid);
    match uid {
        Some(u) => format!(
            "{}::{}",
            u.get("type").and_then(Value::as_str).unwrap_or("?"),
            u.get("id").map(Value::to_string).unwrap_or_default()
        ),
        None => "(no uid)".to_owned(),
    }
}

/// Reads a JSON entity list one item at a time (or `null`: no entities),
/// so no document-sized tree is ever built.
struct Items<'f, F>(&'f mut F);

impl<'de, F: FnMut(&Json<'_>, &dyn Fn() -> Value)> serde::de::Visitor<'de> for Items<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of entities")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<Json<'de>>()? {
            (self.0)(&item, &|| item.to_value());
        }
        Ok(())
    }
}
