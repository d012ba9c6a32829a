//! Shared by the `decision`, `policies` and `reload` benchmarks: generated
//! worlds in the sample world's shape, generated tenant policies, request
//! mixes, and the JSON request → answer path the sidecar takes.
//!
//! Everything is generated deterministically from indices (no randomness),
//! so every run measures the same work and ids can be computed instead of
//! stored. Worlds are written as files and read back through `load`, so the
//! benchmarks measure the loader a deployment runs, not a shortcut.
//!
//! Each benchmark uses a subset of these helpers.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use doorman::decide::uid_from_parts;
use doorman::{Answer, Decision, Query, Snapshot, Sources, ValidationMode};
use serde_json::{Value, json};

// The sidecar's allocator (src/main.rs), so library timings match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Repository root: benchmarks run with it as working directory, but say
/// so explicitly so that a moved binary still finds the bundled model.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled model's policies and schema over other entity files.
pub fn sources(policies: PathBuf, entities: Vec<PathBuf>) -> Sources {
    Sources {
        policies,
        schema: Some(root().join("schema")),
        entities,
        databases: vec![],
        validation: ValidationMode::Strict,
        routes: None,
    }
}

/// A generated world: `companies` tenants of `members` seats each, every
/// tenant with the same furniture as the sample world's (stores, inboxes,
/// AI agents and calls, contacts, a property, a campaign, invitations, an
/// API key).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub companies: usize,
    pub members: usize,
}

/// Non-member entities per company (see `write_company`).
pub const FURNITURE: usize = 44;
const INBOXES: usize = 10;
const CONTACTS: usize = 20;
const ROLES: [&str; 10] = [
    "admin",
    "admin",
    "manager",
    "agent",
    "agent",
    "agent",
    "member",
    "member",
    "member",
    "store_member",
];

impl Shape {
    pub fn members(members: usize) -> Shape {
        Shape {
            companies: members.div_ceil(100),
            members: 100.min(members),
        }
    }

    pub fn entity_count(&self) -> usize {
        5 + self.companies * (FURNITURE + self.members)
    }

    pub fn label(&self) -> String {
        human(self.companies * self.members)
    }
}

/// `1k`, `100k`, `1M`.
pub fn human(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// Writes the world as Cedar entity JSON files under `dir` (one file per
/// 1,000 companies, as a deployment would split a large export) and returns
/// the directory to pass as `--entities`.
pub fn write_world(dir: &Path, shape: Shape) -> PathBuf {
    let out = dir.join("entities");
    std::fs::create_dir_all(&out).expect("entity dir");
    let roles: Vec<Value> = ["admin", "manager", "agent", "member", "store_member"]
        .iter()
        .map(|r| json!({"uid": {"type": "Role", "id": r}, "attrs": {}, "parents": []}))
        .collect();
    std::fs::write(out.join("roles.json"), Value::Array(roles).to_string()).expect("roles");
    for (chunk, first) in (0..shape.companies).step_by(1000).enumerate() {
        let file = std::fs::File::create(out.join(format!("world-{chunk:04}.json"))).expect("file");
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let mut sep = "[";
        let mut text = String::new();
        for c in first..(first + 1000).min(shape.companies) {
            text.clear();
            write_company(&mut text, c, shape.members, &mut sep);
            w.write_all(text.as_bytes()).expect("write");
        }
        w.write_all(if sep == "[" { b"[]" } else { b"]" })
            .expect("write");
        w.flush().expect("flush");
    }
    out
}

/// The same world with one file per company (`tenants/c123.json`), the
/// layout the README recommends at scale: a change to one tenant rewrites
/// one small file, which is all a reload then reads.
pub fn write_tenant_world(dir: &Path, shape: Shape) -> PathBuf {
    let out = dir.join("entities");
    std::fs::create_dir_all(out.join("tenants")).expect("entity dir");
    let roles: Vec<Value> = ["admin", "manager", "agent", "member", "store_member"]
        .iter()
        .map(|r| json!({"uid": {"type": "Role", "id": r}, "attrs": {}, "parents": []}))
        .collect();
    std::fs::write(out.join("roles.json"), Value::Array(roles).to_string()).expect("roles");
    for c in 0..shape.companies {
        std::fs::write(tenant_path(&out, c), tenant_file(c, shape.members, 0)).expect("tenant");
    }
    out
}

pub fn tenant_path(entities: &Path, c: usize) -> PathBuf {
    entities.join("tenants").join(format!("c{c}.json"))
}

/// Company `c`'s file; `shift` rotates its seats' roles, so that two shifts
/// give two versions of the same tenant that answer differently.
pub fn tenant_file(c: usize, members: usize, shift: usize) -> String {
    let mut text = String::new();
    let mut sep = "[";
    write_company_shifted(&mut text, c, members, &mut sep, shift);
    text.push(']');
    text
}

fn write_company(out: &mut String, c: usize, members: usize, sep: &mut &'static str) {
    write_company_shifted(out, c, members, sep, 0)
}

fn write_company_shifted(
    out: &mut String,
    c: usize,
    members: usize,
    sep: &mut &'static str,
    shift: usize,
) {
    let co = format!("c{c}");
    let company = format!(r#"{{"type":"Company","id":"{co}"}}"#);
    let mut item = |out: &mut String, ty: &str, id: &str, attrs: &str, parents: &str| {
        let _ = write!(
            out,
            r#"{sep}{{"uid":{{"type":"{ty}","id":"{id}"}},"attrs":{{{attrs}}},"parents":[{parents}]}}"#
        );
        *sep = ",\n";
    };
    item(
        out,
        "Company",
        &co,
        &format!(
            r#""name":"Company {c}","managers_can_invite_admins":{},"admin_count":2"#,
            c.is_multiple_of(2)
        ),
        "",
    );
    let with_company = format!(r#""company":{company}"#);
    for s in 0..2 {
        item(out, "Store", &format!("{co}-s{s}"), &with_company, &company);
    }
    let store = |k: usize| format!(r#"{{"type":"Store","id":"{co}-s{}"}}"#, k % 2);
    for k in 0..INBOXES {
        let store_attr = if k.is_multiple_of(2) {
            format!(r#","store":{}"#, store(k / 2))
        } else {
            String::new()
        };
        item(
            out,
            "Inbox",
            &format!("{co}-in{k}"),
            &format!(
                r#"{with_company},"private":{}{store_attr}"#,
                k.is_multiple_of(3)
            ),
            &company,
        );
    }
    for k in 0..2 {
        item(
            out,
            "Agent",
            &format!("{co}-ag{k}"),
            &with_company,
            &company,
        );
    }
    for k in 0..4usize {
        item(
            out,
            "Call",
            &format!("{co}-call{k}"),
            &format!(r#"{with_company},"has_recording":{}"#, k.is_multiple_of(2)),
            &format!(r#"{{"type":"Agent","id":"{co}-ag{}"}}"#, k % 2),
        );
    }
    for k in 0..CONTACTS {
        let labels = if k.is_multiple_of(10) {
            r#"["vip"]"#
        } else {
            "[]"
        };
        let store_attr = if k.is_multiple_of(4) {
            format!(r#","store":{}"#, store(k / 4))
        } else {
            String::new()
        };
        item(
            out,
            "Contact",
            &format!("{co}-ct{k}"),
            &format!(r#"{with_company},"labels":{labels}{store_attr}"#),
            &company,
        );
    }
    item(
        out,
        "Property",
        &format!("{co}-prop"),
        &with_company,
        &company,
    );
    item(
        out,
        "Campaign",
        &format!("{co}-camp"),
        &with_company,
        &company,
    );
    for (k, (expires, revoked)) in [
        ("2026-12-01T00:00:00Z", false),
        ("2026-01-01T00:00:00Z", true),
    ]
    .into_iter()
    .enumerate()
    {
        item(
            out,
            "Invitation",
            &format!("{co}-inv{k}"),
            &format!(
                r#"{with_company},"email":"new{k}@{co}.test","role":"agent","expires_at":"{expires}","revoked":{revoked}"#
            ),
            &company,
        );
    }
    item(out, "ApiKey", &format!("{co}-key"), &with_company, &company);
    for m in 0..members {
        let role = ROLES[(m + shift) % ROLES.len()];
        let agents = if m.is_multiple_of(3) {
            format!(r#"{{"type":"Agent","id":"{co}-ag{}"}}"#, m % 2)
        } else {
            String::new()
        };
        let stores = if role == "store_member" {
            store(m / 10)
        } else {
            String::new()
        };
        let grants = [
            r#""crm""#,
            r#""edit_agents","recordings""#,
            "",
            r#""billable_minutes""#,
        ][m % 4];
        item(
            out,
            "Member",
            &format!("{co}-m{m}"),
            &format!(
                r#"{with_company},"email":"m{m}@{co}.test","kind":"{}","labels":[],"archived":{},"anonymous":false,"inboxes":[{{"type":"Inbox","id":"{co}-in{}"}}],"agents":[{agents}],"stores":[{stores}],"grants":[{grants}]"#,
                if m % 50 == 49 { "customer" } else { "team" },
                m % 97 == 96,
                m % INBOXES,
            ),
            &format!(r#"{company},{{"type":"Role","id":"{role}"}}"#),
        );
    }
}

/// Ten tenant policies for each of companies `0..companies`, each scoped to
/// its company with `resource in Company::"…"`, as a product would generate
/// per-tenant customisations. All validate strictly against the bundled
/// schema.
pub fn tenant_policies(companies: usize) -> String {
    let mut out = String::new();
    for c in 0..companies {
        let co = format!(r#"Company::"c{c}""#);
        let rules: [(&str, &str, &str, &str); 10] = [
            (
                "permit",
                "principal",
                r#"action == Action::"ViewInbox""#,
                r#"when { principal.labels.contains("night-shift") }"#,
            ),
            (
                "forbid",
                "principal",
                r#"action == Action::"SendMessage""#,
                r#"when { principal.labels.contains("muted") }"#,
            ),
            (
                "permit",
                "principal",
                r#"action == Action::"UpdateContact""#,
                r#"when { principal.grants.contains("crm") && principal.labels.contains("crm-desk") }"#,
            ),
            (
                "permit",
                "principal",
                r#"action == Action::"ViewAgent""#,
                r#"when { principal.labels.contains("agent-viewer") }"#,
            ),
            (
                "forbid",
                "principal",
                r#"action == Action::"RemoveInbox""#,
                "when { resource.private && principal.labels.contains(\"no-removals\") }",
            ),
            (
                "permit",
                "principal",
                r#"action == Action::"ManageCampaigns""#,
                r#"when { principal.grants.contains("crm") && principal.labels.contains("marketing") }"#,
            ),
            (
                "permit",
                "principal",
                r#"action == Action::"ViewCall""#,
                r#"when { resource.has_recording && principal.labels.contains("qa") }"#,
            ),
            (
                "forbid",
                "principal",
                r#"action == Action::"ModifyInbox""#,
                r#"when { principal.labels.contains("read-only") }"#,
            ),
            (
                "permit",
                r#"principal in Role::"agent""#,
                r#"action in Action::"CompanyToggles""#,
                r#"when { principal.labels.contains("beta") }"#,
            ),
            (
                "permit",
                "principal",
                r#"action == Action::"UpdateProperty""#,
                r#"when { principal.labels.contains("props") }"#,
            ),
        ];
        for (k, (effect, principal, action, when)) in rules.iter().enumerate() {
            let _ = writeln!(
                out,
                "@id(\"tenant.c{c}.{k}\")\n{effect} ({principal}, {action}, resource in {co})\n{when};\n"
            );
        }
    }
    out
}

/// A policy directory: the bundled policies plus `extra` (if any) in its
/// own file.
pub fn policy_dir(dir: &Path, extra: Option<&str>) -> PathBuf {
    let out = dir.join("policies");
    std::fs::create_dir_all(&out).expect("policy dir");
    for entry in std::fs::read_dir(root().join("policies")).expect("bundled policies") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("file name").to_owned();
        std::fs::copy(&path, out.join(name)).expect("copy");
    }
    if let Some(text) = extra {
        std::fs::write(out.join("tenants.cedar"), text).expect("tenant policies");
    }
    out
}

/// `n` request bodies over `shape`, in the sidecar's JSON request shape
/// (`{"principal": {"type", "id"}, "action", "resource", "context",
/// "entities"}`), cycling through the bundled model's kinds of question.
/// With `entities`, each body brings ten request-scoped entities: the
/// principal as a fresh seat, four fresh inboxes assigned to it and five
/// fresh contacts; the resource is one of them where the action is about an
/// inbox or a contact.
pub fn request_bodies(shape: Shape, n: usize, entities: bool) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            // Spread over companies and seats with coprime strides.
            let c = (i * 7919) % shape.companies;
            let m = (i * 31) % shape.members;
            let other = (c + 1) % shape.companies;
            // One request in ten crosses tenants (tenant isolation denies).
            let rc = if i % 10 == 9 { other } else { c };
            let co = format!("c{c}");
            let rco = format!("c{rc}");
            let fresh = entities.then(|| format!("{co}-fresh{i}"));
            let uid = |t: &str, id: &str| json!({"type": t, "id": id});
            let (action, resource, context) = match i % 10 {
                0 => (
                    "ViewInbox",
                    uid("Inbox", &format!("{rco}-in{}", i % INBOXES)),
                    json!({}),
                ),
                1 => (
                    "SendMessage",
                    uid("Inbox", &format!("{rco}-in{}", m % INBOXES)),
                    json!({}),
                ),
                2 => (
                    "UpdateContact",
                    uid("Contact", &format!("{rco}-ct{}", i % CONTACTS)),
                    json!({}),
                ),
                3 => (
                    "ViewAgent",
                    uid("Agent", &format!("{rco}-ag{}", i % 2)),
                    json!({}),
                ),
                4 => (
                    "ViewRecording",
                    uid("Call", &format!("{rco}-call{}", i % 4)),
                    json!({}),
                ),
                5 => (
                    "ManageApiKeys",
                    uid("ApiKey", &format!("{rco}-key")),
                    json!({}),
                ),
                6 => (
                    "InviteMember",
                    uid("Company", &rco),
                    json!({"role": if i % 20 < 10 { "agent" } else { "admin" }}),
                ),
                7 => (
                    "RemoveTeamMember",
                    uid("Member", &format!("{rco}-m{}", (m + 1) % shape.members)),
                    json!({}),
                ),
                8 => ("AccessCrm", uid("Company", &rco), json!({})),
                _ => (
                    "ModifyInbox",
                    uid("Inbox", &format!("{rco}-in{}", (i / 10) % INBOXES)),
                    json!({}),
                ),
            };
            let mut body = json!({
                "principal": uid("Member", &format!("{co}-m{m}")),
                "action": uid("Action", action),
                "resource": resource,
                "context": context,
            });
            if let Some(fresh) = fresh {
                let (principal, list, resource) =
                    fresh_entities(&co, &fresh, m, action, &body["resource"]);
                body["principal"] = principal;
                body["entities"] = list;
                body["resource"] = resource;
            }
            serde_json::to_vec(&body).expect("JSON")
        })
        .collect()
}

/// The ten request-scoped entities of one request (see `request_bodies`).
fn fresh_entities(
    co: &str,
    fresh: &str,
    m: usize,
    action: &str,
    resource: &Value,
) -> (Value, Value, Value) {
    let company = json!({"type": "Company", "id": co});
    let inbox = |k: usize| json!({"type": "Inbox", "id": format!("{fresh}-in{k}")});
    let contact = |k: usize| json!({"type": "Contact", "id": format!("{fresh}-ct{k}")});
    let role = ROLES[m % ROLES.len()];
    let mut list = vec![json!({
        "uid": {"type": "Member", "id": fresh},
        "attrs": {
            "company": company, "email": format!("{fresh}@{co}.test"), "kind": "team",
            "labels": [], "archived": false, "anonymous": false,
            "inboxes": (0..4).map(inbox).collect::<Vec<_>>(),
            "agents": [], "stores": [], "grants": ["crm"],
        },
        "parents": [company, {"type": "Role", "id": role}],
    })];
    for k in 0..4 {
        list.push(json!({
            "uid": inbox(k),
            "attrs": {"company": company, "private": k == 0},
            "parents": [company],
        }));
    }
    for k in 0..5 {
        list.push(json!({
            "uid": contact(k),
            "attrs": {"company": company, "labels": []},
            "parents": [company],
        }));
    }
    let same_company = resource["id"]
        .as_str()
        .is_some_and(|id| id.starts_with(&format!("{co}-")));
    let resource = match action {
        "ViewInbox" | "SendMessage" | "ModifyInbox" if same_company => inbox(m % 4),
        "UpdateContact" if same_company => contact(m % 5),
        _ => resource.clone(),
    };
    (
        json!({"type": "Member", "id": fresh}),
        Value::Array(list),
        resource,
    )
}

/// The sidecar's path for one body: `answer_body` is what
/// `/v1/is_authorized` runs between reading the body and writing the answer
/// (JSON → `Query`, an `Overlay` when it brings entities, the decision).
pub fn decide_json(snapshot: &Snapshot, body: &[u8]) -> Result<Answer, String> {
    doorman::server::answer_body(snapshot, body).map_err(|e| e.message)
}

/// The `Query` of a body without entities (for measuring `decide` alone).
pub fn query_of(body: &[u8]) -> Query {
    let v: Value = serde_json::from_slice(body).expect("JSON");
    let uid = |f: &str| {
        uid_from_parts(
            v[f]["type"].as_str().unwrap_or(""),
            v[f]["id"].as_str().unwrap_or(""),
        )
        .expect("entity reference")
    };
    Query {
        principal: uid("principal"),
        action: uid("action"),
        resource: uid("resource"),
        context: v["context"].clone(),
    }
}

/// Runs every body once and says how the answers split, so a benchmark
/// that measures nothing but errors cannot pass unnoticed.
pub fn check_answers(snapshot: &Snapshot, bodies: &[Vec<u8>]) -> String {
    let (mut allow, mut deny, mut errors, mut failed) = (0, 0, 0, 0);
    for body in bodies {
        match decide_json(snapshot, body) {
            Ok(a) => {
                match a.decision {
                    Decision::Allow => allow += 1,
                    Decision::Deny => deny += 1,
                }
                errors += usize::from(!a.errors.is_empty());
            }
            Err(e) => {
                if failed == 0 {
                    eprintln!("  first refused request: {e}");
                }
                failed += 1;
            }
        }
    }
    assert_eq!(failed, 0, "every benchmark request must be answered");
    format!("{allow} allow, {deny} deny, {errors} with policy errors")
}

/// Whether criterion's command-line filter (a regex, as criterion reads it)
/// selects benchmark `id`, so that a large world nobody asked to measure is
/// not generated.
pub fn selected(id: &str) -> bool {
    // Criterion's options that take a value as the next argument.
    const VALUED: [&str; 14] = [
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--profile-time",
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--nresamples",
        "--color",
        "--plotting-backend",
    ];
    let mut filters = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if VALUED.contains(&a.as_str()) || a == "--output-format" || a == "--format" {
            args.next();
        } else if !a.starts_with('-') {
            filters.push(a);
        }
    }
    filters.is_empty()
        || filters
            .iter()
            .any(|f| regex::Regex::new(f).map_or(true, |re| re.is_match(id)))
}

/// This process's resident memory in KiB (0 where /proc is missing).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}

/// Peak and current resident memory of this process, from /proc (Linux).
pub fn memory() -> String {
    memory_of("self")
}

/// Peak and current resident memory of process `pid` (or `self`).
pub fn memory_of(pid: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or("?".to_owned(), |kb| {
                format!("{:.0} MiB", kb as f64 / 1024.0)
            })
    };
    format!("RSS {} (peak {})", field("VmRSS:"), field("VmHWM:"))
}

/// The median of a finished criterion benchmark, in nanoseconds, read from
/// criterion's own output (`target/criterion/<id>/new/estimates.json`), so
/// that ratios are printed from the same run's numbers.
pub fn median_ns(id: &str) -> Option<f64> {
    let dir = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| root().join("target"), PathBuf::from)
                .join("criterion")
        });
    let text = std::fs::read_to_string(dir.join(id).join("new/estimates.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// `a / b` of two medians, or a note that one is missing (filtered out).
pub fn ratio(a: &str, b: &str) -> String {
    match (median_ns(a), median_ns(b)) {
        (Some(x), Some(y)) if y > 0.0 => {
            format!("{a} / {b} = {:.2} ({} / {})", x / y, fmt_ns(x), fmt_ns(y))
        }
        _ => format!("{a} / {b}: not measured in this run"),
    }
}

pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// For the benchmarks that go through the gateway (`gateway`, `soak`): an
/// RSA key made with `openssl` for the run, its public half written as
/// `dir/jwks.json` under key id `kid`, the bundled route map copied to
/// `dir/app.yaml` (it names `jwks.json` beside it), and the bearer token
/// of acme's ada signed with that key, valid for `valid_for`.
pub fn gateway_auth(dir: &Path, kid: &str, valid_for: std::time::Duration) -> String {
    use jsonwebtoken::jwk::{Jwk, JwkSet};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    let pem = dir.join("rsa.pem");
    let ok = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt"])
        .args(["rsa_keygen_bits:2048", "-out"])
        .arg(&pem)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs")
        .success();
    assert!(ok, "openssl genpkey failed");
    let key = EncodingKey::from_rsa_pem(&std::fs::read(&pem).unwrap()).unwrap();
    std::fs::remove_file(&pem).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    let jwks = serde_json::to_vec(&JwkSet { keys: vec![jwk] }).unwrap();
    std::fs::write(dir.join("jwks.json"), jwks).unwrap();
    std::fs::copy(root().join("routes/app.yaml"), dir.join("app.yaml")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let claims = json!({"iss": "https://auth.example.test", "aud": "doorman", "sub": "ada",
                        "company": "acme", "iat": now, "exp": now + valid_for.as_secs()});
    let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    format!("Bearer {token}")
}
