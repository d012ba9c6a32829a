//! Entity data from a database: what a database source is, and how its
//! rows enter a snapshot.
//!
//! A database source ([`DatabaseSource`]) is a PostgreSQL URL given to
//! `--entities` beside entity files. Reading it is [`crate::postgres`]'s
//! job (network, cursors, the change feed); this module is the part that
//! needs no network: the URL and its secret, and turning rows into store
//! records and a new [`Snapshot`].
//!
//! A row is read exactly as an entity file's item is (the same fast reader,
//! the same schema check, Cedar's parser and message where the fast reader
//! defers), and its records are tagged with the source they came from, so
//! that a file reload leaves them alone and a database change cannot touch
//! an entity a file defines (that is a duplicate, refused).
//!
//! Unlike a file, a database is never all-or-nothing: it is a live system
//! where one bad row must not take authorization down. A row that does not
//! read, that duplicates a file's entity, or that closes a cycle is
//! *refused*: the entity keeps its last good version (or stays absent), the
//! refusal is reported, and every other row is applied. An entity is never
//! half-applied: its whole row goes in, or none of it.
//!
//! The snapshot remembers, per source, the position its rows are complete
//! up to (see [`DatabaseState`]); the revision covers it, so every applied
//! change gives a new revision.

use std::path::Path;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use super::entities::{Parser, Reading};
use crate::entity_json::Json;
use crate::snapshot::Snapshot;
use crate::store::{Key, Record, StoreError, Types};

/// Records of database source `i` carry file id `DATABASE_IDS + i`; entity
/// files count up from 0 and never get near.
const DATABASE_IDS: u32 = u32::MAX - 1024;

/// Most database sources one snapshot takes.
pub const MAX_DATABASES: usize = 1024;

/// A PostgreSQL database to read entities from, given as a URL
/// (`postgres://user@host:5432/app`). Guarantees: the URL parsed; the
/// password (from the URL, `PGPASSWORD`, or a pgpass file) is never part
/// of [`DatabaseSource::label`] or of anything this type prints.
#[derive(Clone)]
pub struct DatabaseSource {
    config: tokio_postgres::Config,
    label: String,
    tls: Option<Tls>,
}

/// TLS to the database: asked for with `sslmode=require` (or
/// `verify-ca`/`verify-full`, which mean the same here: the server's
/// certificate is always verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// `sslrootcert=PATH`: the CA certificates (PEM) to trust; without it,
    /// the system's.
    pub roots: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for DatabaseSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

impl PartialEq for DatabaseSource {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label && self.config.get_password() == other.config.get_password()
    }
}

impl Eq for DatabaseSource {}

impl DatabaseSource {
    /// Whether `arg` names a database rather than a path.
    pub fn is_url(arg: &str) -> bool {
        arg.starts_with("postgres://") || arg.starts_with("postgresql://")
    }

    /// Parses a URL; without a password in it, takes `PGPASSWORD`, then the
    /// pgpass file (`PGPASSFILE`, else `~/.pgpass`), as libpq does.
    pub fn parse(url: &str) -> Result<DatabaseSource, String> {
        let (url_for_client, tls) = tls_options(url);
        let mut config = tokio_postgres::Config::from_str(&url_for_client)
            .map_err(|e| format!("{}: not a PostgreSQL URL: {e}", redact(url)))?;
        if config.get_hosts().is_empty() {
            return Err(format!("{}: the URL names no host", redact(url)));
        }
        let user = config.get_user().map(str::to_owned);
        let Some(user) = user else {
            return Err(format!(
                "{}: the URL names no user (postgres://USER@host/db)",
                redact(url)
            ));
        };
        if config.get_dbname().is_none() {
            config.dbname(&user);
        }
        if config.get_application_name().is_none() {
            config.application_name("doorman");
        }
        let label = label(&config);
        if config.get_password().is_none() {
            if let Some(password) = std::env::var_os("PGPASSWORD") {
                config.password(password.as_encoded_bytes());
            } else if let Some(password) = pgpass(&config) {
                config.password(password);
            }
        }
        Ok(DatabaseSource { config, label, tls })
    }

    /// Whether (and how) to speak TLS to the database.
    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    /// The URL without its password: what messages and `/v1/status` show.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// What to connect with (password included).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }
}

/// Takes the TLS options the client library does not know out of `url`:
/// `sslrootcert`, and `sslmode` `verify-ca`/`verify-full` (passed on as
/// `require`). TLS is on when the mode is one of those or `require`.
fn tls_options(url: &str) -> (String, Option<Tls>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let (mut kept, mut roots, mut tls) = (Vec::new(), None, false);
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("sslrootcert", path)) => roots = Some(std::path::PathBuf::from(unescape(path))),
            Some(("sslmode", "require" | "verify-ca" | "verify-full")) => {
                tls = true;
                kept.push("sslmode=require");
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, tls.then_some(Tls { roots }))
}

/// `%XX` escapes decoded (a URL's query value).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `postgres://user@host:port/db`, from a parsed config.
fn label(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(h, port)| match h {
            tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => format!("[{}]:{port}", path.display()),
        })
        .collect();
    format!(
        "postgres://{}@{}/{}",
        config.get_user().unwrap_or(""),
        hosts.join(","),
        config.get_dbname().unwrap_or("")
    )
}

/// A URL with anything between `://user:` and `@` blanked, for messages
/// about a URL that did not parse.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "the database URL".to_owned();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_owned(),
    }
}

/// The password libpq would take from the pgpass file for this connection.
/// Like libpq, a file that others may read is ignored (with a warning).
fn pgpass(config: &tokio_postgres::Config) -> Option<Vec<u8>> {
    let path = match std::env::var_os("PGPASSFILE") {
        Some(p) => std::path::PathBuf::from(p),
        None => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".pgpass"),
    };
    let text = std::fs::read_to_string(&path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                "{}: others may read this password file; ignored (chmod 0600 it)",
                path.display()
            );
            return None;
        }
    }
    let host = match config.get_hosts().first()? {
        tokio_postgres::config::Host::Tcp(name) => name.clone(),
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(_) => "localhost".to_owned(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let want = [
        host.as_str(),
        port.as_str(),
        config.get_dbname().unwrap_or(""),
        config.get_user().unwrap_or(""),
    ];
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(pgpass_fields)
        .find(|fields| {
            fields.len() == 5
                && want
                    .iter()
                    .zip(fields.iter())
                    .all(|(w, f)| f == "*" || f == w)
        })
        .map(|fields| fields[4].clone().into_bytes())
}

/// A pgpass line's fields: `:` separates, `\` escapes the next character.
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => field.extend(chars.next()),
            ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// One database source's part of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseState {
    /// The source, as [`DatabaseSource::label`] gives it.
    pub label: String,
    /// Every change the database committed before this position (a
    /// transaction id horizon) is in the store. `None`: not read yet.
    pub position: Option<u64>,
    /// How many stored entities came from this source.
    pub entities: usize,
}

/// One row of a database source: an entity reference and, when the row
/// exists, the whole entity as Cedar entity JSON (`None`: it is gone).
#[derive(Debug, Clone)]
pub struct Row {
    pub uid_type: String,
    pub uid_id: String,
    pub json: Option<String>,
}

impl Row {
    fn uid(&self) -> String {
        format!("{}::{:?}", self.uid_type, self.uid_id)
    }
}

/// A row that was not applied, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Refusal {
    /// `Type::"id"`.
    pub uid: String,
    pub message: String,
}

/// Rows read against one snapshot's schema, ready to apply to it (or to a
/// later snapshot with the same schema).
pub struct RowBatch {
    schema: String,
    records: Vec<Record>,
    /// Entities whose rows are gone.
    gone: Vec<Key>,
    refused: Vec<Refusal>,
}

impl RowBatch {
    /// Adds the rows of `more` (read against the same schema).
    pub fn append(&mut self, mut more: RowBatch) {
        self.records.append(&mut more.records);
        self.gone.append(&mut more.gone);
        self.refused.append(&mut more.refused);
    }

    pub fn len(&self) -> usize {
        self.records.len() + self.gone.len() + self.refused.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether rows replace everything a source gave before, or only the
/// entities they name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every row of the source: entities not among them are gone.
    Full,
    /// Changed rows only.
    Changes,
}

/// Why rows could not be applied at all.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApplyError {
    #[error("the schema changed since the rows were read; read them again")]
    SchemaChanged,
    #[error("no database source {0} in this snapshot")]
    NoSource(usize),
}

impl Snapshot {
    /// The database sources this snapshot holds entities of, in `--entities`
    /// order.
    pub fn databases(&self) -> &[DatabaseState] {
        &self.databases
    }

    /// Whether every database source has been read: a snapshot that is not
    /// is never published.
    pub fn is_complete(&self) -> bool {
        self.databases.iter().all(|d| d.position.is_some())
    }

    /// Reads `rows` of database source `source` against this snapshot's
    /// schema, for a full read or for changes (a handful of rows, for which
    /// learning each type's shape from Cedar's parser first would cost more
    /// than it saves: that was half a change's cost). Pure CPU work:
    /// callers spread large reads over threads.
    pub fn read_rows(&self, source: usize, scope: Scope, rows: &[Row]) -> RowBatch {
        let key = self.entity_files.schema_key();
        let reading = Reading {
            schema: self.schema.as_deref(),
            conformance: self.conformance.as_deref(),
            key,
        };
        let mut parser = Parser::learning(&reading, scope == Scope::Full);
        let mut types = Types::default();
        let id = DATABASE_IDS + source as u32;
        let mut batch = RowBatch {
            schema: key.to_owned(),
            records: Vec::with_capacity(rows.len()),
            gone: Vec::new(),
            refused: Vec::new(),
        };
        for row in rows {
            let Some(text) = &row.json else {
                // A type name Cedar cannot read has no stored entity.
                if let Some(key) = types.written(&row.uid_type, &row.uid_id) {
                    batch.gone.push(key);
                }
                continue;
            };
            let refuse = |message: String| Refusal {
                uid: row.uid(),
                message,
            };
            let item: Json<'_> = match serde_json::from_str(text) {
                Ok(item) => item,
                Err(e) => {
                    batch.refused.push(refuse(format!("not JSON: {e}")));
                    continue;
                }
            };
            match parser.record(&item, &|| item.to_value(), id) {
                Ok(Some(record)) => batch.records.push(record),
                Ok(None) => batch.refused.push(refuse(
                    "an action entity: actions come from the schema".to_owned(),
                )),
                Err(message) => batch.refused.push(refuse(message)),
            }
        }
        batch
    }

    /// A new snapshot with `batch` applied for database source `source`,
    /// complete up to `position`; the rows it refused come back with it.
    /// `self` is untouched.
    pub fn with_database(
        &self,
        source: usize,
        scope: Scope,
        mut batch: RowBatch,
        position: u64,
    ) -> Result<(Snapshot, Vec<Refusal>), ApplyError> {
        let state = self
            .databases
            .get(source)
            .ok_or(ApplyError::NoSource(source))?;
        if batch.schema != self.entity_files.schema_key() {
            return Err(ApplyError::SchemaChanged);
        }
        let id = DATABASE_IDS + source as u32;
        let mut refused = std::mem::take(&mut batch.refused);
        let store = &self.store;

        // The last row of an entity wins (a change read twice in one
        // window); an entity a file (or another source) defines is not
        // this source's to change.
        let mut latest: foldhash::HashMap<Key, usize> = foldhash::HashMap::default();
        for (i, r) in batch.records.iter().enumerate() {
            latest.insert(r.key.clone(), i);
        }
        let mut added: Vec<Record> = Vec::with_capacity(latest.len());
        for (i, record) in batch.records.into_iter().enumerate() {
            if latest.get(&record.key) != Some(&i) {
                if scope == Scope::Full {
                    refused.push(Refusal {
                        uid: record.key.uid().to_string(),
                        message: "the source gives this entity in two rows".to_owned(),
                    });
                }
                continue;
            }
            match store.get_key(&record.key) {
                Some(existing) if existing.file != id => refused.push(Refusal {
                    uid: record.key.uid().to_string(),
                    message: format!(
                        "duplicate entity: also defined by {}",
                        self.origin(existing.file)
                    ),
                }),
                _ => added.push(record),
            }
        }
        let mut removed: Vec<Key> = match scope {
            // Everything the source gave before goes; what it gives now
            // comes back in.
            Scope::Full if state.entities > 0 => store
                .records()
                .filter(|r| r.file == id)
                .map(|r| r.key.clone())
                .collect(),
            Scope::Full => Vec::new(),
            Scope::Changes => added
                .iter()
                .map(|r| &r.key)
                .chain(batch.gone.iter())
                .filter(|k| store.get_key(k).is_some_and(|r| r.file == id))
                .cloned()
                .collect(),
        };
        // A cycle is the one refusal only the store can find: refuse the
        // entity it names and try again without it (keeping its last good
        // version, if it had one).
        let mut applied = added.len();
        let next = loop {
            // The store hands the records back when it refuses them, so a
            // million of them are never copied for the rare retry.
            let (error, back) = match store.apply_or_return(&removed, std::mem::take(&mut added)) {
                Ok(next) => break next,
                Err(refused) => refused,
            };
            added = back;
            match error {
                StoreError::Cycle { key, through, .. } => {
                    refused.push(Refusal {
                        uid: key.uid().to_string(),
                        message: format!(
                            "its parents make it its own ancestor (through `{}`): \
                             entity parents must not form a cycle",
                            through.uid()
                        ),
                    });
                    added.retain(|r| r.key != key);
                    if scope == Scope::Changes {
                        removed.retain(|k| *k != key);
                    }
                }
                StoreError::Duplicate { key, first, .. } => {
                    // Checked above; only reachable if two sources race
                    // for one entity.
                    refused.push(Refusal {
                        uid: key.uid().to_string(),
                        message: format!(
                            "duplicate entity: also defined by {}",
                            self.origin(first)
                        ),
                    });
                    added.retain(|r| r.key != key);
                }
            }
            applied = added.len();
        };
        let entities = state.entities + applied - removed.len();
        let mut databases = self.databases.clone();
        databases[source] = DatabaseState {
            label: state.label.clone(),
            position: Some(position),
            entities,
        };
        Ok((self.with_database_store(next, databases), refused))
    }

    /// Where an entity with file id `file` came from, for messages.
    fn origin(&self, file: u32) -> String {
        match file.checked_sub(DATABASE_IDS) {
            Some(i) => self
                .databases
                .get(i as usize)
                .map_or_else(|| "a database".to_owned(), |d| d.label.clone()),
            None => self
                .entity_files
                .path_of(file)
                .map_or_else(|| "an entity file".to_owned(), |p| p.display().to_string()),
        }
    }
}

/// The revision of a snapshot: its files' revision alone without database
/// sources (so file-only revisions are what they always were), else a hash
/// of it and every source's position.
pub(crate) fn revision(files: &str, databases: &[DatabaseState]) -> String {
    if databases.is_empty() {
        return files.to_owned();
    }
    let mut hasher = Sha256::new();
    hasher.update(files.as_bytes());
    for d in databases {
        hasher.update(b"database");
        hasher.update(d.label.as_bytes());
        hasher.update(d.position.unwrap_or(0).to_le_bytes());
    }
    hex::encode(&hasher.finalize()[..8])
}

/// The states of `sources` before anything is read from them.
pub(crate) fn unread(sources: &[DatabaseSource]) -> Vec<DatabaseState> {
    sources
        .iter()
        .map(|s| DatabaseState {
            label: s.label().to_owned(),
            position: None,
            entities: 0,
        })
        .collect()
}

/// Where a store error about file id `file` points, when the id is a
/// database source's rather than a file's.
pub(crate) fn source_path(file: u32, labels: &[String]) -> Option<std::path::PathBuf> {
    let i = file.checked_sub(DATABASE_IDS)? as usize;
    Some(Path::new(labels.get(i).map_or("<database>", String::as_str)).to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_never_show_their_password() {
        let s = DatabaseSource::parse("postgres://app:s3cret@db.example:6432/crm").expect("parses");
        assert_eq!(s.label(), "postgres://app@db.example:6432/crm");
        assert_eq!(format!("{s:?}"), s.label());
        assert_eq!(s.config().get_password(), Some(&b"s3cret"[..]));
        let bad = DatabaseSource::parse("postgres://app:s3cret@db.example:notaport/crm")
            .expect_err("a bad port");
        assert!(!bad.contains("s3cret"), "{bad}");
        assert!(DatabaseSource::parse("postgres://db.example/crm").is_err());
        // The database defaults to the user's name, as in libpq.
        let s = DatabaseSource::parse("postgresql://app@localhost").expect("parses");
        assert_eq!(s.label(), "postgres://app@localhost:5432/app");
        assert!(DatabaseSource::is_url("postgres://x") && !DatabaseSource::is_url("fixtures/x"));
    }

    #[test]
    fn tls_is_asked_for_in_the_url() {
        let plain = DatabaseSource::parse("postgres://app@db/crm").expect("parses");
        assert_eq!(plain.tls(), None);
        let tls = DatabaseSource::parse(
            "postgres://app@db/crm?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=5",
        )
        .expect("parses");
        assert_eq!(
            tls.tls(),
            Some(&Tls {
                roots: Some("/etc/ca.pem".into())
            })
        );
        assert_eq!(
            tls.config().get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        let system =
            DatabaseSource::parse("postgres://app@db/crm?sslmode=require").expect("parses");
        assert_eq!(system.tls(), Some(&Tls { roots: None }));
    }

    #[test]
    fn too_many_sources_are_refused_not_overflowed() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let source = DatabaseSource::parse("postgres://app@db.invalid/app").expect("parses");
        let sources = crate::load::Sources {
            policies: root.join("policies"),
            schema: Some(root.join("schema")),
            entities: vec![],
            databases: vec![source; MAX_DATABASES + 1],
            validation: crate::snapshot::ValidationMode::Strict,
            routes: None,
        };
        let refused = crate::load::load(&sources).err().expect("refused");
        assert!(
            refused.diagnostics[0]
                .message
                .contains("at most 1024 database sources"),
            "{:?}",
            refused.diagnostics
        );
    }

    #[test]
    fn pgpass_lines_split_on_unescaped_colons() {
        assert_eq!(
            pgpass_fields(r"db\:1:5432:*:app:pa\:ss\\word"),
            ["db:1", "5432", "*", "app", r"pa:ss\word"]
        );
        // A password may hold colons after the fourth separator.
        assert_eq!(pgpass_fields("h:1:d:u:a:b")[4], "a:b");
    }
}
