//! Entity data from the application's own PostgreSQL: the reads.
//!
//! The application exposes its entities through a contract (shipped as
//! `sql/doorman-postgres.sql`, walked through in the README):
//!
//! - a view or table `doorman.entities (uid_type, uid_id, attrs, parents)`:
//!   one row per entity, `attrs` and `parents` in Cedar's entity JSON;
//! - a change log `doorman.entity_changes (seq, uid_type, uid_id, op, at,
//!   xid)` that the application's triggers fill through
//!   `doorman.record_change(type, id, op)`, which also sends
//!   `NOTIFY doorman_entities` (a wake-up, never the data);
//! - `doorman.entity_changes_pruned (below)`: how far the log was pruned.
//!
//! **Positions are transaction ids, not sequence numbers.** A `bigserial`
//! is handed out when a row is inserted, not when its transaction commits:
//! a reader that remembers "everything up to seq 41 is applied" misses seq
//! 40 if its transaction commits a moment later. Each change row carries
//! its writer's transaction id instead, and a reader's position is a
//! *horizon*: the oldest transaction still running when it read
//! (`pg_snapshot_xmin`). Every transaction below the horizon has ended, so
//! no change row below it can ever appear again; the next read takes the
//! rows in `[previous horizon, new horizon)` and nothing is missed, however
//! commits interleave. (The price: a transaction left open holds the
//! horizon, and changes behind it wait; the lag in `/v1/status` shows it.)
//!
//! **A change names an entity, not its new value.** The reader fetches the
//! entity's current row from the view, in a snapshot taken after the one it
//! read the log in (a row that is gone means the entity is), so what it
//! applies is at least as new as every change below the horizon. Applying
//! a change twice, or a newer state before its own change row is read, is
//! harmless: the next read gives the same entity again.
//!
//! Everything here is one query or one cursor over one connection; what to
//! do with the rows (apply, publish, retry, resync) is
//! [`crate::reload`]'s.

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, Client, IsolationLevel, NoTls, Statement};

use std::path::Path;

use crate::diag::Diagnostic;
use crate::load::{DatabaseSource, LoadError, Row, RowBatch, Scope, Tls};
use crate::snapshot::Snapshot;

/// The channel `doorman.record_change` notifies.
pub const CHANNEL: &str = "doorman_entities";

/// Rows fetched per round trip of the initial read's cursor.
const FETCH: i32 = 5_000;

/// A connection that listens for change notifications.
pub struct Connection {
    client: Client,
    /// Woken for every notification (a burst folds into one wake-up).
    notified: Arc<Notify>,
    /// The change reads' statements, prepared once per connection: a
    /// stream of changes reads the log a hundred times a second.
    window: Option<Statement>,
    fetch: HashMap<String, Statement>,
}

/// Something PostgreSQL (or the way to it) said no to, worded for
/// `/v1/status` and the logs (never with the password).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub String);

impl ReadError {
    fn of(what: &str, e: tokio_postgres::Error) -> ReadError {
        // The server's own message (a missing view, a permission) says
        // more than the client's summary of it.
        if let Some(db) = e.as_db_error() {
            return ReadError(format!("{what}: {}", db.message()));
        }
        // The client's own summary ("error connecting to server") hides
        // the reason ("Connection refused") in its sources.
        let mut text = format!("{what}: {e}");
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            text.push_str(&format!(": {c}"));
            cause = c.source();
        }
        ReadError(text)
    }
}

impl Connection {
    /// Connects, and listens on [`CHANNEL`].
    pub async fn open(source: &DatabaseSource) -> Result<Connection, ReadError> {
        let notified = Arc::new(Notify::new());
        let wake = Arc::clone(&notified);
        let client = match source.tls() {
            None => {
                let (client, connection) = source
                    .config()
                    .connect(NoTls)
                    .await
                    .map_err(|e| ReadError::of("cannot connect", e))?;
                tokio::spawn(drive(connection, wake));
                client
            }
            Some(tls) => {
                let (client, connection) = source
                    .config()
                    .connect(tls_connector(tls)?)
                    .await
                    .map_err(|e| ReadError::of("cannot connect", e))?;
                tokio::spawn(drive(connection, wake));
                client
            }
        };
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(|e| ReadError::of("cannot listen for changes", e))?;
        Ok(Connection {
            client,
            notified,
            window: None,
            fetch: HashMap::new(),
        })
    }

    /// Waits for a notification, or `most` at the longest.
    pub async fn wait(&self, most: Duration) {
        let _ = tokio::time::timeout(most, self.notified.notified()).await;
    }

    /// Every row of `doorman.entities`, read against `snapshot`'s schema
    /// as source `source`, and the position they are complete up to.
    /// Rows are fetched a few thousand at a time and read on the blocking
    /// pool while the next ones arrive; nothing document-sized is held.
    pub async fn read_all(
        &mut self,
        snapshot: &Arc<Snapshot>,
        source: usize,
    ) -> Result<(RowBatch, u64), ReadError> {
        let tx = self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| ReadError::of("cannot start a read", e))?;
        let position = horizon(&tx).await?;
        let portal = tx
            .bind(
                &format!("SELECT uid_type, uid_id, {ENTITY_JSON} FROM doorman.entities"),
                &[],
            )
            .await
            .map_err(|e| ReadError::of("cannot read doorman.entities", e))?;
        let mut all = snapshot.read_rows(source, Scope::Full, &[]);
        // At most two batches are read while the next is fetched.
        let mut reading: std::collections::VecDeque<tokio::task::JoinHandle<RowBatch>> =
            std::collections::VecDeque::new();
        loop {
            let rows = tx
                .query_portal(&portal, FETCH)
                .await
                .map_err(|e| ReadError::of("cannot read doorman.entities", e))?;
            let done = rows.len() < FETCH as usize;
            let rows = entity_rows(&rows)?;
            let snapshot = Arc::clone(snapshot);
            reading.push_back(tokio::task::spawn_blocking(move || {
                snapshot.read_rows(source, Scope::Full, &rows)
            }));
            while reading.len() > 2 || (done && !reading.is_empty()) {
                if let Some(handle) = reading.pop_front() {
                    all.append(
                        handle
                            .await
                            .map_err(|e| ReadError(format!("reading rows failed: {e}")))?,
                    );
                }
            }
            if done {
                break;
            }
        }
        tx.commit()
            .await
            .map_err(|e| ReadError::of("cannot end the read", e))?;
        Ok((all, position))
    }

    /// The entities changed since `since` (a position a read returned), as
    /// their current rows, and the new position. `None` when the log no
    /// longer reaches back to `since` (it was pruned past it): only a full
    /// read can catch up then.
    pub async fn read_changes(&mut self, since: u64) -> Result<Option<Changes>, ReadError> {
        // One statement, so one snapshot: the horizon, how far the log was
        // pruned, and the entities changed between `since` and the horizon
        // (at least one row, the horizon's, when none changed). No
        // transaction: the current rows fetched next come from a later
        // snapshot, which holds every change below the horizon (and maybe
        // newer ones, read again later: harmless).
        let window = self
            .client
            .query(
                prepared(
                    &self.client,
                    &mut self.window,
                    "WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS x, \
                       (SELECT through FROM doorman.entity_changes_pruned) AS p) \
                     SELECT h.x::text, h.p::text, c.uid_type, c.uid_id, c.n, c.at FROM h \
                     LEFT JOIN LATERAL (SELECT uid_type, uid_id, count(*) AS n, max(at) AS at \
                       FROM doorman.entity_changes WHERE xid >= $1::text::xid8 AND xid < h.x \
                       GROUP BY uid_type, uid_id) c ON true \
                     ORDER BY c.uid_type",
                )
                .await?,
                &[&since.to_string()],
            )
            .await
            .map_err(|e| ReadError::of("cannot read doorman.entity_changes", e))?;
        let Some(first) = window.first() else {
            return Err(ReadError("the change log read returned nothing".to_owned()));
        };
        let position = xid(first, 0)?;
        // Rows at or below `through` may be gone: a position not past it
        // may have missed some.
        if first.get::<_, Option<&str>>(1).is_some() && xid(first, 1)? >= since {
            return Ok(None);
        }
        let changed: Vec<&tokio_postgres::Row> = window
            .iter()
            .filter(|r| r.get::<_, Option<&str>>(2).is_some())
            .collect();
        let mut changes = Changes {
            position,
            rows: Vec::with_capacity(changed.len()),
            count: 0,
            latest: None,
        };
        // Grouped by type: one query per type, whose literal type name lets
        // PostgreSQL drop every other branch of a `UNION ALL` view.
        let mut i = 0;
        while i < changed.len() {
            let ty: &str = changed[i].get(2);
            let mut ids: Vec<&str> = Vec::new();
            while i < changed.len() && changed[i].get::<_, &str>(2) == ty {
                let row = changed[i];
                ids.push(row.get(3));
                changes.count += row.get::<_, i64>(4) as u64;
                let at: SystemTime = row.get(5);
                changes.latest = changes.latest.max(Some(at));
                i += 1;
            }
            fetch(&self.client, &mut self.fetch, ty, &ids, &mut changes.rows).await?;
        }
        Ok(Some(changes))
    }
}

/// Reads every source of `databases` in full into `snapshot`, on a
/// runtime of its own: for the one-shot commands, which have none. Refused
/// rows and unreachable sources are diagnostics naming the source.
pub fn read_blocking(
    snapshot: Snapshot,
    databases: &[DatabaseSource],
) -> Result<Snapshot, LoadError> {
    if databases.is_empty() {
        return Ok(snapshot);
    }
    let fail = |source: &DatabaseSource, messages: Vec<String>, summary: String| LoadError {
        diagnostics: messages
            .into_iter()
            .map(|m| Diagnostic::new(Path::new(source.label()), 0, 0, m))
            .collect(),
        summary,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(&databases[0], vec![e.to_string()], snapshot.summary()))?;
    let mut snapshot = snapshot;
    for (i, source) in databases.iter().enumerate() {
        let shared = Arc::new(snapshot);
        let read = runtime.block_on(async {
            let mut connection = Connection::open(source).await?;
            connection.read_all(&shared, i).await
        });
        let (batch, position) = read.map_err(|e| fail(source, vec![e.0], shared.summary()))?;
        let (next, refused) = shared
            .with_database(i, Scope::Full, batch, position)
            .map_err(|e| fail(source, vec![e.to_string()], shared.summary()))?;
        if !refused.is_empty() {
            let messages = refused
                .into_iter()
                .map(|r| format!("entity {}: {}", r.uid, r.message))
                .collect();
            return Err(fail(source, messages, next.summary()));
        }
        snapshot = next;
    }
    Ok(snapshot)
}

/// Runs a connection: results go to its client, and notifications (which
/// arrive between results) wake the follower.
async fn drive<S, T>(mut connection: tokio_postgres::Connection<S, T>, wake: Arc<Notify>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notification(_))) => wake.notify_one(),
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::debug!("database connection ended: {e}");
                break;
            }
            None => break,
        }
    }
    // Whoever waits for a notification finds out on its next query that
    // the connection is gone.
    wake.notify_one();
}

/// A TLS connector that trusts `tls.roots` (PEM), else the system's roots.
fn tls_connector(tls: &Tls) -> Result<tokio_postgres_rustls::MakeRustlsConnect, ReadError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match &tls.roots {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| ReadError(format!("sslrootcert {}: {e}", path.display())))?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| ReadError(format!("sslrootcert {}: {e}", path.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    if roots.is_empty() {
        return Err(ReadError(
            "TLS asked for, but no root certificate to trust: give sslrootcert=PATH".to_owned(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ReadError(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// What changed between two positions.
#[derive(Debug)]
pub struct Changes {
    /// Everything committed before this is in `rows`.
    pub position: u64,
    /// The current row of every changed entity (`json: None`: it is gone).
    pub rows: Vec<Row>,
    /// How many change-log rows named them.
    pub count: u64,
    /// When the newest of those was written.
    pub latest: Option<SystemTime>,
}

/// The whole entity as Cedar entity JSON, built by the server from the
/// contract's columns.
const ENTITY_JSON: &str = "json_build_object('uid', json_build_object('type', uid_type, \
     'id', uid_id), 'attrs', attrs, 'parents', parents)::text";

/// `statement`, prepared on first use.
async fn prepared<'s>(
    client: &Client,
    statement: &'s mut Option<Statement>,
    query: &str,
) -> Result<&'s Statement, ReadError> {
    if statement.is_none() {
        *statement = Some(
            client
                .prepare(query)
                .await
                .map_err(|e| ReadError::of("cannot prepare a read", e))?,
        );
    }
    statement
        .as_ref()
        .ok_or_else(|| ReadError("no statement".to_owned()))
}

/// The current rows of `ids` of type `ty` (a gone one gets `json: None`).
async fn fetch(
    client: &Client,
    statements: &mut HashMap<String, Statement>,
    ty: &str,
    ids: &[&str],
    out: &mut Vec<Row>,
) -> Result<(), ReadError> {
    let gone = |id: &str| Row {
        uid_type: ty.to_owned(),
        uid_id: id.to_owned(),
        json: None,
    };
    // The type goes into the query as a literal; only a Cedar type name
    // (which has no quote to escape) may, anything else has no entity.
    if !is_type_name(ty) {
        out.extend(ids.iter().map(|id| gone(id)));
        return Ok(());
    }
    let mut statement = statements.remove(ty);
    let query = format!(
        "SELECT uid_type, uid_id, {ENTITY_JSON} FROM doorman.entities \
         WHERE uid_type = '{ty}' AND uid_id = ANY($1)"
    );
    let found = client
        .query(prepared(client, &mut statement, &query).await?, &[&ids])
        .await
        .map_err(|e| ReadError::of("cannot read doorman.entities", e))?;
    if let Some(statement) = statement {
        statements.insert(ty.to_owned(), statement);
    }
    let mut rows = entity_rows(&found)?;
    let present: std::collections::HashSet<&str> =
        found.iter().map(|r| r.get::<_, &str>(1)).collect();
    rows.extend(
        ids.iter()
            .filter(|id| !present.contains(**id))
            .map(|id| gone(id)),
    );
    out.append(&mut rows);
    Ok(())
}

/// `Name` or `Name::Name...`, Cedar's entity type names.
fn is_type_name(ty: &str) -> bool {
    !ty.is_empty()
        && ty.split("::").all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

fn entity_rows(rows: &[tokio_postgres::Row]) -> Result<Vec<Row>, ReadError> {
    rows.iter()
        .map(|r| {
            let text = |i: usize| {
                r.try_get::<_, Option<String>>(i)
                    .map_err(|e| ReadError(format!("doorman.entities: {e}")))
            };
            let (ty, id) = (text(0)?, text(1)?);
            let (Some(uid_type), Some(uid_id)) = (ty, id) else {
                return Err(ReadError(
                    "doorman.entities: a row has no uid_type or uid_id".to_owned(),
                ));
            };
            Ok(Row {
                uid_type,
                uid_id,
                json: text(2)?,
            })
        })
        .collect()
}

/// The oldest transaction still running as this transaction sees it:
/// every change below it is visible now and will never be joined by
/// another.
async fn horizon(tx: &tokio_postgres::Transaction<'_>) -> Result<u64, ReadError> {
    let row = tx
        .query_one("SELECT pg_snapshot_xmin(pg_current_snapshot())::text", &[])
        .await
        .map_err(|e| ReadError::of("cannot read the transaction horizon", e))?;
    xid(&row, 0)
}

fn xid(row: &tokio_postgres::Row, i: usize) -> Result<u64, ReadError> {
    let text: &str = row
        .try_get(i)
        .map_err(|e| ReadError(format!("a transaction id: {e}")))?;
    text.parse()
        .map_err(|_| ReadError(format!("`{text}` is not a transaction id")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cedar_type_names_go_into_queries() {
        for ok in ["Member", "App::User", "_x9"] {
            assert!(is_type_name(ok), "{ok}");
        }
        for bad in ["", "Member'; DROP TABLE x; --", "9x", "A::", "A:B", "Mé"] {
            assert!(!is_type_name(bad), "{bad}");
        }
    }
}
