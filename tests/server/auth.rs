//! Bearer tokens: `--admin-token-file` guards the operator's endpoints,
//! `--auth-token-file` the decision endpoints, each list on its own; the
//! files are re-read while serving, and a bad one never replaces good
//! tokens.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

const ADMIN: &str = "admin-token-0123456789";
const DECIDE: &str = "decide-token-0123456789";

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write a token file");
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A GET on a fresh connection (a refused POST may cost its connection).
async fn get(server: &Process, path: &str, token: Option<&str>) -> Response {
    let auth = token.map(bearer);
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    server
        .connect()
        .await
        .send("GET", path, &headers, None)
        .await
}

async fn post(server: &Process, path: &str, token: Option<&str>) -> Response {
    let auth = token.map(bearer);
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let body = query(("Member", "ann"), "ViewInbox", ("Inbox", "support-desk")).to_string();
    server
        .connect()
        .await
        .send("POST", path, &headers, Some(body.as_bytes()))
        .await
}

fn assert_refused(r: &Response, challenge: &str) {
    assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("www-authenticate"), Some(challenge));
    assert_eq!(r.error().0, "unauthorized");
}

const MISSING: &str = r#"Bearer realm="doorman""#;
const INVALID: &str = r#"Bearer realm="doorman", error="invalid_token""#;

#[tokio::test]
async fn admin_endpoints_need_an_admin_token_and_health_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin.tokens");
    write(&file, &format!("# ops\n{ADMIN}\n"));
    let server = Process::start(&["--admin-token-file", file.to_str().unwrap()]);

    for path in ["/v1/status", "/v1/policies"] {
        assert_refused(&get(&server, path, None).await, MISSING);
        assert_refused(
            &get(&server, path, Some("wrong-token-0123456789")).await,
            INVALID,
        );
        assert_eq!(get(&server, path, Some(ADMIN)).await.status, 200, "{path}");
    }
    assert_refused(&post(&server, "/v1/reload", None).await, MISSING);
    // The method is judged only once the caller is known.
    assert_refused(&get(&server, "/v1/reload", None).await, MISSING);
    assert_eq!(post(&server, "/v1/reload", Some(ADMIN)).await.status, 200);

    for path in ["/healthz", "/readyz", "/.well-known/authzen-configuration"] {
        assert_eq!(get(&server, path, None).await.status, 200, "{path}");
    }
    // Decision endpoints are open without --auth-token-file.
    assert_eq!(post(&server, "/v1/is_authorized", None).await.status, 200);

    let status = get(&server, "/v1/status", Some(ADMIN)).await.json();
    assert_eq!(
        status["auth"],
        json!({"admin": true, "decision": false, "metrics": "open"})
    );
    assert!(!status.to_string().contains(ADMIN));
}

#[tokio::test]
async fn decision_endpoints_take_only_decision_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, decide) = (dir.path().join("admin"), dir.path().join("decide"));
    write(&admin, ADMIN);
    write(&decide, &format!("{DECIDE}\n"));
    let server = Process::start(&[
        "--admin-token-file",
        admin.to_str().unwrap(),
        "--auth-token-file",
        decide.to_str().unwrap(),
    ]);

    for path in [
        "/v1/is_authorized",
        "/v1/batch_is_authorized",
        "/access/v1/evaluation",
        "/access/v1/evaluations",
        "/access/v1/search/subject",
        "/access/v1/search/resource",
        "/access/v1/search/action",
    ] {
        assert_refused(&post(&server, path, None).await, MISSING);
        // Separate duties: an admin token does not open a decision endpoint.
        assert_refused(&post(&server, path, Some(ADMIN)).await, INVALID);
        let r = post(&server, path, Some(DECIDE)).await;
        assert_ne!(
            r.status,
            401,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    // An AuthZEN refusal still carries the request's identifier.
    let r = server
        .connect()
        .await
        .send(
            "POST",
            "/access/v1/evaluation",
            &[("X-Request-ID", "req-42")],
            Some(b"{}"),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("x-request-id"), Some("req-42"));
    // And a decision token does not open an admin endpoint.
    assert_refused(&get(&server, "/v1/status", Some(DECIDE)).await, INVALID);
    let status = get(&server, "/v1/status", Some(ADMIN)).await.json();
    assert_eq!(status["auth"]["decision"], true);
    assert_eq!(
        post(&server, "/v1/is_authorized", Some(DECIDE))
            .await
            .status,
        200
    );
    assert_eq!(
        get(&server, "/.well-known/authzen-configuration", None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn token_files_are_re_read_and_a_bad_one_keeps_the_last_good_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin.tokens");
    write(&file, ADMIN);
    let server = Process::start(&["--admin-token-file", file.to_str().unwrap()]);
    assert_eq!(get(&server, "/v1/status", Some(ADMIN)).await.status, 200);

    // Rotated: the new token opens, the old one no longer does.
    const NEXT: &str = "rotated-token-0123456789";
    let staged = dir.path().join("staged");
    write(&staged, &format!("# rotated\n{NEXT}\n"));
    std::fs::rename(&staged, &file).unwrap();
    let until = Instant::now() + PATIENCE;
    while get(&server, "/v1/status", Some(NEXT)).await.status != 200 {
        assert!(
            Instant::now() < until,
            "the rotated token was never taken:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_refused(&get(&server, "/v1/status", Some(ADMIN)).await, INVALID);

    // Broken: logged with its line, and the rotated token still works.
    write(&file, &format!("{NEXT}\nshort\n"));
    let until = Instant::now() + PATIENCE;
    while !server
        .log()
        .contains("admin.tokens:2: a token must have at least 16")
    {
        assert!(Instant::now() < until, "no error logged:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.log().contains("the last good tokens stay in force"));
    assert_eq!(get(&server, "/v1/status", Some(NEXT)).await.status, 200);

    // Gone: the same.
    std::fs::remove_file(&file).unwrap();
    tokio::time::sleep(auth_poll() * 3).await;
    assert_eq!(get(&server, "/v1/status", Some(NEXT)).await.status, 200);
    assert!(!server.log().contains(NEXT), "a token was logged");
}

fn auth_poll() -> Duration {
    doorman::server::auth::POLL
}

#[test]
fn bad_token_files_and_settings_stop_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin.tokens");
    let mut args = load_flags(&model_sources());
    args.extend(["--listen".into(), "127.0.0.1:0".into()]);
    let run = |extra: &[&str]| {
        let mut args = args.clone();
        args.extend(extra.iter().map(|s| s.to_string()));
        Process::run_to_exit(&args)
    };
    let path = file.to_str().unwrap();

    write(&file, "# nobody yet\n");
    let (status, err) = run(&["--admin-token-file", path]);
    assert!(!status.success());
    assert!(err.contains("admin.tokens: no token"), "{err}");

    write(&file, &format!("{ADMIN}\nhas space inside-0123456789\n"));
    let (status, err) = run(&["--auth-token-file", path]);
    assert!(!status.success());
    assert!(
        err.contains("admin.tokens:2: a token cannot hold whitespace"),
        "{err}"
    );

    let (status, err) = run(&["--metrics-auth", "admin"]);
    assert!(!status.success());
    assert!(
        err.contains("--metrics-auth admin needs --admin-token-file"),
        "{err}"
    );

    let (status, err) = run(&["--admin-token-file", "/no/such/file"]);
    assert!(!status.success());
    assert!(
        err.contains("/no/such/file: cannot read the token file"),
        "{err}"
    );
}
