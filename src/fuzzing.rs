//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz), and for
//! nothing else: this is **not** a stable API, and it is hidden from the
//! documentation.
//!
//! The sidecar's request readers are private to their protocol modules
//! (`server::v1`, `server::authzen`), which is right for everything but a
//! fuzzer: a fuzz target must drive exactly the code that reads a request
//! body on the wire, without a socket in between. This module is the one
//! place that reaches in, and it only forwards: every function here is a
//! call to the reader or decision path the server itself uses, with no
//! logic of its own, so a finding here is a finding in the server.
//!
//! What is not here is already public: request-scoped entities
//! ([`crate::Snapshot::overlay`], [`crate::Snapshot::decide_with`]), the
//! loaders ([`crate::load()`], [`crate::testing::suite::read`],
//! [`crate::gateway::load_route_map`]) and the gateway's route maps and
//! token verification ([`crate::gateway`]).

/// doorman's own decision API (`/v1/is_authorized`,
/// `/v1/batch_is_authorized`): its two body readers and its decision path.
pub mod v1 {
    use crate::decide::{Answer, Query};
    use crate::server::ApiError;
    use crate::server::v1::read::{Item, ReadBatch};
    use crate::server::v1::{self as server_v1, ItemOutcomes, fast, read};
    use crate::snapshot::Snapshot;

    /// One question as a reader read it (its query and its request
    /// entities, not yet parsed). Two are equal when they hold the same
    /// query and the same entity JSON, whichever reader read them.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Single<'a>(Item<'a>);

    impl Single<'_> {
        pub fn query(&self) -> &Query {
            &self.0.query
        }

        /// Whether the question brought entities of its own.
        pub fn has_entities(&self) -> bool {
            self.0.entities.is_some()
        }
    }

    /// A batch as a reader read it: each item read or refused, and the
    /// shared entities.
    #[derive(Debug)]
    pub struct Batch<'a>(ReadBatch<'a>);

    impl PartialEq for Batch<'_> {
        fn eq(&self, other: &Self) -> bool {
            self.0.requests == other.0.requests && self.0.entities == other.0.entities
        }
    }

    impl Batch<'_> {
        /// Each item: its query, or why it was refused.
        pub fn items(&self) -> impl Iterator<Item = Result<&Query, &ApiError>> {
            self.0.requests.iter().map(|r| r.as_ref().map(|i| &i.query))
        }
    }

    /// The typed reader of a single body: `Some` only for a body it reads
    /// exactly as the walk does.
    pub fn typed_single(body: &[u8]) -> Option<Single<'_>> {
        fast::item(body).map(Single)
    }

    /// The walk (the reader that words every refusal) on a single body.
    pub fn walked_single(body: &[u8]) -> Result<Single<'static>, ApiError> {
        read::walk_single(body).map(Single)
    }

    /// A single body as the server reads it: typed reader, else the walk.
    pub fn read_single(body: &[u8]) -> Result<Single<'_>, ApiError> {
        read::parse_single(body).map(Single)
    }

    /// The typed reader of a batch body.
    pub fn typed_batch(body: &[u8], max_batch: usize) -> Option<Batch<'_>> {
        fast::batch(body, max_batch).map(Batch)
    }

    /// The walk on a batch body.
    pub fn walked_batch(body: &[u8], max_batch: usize) -> Result<Batch<'static>, ApiError> {
        read::walk_batch(body, max_batch).map(Batch)
    }

    /// A batch body as the server reads it.
    pub fn read_batch(body: &[u8], max_batch: usize) -> Result<Batch<'_>, ApiError> {
        read::parse_batch_body(body, max_batch).map(Batch)
    }

    /// One question answered as `/v1/is_authorized` answers it.
    pub fn decide(snapshot: &Snapshot, single: &Single<'_>) -> Result<Answer, ApiError> {
        server_v1::decide(snapshot, &single.0, None)
    }

    /// A batch answered as `/v1/batch_is_authorized` answers it: each
    /// item's answer or refusal, with its query.
    pub fn decide_batch(snapshot: &Snapshot, batch: Batch<'_>) -> Result<ItemOutcomes, ApiError> {
        server_v1::decide_batch(snapshot, batch.0)
    }
}

/// AuthZEN 1.0's endpoints, answered as the server answers them (after
/// the transport checks: the body is taken as `application/json`).
pub mod authzen {
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    use std::time::Instant;

    use bytes::Bytes;
    use hyper::body::Body as _;
    use hyper::header::HeaderValue;

    use crate::server::State;
    use crate::server::authzen::{evaluate, search};
    use crate::server::request_id::Arrival;

    /// Which `POST /access/v1/...` endpoint.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Endpoint {
        Evaluation,
        Evaluations,
        SearchSubject,
        SearchResource,
        SearchAction,
    }

    /// The answer's status and body, for `body` sent to `endpoint`
    /// (`explain`: with `Doorman-Explain: true`).
    pub fn answer(state: &State, endpoint: Endpoint, body: &[u8], explain: bool) -> (u16, Bytes) {
        let body = Bytes::copy_from_slice(body);
        let arrival = Arrival {
            id: HeaderValue::from_static("fuzz"),
            at: Instant::now(),
        };
        let response = match endpoint {
            Endpoint::Evaluation => evaluate::single(state, &body, explain, &arrival),
            Endpoint::Evaluations => evaluate::batch(state, &body, explain, &arrival),
            Endpoint::SearchSubject => search::answer(state, search::Kind::Subject, &body),
            Endpoint::SearchResource => search::answer(state, search::Kind::Resource, &body),
            Endpoint::SearchAction => search::answer(state, search::Kind::Action, &body),
        };
        let status = response.status().as_u16();
        // Every answer is one buffer (`respond`): its one frame is ready.
        let mut body = response.into_body();
        let mut cx = Context::from_waker(Waker::noop());
        let bytes = match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
            _ => Bytes::new(),
        };
        (status, bytes)
    }
}
