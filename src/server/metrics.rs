//! `GET /metrics`: the sidecar's counters in the OpenMetrics text format.
//!
//! Shaped around the hot-path rule: recording a request or a decision takes
//! no lock and allocates nothing. prometheus-client's own metric types do
//! not give that (a `Family` looks its label set up in a locked map, and its
//! `Histogram::observe` takes a lock), so the counters here are plain
//! atomics in fixed arrays, indexed by fixed enums: an [`Endpoint`] per
//! route and a [`StatusClass`] per status code doorman sends (any other is
//! counted as `other`). A histogram is an array of atomic bucket counters
//! with fixed bounds.
//!
//! prometheus-client still writes the exposition: at scrape time a
//! [`Collector`] reads the atomics and hands the numbers to its encoder, so
//! the text (names, `_total` suffixes, escaping, `# EOF`) is the crate's,
//! never hand-written. What the state already knows (the serving snapshot,
//! the reload history, the database sources) is read from it at scrape
//! time rather than mirrored into more counters.
//!
//! The [`Metrics`] live in the [`State`] as an `Arc`, passed explicitly like
//! everything else (no global registry), so two servers in one process
//! count apart.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::respond::Body;
use super::state::State;
use crate::decide::{Answer, Decision};

/// The exposition's media type.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What answered a request: the `endpoint` label of the request and
/// decision metrics, and the decision log's `endpoint` field. A fixed set,
/// so a scanner probing random paths cannot grow the label space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    V1IsAuthorized,
    V1BatchIsAuthorized,
    AuthzenEvaluation,
    AuthzenEvaluations,
    AuthzenSearchSubject,
    AuthzenSearchResource,
    AuthzenSearchAction,
    AuthzenMetadata,
    AdminStatus,
    AdminPolicies,
    AdminReload,
    Ready,
    Health,
    Metrics,
    OpenApi,
    GatewayEnvoy,
    GatewayEnvoyGrpc,
    GatewayNginx,
    GatewayForwardAuth,
    NotFound,
}

impl Endpoint {
    pub const ALL: [Endpoint; 20] = [
        Endpoint::V1IsAuthorized,
        Endpoint::V1BatchIsAuthorized,
        Endpoint::AuthzenEvaluation,
        Endpoint::AuthzenEvaluations,
        Endpoint::AuthzenSearchSubject,
        Endpoint::AuthzenSearchResource,
        Endpoint::AuthzenSearchAction,
        Endpoint::AuthzenMetadata,
        Endpoint::AdminStatus,
        Endpoint::AdminPolicies,
        Endpoint::AdminReload,
        Endpoint::Ready,
        Endpoint::Health,
        Endpoint::Metrics,
        Endpoint::OpenApi,
        Endpoint::GatewayEnvoy,
        Endpoint::GatewayEnvoyGrpc,
        Endpoint::GatewayNginx,
        Endpoint::GatewayForwardAuth,
        Endpoint::NotFound,
    ];
    const COUNT: usize = Endpoint::ALL.len();

    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::V1IsAuthorized => "v1.is_authorized",
            Endpoint::V1BatchIsAuthorized => "v1.batch_is_authorized",
            Endpoint::AuthzenEvaluation => "authzen.evaluation",
            Endpoint::AuthzenEvaluations => "authzen.evaluations",
            Endpoint::AuthzenSearchSubject => "authzen.search_subject",
            Endpoint::AuthzenSearchResource => "authzen.search_resource",
            Endpoint::AuthzenSearchAction => "authzen.search_action",
            Endpoint::AuthzenMetadata => "authzen.metadata",
            Endpoint::AdminStatus => "admin.status",
            Endpoint::AdminPolicies => "admin.policies",
            Endpoint::AdminReload => "admin.reload",
            Endpoint::Ready => "ready",
            Endpoint::Health => "health",
            Endpoint::Metrics => "metrics",
            Endpoint::OpenApi => "openapi",
            Endpoint::GatewayEnvoy => "gateway.envoy",
            Endpoint::GatewayEnvoyGrpc => "gateway.envoy_grpc",
            Endpoint::GatewayNginx => "gateway.nginx",
            Endpoint::GatewayForwardAuth => "gateway.forward_auth",
            Endpoint::NotFound => "not_found",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The status codes doorman answers with, each counted apart; anything
/// else is `other`.
const STATUSES: [u16; 11] = [200, 400, 401, 403, 404, 405, 408, 413, 422, 500, 503];
const STATUS_SLOTS: usize = STATUSES.len() + 1;

/// A status code's slot in the per-endpoint counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusClass(usize);

impl StatusClass {
    pub fn of(status: StatusCode) -> StatusClass {
        let code = status.as_u16();
        StatusClass(
            STATUSES
                .iter()
                .position(|&s| s == code)
                .unwrap_or(STATUSES.len()),
        )
    }

    fn label(self) -> &'static str {
        const LABELS: [&str; STATUS_SLOTS] = [
            "200", "400", "401", "403", "404", "405", "408", "413", "422", "500", "503", "other",
        ];
        LABELS[self.0]
    }
}

/// Request latency bounds, in nanoseconds: 10 µs up to 10 s.
const LATENCY_BOUNDS: &[u64] = &[
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
    2_500_000_000,
    10_000_000_000,
];

/// Reload duration bounds, in nanoseconds: 1 ms up to 1 min.
const RELOAD_BOUNDS: &[u64] = &[
    1_000_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
];

/// Items per batch.
const BATCH_BOUNDS: &[u64] = &[1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000];

/// The most bounds a histogram here has (plus one for `+Inf`).
const MAX_BUCKETS: usize = 18;

/// A histogram of integer observations (nanoseconds, items) with fixed
/// bounds: one atomic per bucket and one for the sum. The count is the
/// buckets' total, so an observation costs two atomic adds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// Units per exposed unit (1e9 for nanoseconds → seconds); dividing
    /// by it gives the nearest float (multiplying by 1e-9 adds noise).
    per_unit: f64,
    buckets: [AtomicU64; MAX_BUCKETS],
    sum: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [u64], per_unit: f64) -> Self {
        assert!(bounds.len() < MAX_BUCKETS);
        Histogram {
            bounds,
            per_unit,
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: u64) {
        let i = self
            .bounds
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    fn observe_duration(&self, d: Duration) {
        self.observe(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// `(upper bound, count in this bucket)` for the encoder (which sums
    /// them up), the count and the sum.
    fn read(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut buckets = Vec::with_capacity(self.bounds.len() + 1);
        let mut count = 0;
        for (i, b) in self.buckets[..=self.bounds.len()].iter().enumerate() {
            let n = b.load(Ordering::Relaxed);
            count += n;
            let bound = self
                .bounds
                .get(i)
                .map_or(f64::INFINITY, |&b| b as f64 / self.per_unit);
            buckets.push((bound, n));
        }
        let sum = self.sum.load(Ordering::Relaxed) as f64 / self.per_unit;
        (buckets, count, sum)
    }

    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (buckets, count, sum) = self.read();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}

/// What the request path records. Every field is an atomic; see the module
/// comment for why.
#[derive(Debug)]
pub struct Metrics {
    requests: [[AtomicU64; STATUS_SLOTS]; Endpoint::COUNT],
    latency: [Histogram; Endpoint::COUNT],
    /// `[allow, deny]` per endpoint.
    decisions: [[AtomicU64; 2]; Endpoint::COUNT],
    decision_errors: AtomicU64,
    batch_size: Histogram,
    reload_duration: Histogram,
    decision_log_dropped: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            latency: std::array::from_fn(|_| Histogram::new(LATENCY_BOUNDS, 1e9)),
            decisions: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            decision_errors: AtomicU64::new(0),
            batch_size: Histogram::new(BATCH_BOUNDS, 1.0),
            reload_duration: Histogram::new(RELOAD_BOUNDS, 1e9),
            decision_log_dropped: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// One answered request.
    pub fn request(&self, endpoint: Endpoint, status: StatusCode, took: Duration) {
        let e = endpoint.index();
        self.requests[e][StatusClass::of(status).0].fetch_add(1, Ordering::Relaxed);
        self.latency[e].observe_duration(took);
    }

    /// One decision (a batch counts each answered item).
    pub fn decision(&self, endpoint: Endpoint, answer: &Answer) {
        let d = match answer.decision {
            Decision::Allow => 0,
            Decision::Deny => 1,
        };
        self.decisions[endpoint.index()][d].fetch_add(1, Ordering::Relaxed);
        if !answer.errors.is_empty() {
            self.decision_errors
                .fetch_add(answer.errors.len() as u64, Ordering::Relaxed);
        }
    }

    /// A batch of `items` questions.
    pub fn batch(&self, items: usize) {
        self.batch_size.observe(items as u64);
    }

    pub fn reload(&self, took: Duration) {
        self.reload_duration.observe_duration(took);
    }

    /// A decision-log line that was not written (queue full, file not
    /// writable).
    pub fn decision_log_dropped(&self, lines: u64) {
        self.decision_log_dropped
            .fetch_add(lines, Ordering::Relaxed);
    }

    pub fn decision_log_dropped_total(&self) -> u64 {
        self.decision_log_dropped.load(Ordering::Relaxed)
    }
}

/// `GET /metrics`.
pub fn answer(state: &State) -> Response<Body> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape::of(state)));
    let mut text = String::with_capacity(16 * 1024);
    let (status, text) = match prometheus_client::encoding::text::encode(&mut text, &registry) {
        Ok(()) => (StatusCode::OK, text),
        Err(_) => {
            tracing::error!("cannot encode the metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, String::new())
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE_OPENMETRICS),
    );
    response
}

/// One scrape: the live counters and what the state says right now.
#[derive(Debug)]
struct Scrape {
    metrics: Arc<Metrics>,
    snapshot: Option<SnapshotFacts>,
    /// `(ok, failed)` reload attempts (`None`: not started from files).
    reloads: Option<(u64, u64)>,
    databases: Vec<DatabaseFacts>,
    /// Gateway checks by outcome (`allowed`, `denied`, `unmatched`, ...).
    gateway: [(&'static str, u64); 5],
    shadow: Option<ShadowFacts>,
}

/// What the shadow candidate (`--shadow`) has found.
#[derive(Debug)]
struct ShadowFacts {
    /// Decisions by outcome: agree, allow_to_deny, deny_to_allow, error.
    decisions: [(&'static str, u64); 4],
    skipped: u64,
    /// `(ok, failed)` loads of an edited candidate.
    reloads: (u64, u64),
    revision: Option<String>,
}

#[derive(Debug)]
struct SnapshotFacts {
    revision: String,
    loaded_at: f64,
    policies: usize,
    entities: usize,
}

#[derive(Debug)]
struct DatabaseFacts {
    source: String,
    connected: bool,
    changes_applied: u64,
    full_reads: u64,
    refused: u64,
    /// When the newest applied change was written, and how long it then
    /// took to serve.
    last_change: Option<(f64, f64)>,
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Scrape {
    fn of(state: &State) -> Scrape {
        let snapshot = state.snapshot().map(|s| SnapshotFacts {
            revision: s.revision().to_owned(),
            loaded_at: unix_seconds(s.loaded_at()),
            policies: s.policy_count(),
            entities: s.entity_count(),
        });
        let reloads = state.reloader().map(|r| {
            let s = r.status();
            (s.successes + s.unchanged, s.failures)
        });
        let databases = state
            .reloader()
            .map(|r| r.databases())
            .unwrap_or_default()
            .into_iter()
            .map(|d| DatabaseFacts {
                connected: d.state != "reconnecting",
                changes_applied: d.changes_applied,
                full_reads: d.full_reads,
                refused: d.refused_total,
                last_change: d
                    .last_change
                    .map(|(at, lag)| (unix_seconds(at), lag.as_secs_f64())),
                source: d.source,
            })
            .collect();
        let g = state.gateway_counters();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let shadow = state.shadow().map(|s| {
            let c = s.counts();
            ShadowFacts {
                decisions: [
                    ("agree", load(&c.agreed)),
                    ("allow_to_deny", load(&c.allow_to_deny)),
                    ("deny_to_allow", load(&c.deny_to_allow)),
                    ("error", load(&c.errors)),
                ],
                skipped: load(&c.skipped),
                reloads: (load(&c.reloads_ok), load(&c.reloads_failed)),
                revision: s.revision(),
            }
        });
        Scrape {
            metrics: state.metrics().clone(),
            snapshot,
            reloads,
            databases,
            gateway: [
                ("allowed", load(&g.allowed)),
                ("denied", load(&g.denied)),
                ("unmatched", load(&g.unmatched)),
                ("unauthenticated", load(&g.unauthenticated)),
                ("bad_request", load(&g.bad_request)),
            ],
            shadow,
        }
    }
}

/// A shorthand for one descriptor and its samples.
fn family<'a>(
    encoder: &'a mut DescriptorEncoder,
    name: &'a str,
    help: &str,
    kind: MetricType,
) -> Result<MetricEncoder<'a>, std::fmt::Error> {
    encoder.encode_descriptor(name, help, None, kind)
}

fn counter(encoder: &mut MetricEncoder, labels: &impl EncodeLabelSet, v: u64) -> std::fmt::Result {
    encoder
        .encode_family(labels)?
        .encode_counter::<NoLabelSet, u64, u64>(&v, None)
}

fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut MetricEncoder,
    labels: &impl EncodeLabelSet,
    v: V,
) -> std::fmt::Result {
    encoder.encode_family(labels)?.encode_gauge(&v)
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = &*self.metrics;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let none: [(&str, &str); 0] = [];

        let mut f = family(
            &mut e,
            "doorman_http_requests",
            "HTTP requests answered, by endpoint and status code.",
            MetricType::Counter,
        )?;
        for endpoint in Endpoint::ALL {
            for (slot, n) in m.requests[endpoint.index()].iter().enumerate() {
                let n = load(n);
                if n > 0 {
                    let status = StatusClass(slot).label();
                    counter(
                        &mut f,
                        &[("endpoint", endpoint.as_str()), ("status", status)],
                        n,
                    )?;
                }
            }
        }

        let mut f = family(
            &mut e,
            "doorman_http_request_duration_seconds",
            "Time from a request's arrival to its answer, by endpoint.",
            MetricType::Histogram,
        )?;
        for endpoint in Endpoint::ALL {
            let h = &m.latency[endpoint.index()];
            if h.buckets.iter().any(|b| load(b) > 0) {
                h.encode(f.encode_family(&[("endpoint", endpoint.as_str())])?)?;
            }
        }

        let mut f = family(
            &mut e,
            "doorman_decisions",
            "Decisions made, by endpoint and decision (a batch counts each item).",
            MetricType::Counter,
        )?;
        for endpoint in Endpoint::ALL {
            let [allow, deny] = &m.decisions[endpoint.index()];
            for (decision, n) in [("allow", load(allow)), ("deny", load(deny))] {
                if n > 0 {
                    counter(
                        &mut f,
                        &[("endpoint", endpoint.as_str()), ("decision", decision)],
                        n,
                    )?;
                }
            }
        }

        let f = family(
            &mut e,
            "doorman_decision_errors",
            "Policies that failed to evaluate during a decision (and were skipped).",
            MetricType::Counter,
        )?;
        counter_plain(f, load(&m.decision_errors))?;

        let f = family(
            &mut e,
            "doorman_batch_size",
            "Questions per batch (/v1/batch_is_authorized, AuthZEN evaluations).",
            MetricType::Histogram,
        )?;
        m.batch_size.encode(f)?;

        let mut f = family(
            &mut e,
            "doorman_reloads",
            "Reload attempts from files, by result (ok includes unchanged).",
            MetricType::Counter,
        )?;
        let (ok, failed) = self.reloads.unwrap_or_default();
        counter(&mut f, &[("result", "ok")], ok)?;
        counter(&mut f, &[("result", "failed")], failed)?;

        let f = family(
            &mut e,
            "doorman_reload_duration_seconds",
            "How long reload attempts took.",
            MetricType::Histogram,
        )?;
        m.reload_duration.encode(f)?;

        if let Some(s) = &self.snapshot {
            let mut f = family(
                &mut e,
                "doorman_snapshot",
                "The serving snapshot's revision.",
                MetricType::Info,
            )?;
            f.encode_info(&[("revision", s.revision.as_str())])?;
            let mut f = family(
                &mut e,
                "doorman_snapshot_loaded_timestamp_seconds",
                "When the serving snapshot was loaded (Unix time).",
                MetricType::Gauge,
            )?;
            gauge(&mut f, &none, s.loaded_at)?;
            let mut f = family(
                &mut e,
                "doorman_policies",
                "Policies in the serving snapshot.",
                MetricType::Gauge,
            )?;
            gauge(&mut f, &none, s.policies as u64)?;
            let mut f = family(
                &mut e,
                "doorman_entities",
                "Entities in the serving snapshot's store.",
                MetricType::Gauge,
            )?;
            gauge(&mut f, &none, s.entities as u64)?;
        }

        if !self.databases.is_empty() {
            let dbs = &self.databases;
            let mut f = family(
                &mut e,
                "doorman_database_connected",
                "1 while a database source is read or followed, 0 while it reconnects.",
                MetricType::Gauge,
            )?;
            for d in dbs {
                gauge(
                    &mut f,
                    &[("source", d.source.as_str())],
                    u64::from(d.connected),
                )?;
            }
            let mut f = family(
                &mut e,
                "doorman_database_changes_applied",
                "Change-log rows applied from a database source.",
                MetricType::Counter,
            )?;
            for d in dbs {
                counter(&mut f, &[("source", d.source.as_str())], d.changes_applied)?;
            }
            let mut f = family(
                &mut e,
                "doorman_database_full_reads",
                "Full reads of a database source (start-up, gaps in the change log).",
                MetricType::Counter,
            )?;
            for d in dbs {
                counter(&mut f, &[("source", d.source.as_str())], d.full_reads)?;
            }
            let mut f = family(
                &mut e,
                "doorman_database_refused_rows",
                "Rows of a database source refused (schema, duplicates, cycles).",
                MetricType::Counter,
            )?;
            for d in dbs {
                counter(&mut f, &[("source", d.source.as_str())], d.refused)?;
            }
            let mut f = family(
                &mut e,
                "doorman_database_last_change_timestamp_seconds",
                "When the newest applied change of a database source was written (Unix time).",
                MetricType::Gauge,
            )?;
            for d in dbs {
                if let Some((at, _)) = d.last_change {
                    gauge(&mut f, &[("source", d.source.as_str())], at)?;
                }
            }
            let mut f = family(
                &mut e,
                "doorman_database_lag_seconds",
                "How long the newest applied change took from its commit to serving.",
                MetricType::Gauge,
            )?;
            for d in dbs {
                if let Some((_, lag)) = d.last_change {
                    gauge(&mut f, &[("source", d.source.as_str())], lag)?;
                }
            }
        }

        let mut f = family(
            &mut e,
            "doorman_gateway_checks",
            "Gateway checks (Envoy, nginx, forward-auth, gRPC) by outcome; unmatched: no route matched.",
            MetricType::Counter,
        )?;
        for (outcome, n) in self.gateway {
            counter(&mut f, &[("outcome", outcome)], n)?;
        }

        if let Some(shadow) = &self.shadow {
            let mut f = family(
                &mut e,
                "doorman_shadow_decisions",
                "Decisions answered again by the --shadow candidate, by how its decision compares with the live one.",
                MetricType::Counter,
            )?;
            for (outcome, n) in shadow.decisions {
                counter(&mut f, &[("outcome", outcome)], n)?;
            }
            let f = family(
                &mut e,
                "doorman_shadow_skipped",
                "Decisions the --shadow candidate did not answer because it was behind.",
                MetricType::Counter,
            )?;
            counter_plain(f, shadow.skipped)?;
            let mut f = family(
                &mut e,
                "doorman_shadow_reloads",
                "Loads of the edited --shadow candidate, by result.",
                MetricType::Counter,
            )?;
            counter(&mut f, &[("result", "ok")], shadow.reloads.0)?;
            counter(&mut f, &[("result", "failed")], shadow.reloads.1)?;
            if let Some(revision) = &shadow.revision {
                let mut f = family(
                    &mut e,
                    "doorman_shadow",
                    "The --shadow candidate's revision.",
                    MetricType::Info,
                )?;
                f.encode_info(&[("revision", revision.as_str())])?;
            }
        }

        let f = family(
            &mut e,
            "doorman_decision_log_dropped",
            "Decision-log lines not written (queue full, or the file not writable).",
            MetricType::Counter,
        )?;
        counter_plain(f, load(&m.decision_log_dropped))?;

        let mut f = family(
            &mut e,
            "doorman_build",
            "The running doorman's version.",
            MetricType::Info,
        )?;
        f.encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;
        Ok(())
    }
}

fn counter_plain(mut f: MetricEncoder, v: u64) -> std::fmt::Result {
    f.encode_counter::<NoLabelSet, u64, u64>(&v, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_count_each_value_in_the_first_bucket_that_holds_it() {
        let h = Histogram::new(BATCH_BOUNDS, 1.0);
        for v in [1, 2, 3, 100, 101, 5_000] {
            h.observe(v);
        }
        let (buckets, count, sum) = h.read();
        assert_eq!(count, 6);
        assert_eq!(sum, 5_207.0);
        let of = |bound: f64| buckets.iter().find(|(b, _)| *b == bound).unwrap().1;
        assert_eq!((of(1.0), of(2.0), of(5.0), of(100.0)), (1, 1, 1, 1));
        assert_eq!((of(250.0), of(f64::INFINITY)), (1, 1));
    }

    #[test]
    fn statuses_outside_the_list_are_other() {
        assert_eq!(StatusClass::of(StatusCode::OK).label(), "200");
        assert_eq!(
            StatusClass::of(StatusCode::METHOD_NOT_ALLOWED).label(),
            "405"
        );
        assert_eq!(StatusClass::of(StatusCode::IM_A_TEAPOT).label(), "other");
    }

    #[test]
    fn every_endpoint_has_its_own_slot() {
        for (i, e) in Endpoint::ALL.into_iter().enumerate() {
            assert_eq!(e.index(), i, "{}", e.as_str());
        }
    }

    #[test]
    fn the_exposition_is_openmetrics_with_counts_by_label() {
        let state = State::new(super::super::state::Config::default());
        let m = state.metrics();
        m.request(Endpoint::Health, StatusCode::OK, Duration::from_micros(7));
        m.request(Endpoint::Health, StatusCode::OK, Duration::from_micros(30));
        m.request(
            Endpoint::NotFound,
            StatusCode::NOT_FOUND,
            Duration::from_micros(7),
        );
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Scrape::of(&state)));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("doorman_http_requests_total{endpoint=\"health\",status=\"200\"} 2\n"),
            "{text}"
        );
        let bucket = "doorman_http_request_duration_seconds_bucket";
        assert!(
            text.contains(&format!(
                "{bucket}{{le=\"0.00001\",endpoint=\"health\"}} 1\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(
                "doorman_http_request_duration_seconds_sum{endpoint=\"health\"} 0.000037\n"
            ),
            "{text}"
        );
        assert!(text.contains("doorman_build_info{version=\""), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
