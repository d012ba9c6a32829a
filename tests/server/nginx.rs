//! A real nginx (Debian's package) with `auth_request` in front of a tiny
//! upstream, asking doorman's `/ext/nginx` over the wire: the configuration
//! the README shows, driven with real HTTP requests.
//!
//! CI installs nginx; without it the test fails, unless
//! `DOORMAN_SKIP_NGINX=1` says to skip it (then it says so).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;

use crate::gateway::{Gateway, bad_tokens, claims};
use crate::support::*;

fn nginx_binary() -> Option<PathBuf> {
    [
        "/usr/sbin/nginx",
        "/usr/local/sbin/nginx",
        "/usr/local/nginx/sbin/nginx",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .or_else(|| {
        let out = Command::new("sh")
            .args(["-c", "command -v nginx"])
            .output()
            .ok()?;
        let path = String::from_utf8(out.stdout).ok()?;
        (!path.trim().is_empty()).then(|| PathBuf::from(path.trim()))
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx in the foreground; stopped when dropped.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn start(binary: &PathBuf, doorman: &str) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let (port, upstream) = (free_port(), free_port());
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        let d = dir.path().display();
        // Running as root, nginx would switch its workers to `nobody`,
        // who cannot write the temp dir.
        let user = if root { "user root root;" } else { "" };
        let conf = format!(
            r#"{user}
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;

  server {{
    listen 127.0.0.1:{port};
    location / {{
      auth_request /_doorman;
      auth_request_set $doorman_principal $upstream_http_x_doorman_principal;
      auth_request_set $doorman_reason $upstream_http_x_doorman_reason;
      add_header X-Doorman-Reason $doorman_reason always;
      proxy_set_header X-Doorman-Principal $doorman_principal;
      proxy_pass http://127.0.0.1:{upstream};
    }}
    location = /_doorman {{
      internal;
      proxy_pass http://{doorman}/ext/nginx;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Original-URI $request_uri;
    }}
  }}

  server {{
    listen 127.0.0.1:{upstream};
    location / {{ return 200 "upstream $http_x_doorman_principal"; }}
  }}
}}
"#
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx starts");
        let nginx = Nginx { child, dir, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not listen: {}",
                nginx.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

#[tokio::test]
async fn nginx_auth_request_in_front_of_an_upstream() {
    let Some(binary) = nginx_binary() else {
        if std::env::var("DOORMAN_SKIP_NGINX").as_deref() == Ok("1") {
            eprintln!("SKIPPED: nginx not found and DOORMAN_SKIP_NGINX=1");
            return;
        }
        panic!(
            "nginx not found: install Debian's nginx package (or set DOORMAN_SKIP_NGINX=1 to skip)"
        );
    };
    let g = Gateway::new();
    let server = LibraryServer::start(g.state()).await;
    let nginx = Nginx::start(&binary, &server.address);
    let mut c = Conn::tcp(&format!("127.0.0.1:{}", nginx.port)).await;
    let auth = |t: &str| format!("Bearer {t}");
    let ada = auth(&g.token("acme-ada"));

    // Allowed: the upstream answers, and saw the principal doorman named.
    let r = c
        .send(
            "GET",
            "/inboxes/acme-support?page=2",
            &[("authorization", &ada)],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", nginx.log());
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        r#"upstream Member::"acme-ada""#
    );
    // The original method counts: DELETE is RemoveInbox (an admin may).
    let r = c
        .send(
            "DELETE",
            "/inboxes/acme-support",
            &[("authorization", &ada)],
            None,
        )
        .await;
    assert_eq!(r.status, 200);

    // Denied by policy: nginx answers 403 itself.
    let gil = auth(&g.token("globex-gil"));
    let r = c
        .send(
            "GET",
            "/inboxes/acme-support",
            &[("authorization", &gil)],
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(!String::from_utf8_lossy(&r.body).contains("upstream"));
    // Unmatched: 403.
    let r = c
        .send("GET", "/nowhere", &[("authorization", &ada)], None)
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.header("x-doorman-reason"),
        Some("no route matches the request")
    );
    // A route that cannot be filled: 403, never the 500 a 400 would become.
    let r = c
        .send(
            "POST",
            "/companies/acme/invitations",
            &[("authorization", &ada)],
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    let r = c
        .send(
            "POST",
            "/companies/acme/invitations?role=agent",
            &[("authorization", &ada)],
            None,
        )
        .await;
    assert_eq!(r.status, 200);

    // No token, and bad ones: 401 with the challenge passed through.
    let r = c.send("GET", "/inboxes/acme-support", &[], None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let expired = g.sign(Algorithm::RS256, "rsa-1", &g.rsa, claims("acme-ada", -3600));
    let r = c
        .send(
            "GET",
            "/inboxes/acme-support",
            &[("authorization", &auth(&expired))],
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    for (name, token) in bad_tokens(&g) {
        let r = c
            .send(
                "GET",
                "/inboxes/acme-support",
                &[("authorization", &auth(&token))],
                None,
            )
            .await;
        assert_eq!(r.status, 401, "{name}");
    }
    assert!(
        !nginx.log().contains("auth request unexpected status"),
        "{}",
        nginx.log()
    );
}
