//! What the server tests share: a raw HTTP/1.1 client, the real binary
//! started on an ephemeral port, and the library server for tests that need
//! to control its state or its timeouts.
//!
//! The client is a few dozen lines over a socket instead of an HTTP client
//! crate on purpose: the bad-input tests must send what no well-behaved
//! client would (half a request, a lying Content-Length), and read exactly
//! what came back.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use doorman::server::{Config, Listener, State};
use doorman::{Snapshot, Sources, ValidationMode};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The tests' own model (tests/data/server).
pub fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/server")
}

pub fn model_sources() -> Sources {
    let root = model_dir();
    Sources {
        policies: root.join("policies"),
        schema: Some(root.join("schema")),
        entities: vec![root.join("entities")],
        databases: vec![],
        validation: ValidationMode::Strict,
        routes: None,
    }
}

pub fn model_snapshot() -> Snapshot {
    doorman::load(&model_sources()).expect("the test model loads")
}

/// The loading flags for `sources`.
pub fn load_flags(sources: &Sources) -> Vec<String> {
    let mut flags = vec![
        "--policies".to_owned(),
        sources.policies.display().to_string(),
        "--schema".to_owned(),
        sources
            .schema
            .as_ref()
            .map_or("none".to_owned(), |s| s.display().to_string()),
    ];
    for e in &sources.entities {
        flags.push("--entities".to_owned());
        flags.push(e.display().to_string());
    }
    flags
}

// ------------------------------------------------------------ the binary

/// `doorman serve` as a child process; killed when dropped.
pub struct Process {
    child: Child,
    /// The address from the start line: `127.0.0.1:PORT` or `unix:PATH`.
    pub address: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts the binary over the test model, listening on an ephemeral
    /// port unless `extra` says otherwise, and waits until it is serving.
    pub fn start(extra: &[&str]) -> Process {
        let mut args = load_flags(&model_sources());
        args.extend(extra.iter().map(|s| s.to_string()));
        Process::start_with(&args)
    }

    pub fn start_with(args: &[String]) -> Process {
        Process::start_until(args, " serving ")
    }

    /// Starts the binary and waits for a log line holding `marker` (such as
    /// `" listening"`, before the model has loaded).
    pub fn start_until(args: &[String], marker: &str) -> Process {
        Process::start_logging(args, marker, "info")
    }

    /// Starts the binary with `RUST_LOG=rust_log` and waits for `marker`.
    pub fn start_logging(args: &[String], marker: &str, rust_log: &str) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_doorman"));
        command.arg("serve");
        if !args.iter().any(|a| a == "--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        command
            .args(args)
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start doorman serve");
        let stderr = child.stderr.take().expect("stderr is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let lines = lines.clone();
            let marker = marker.to_owned();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains(&marker) {
                        let _ = tx.send(line.clone());
                    }
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let mut process = Process {
            child,
            address: String::new(),
            lines,
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => process.address = field(&line, "address").expect("address= in start line"),
            Err(_) => panic!("doorman serve did not log `{marker}`:\n{}", process.log()),
        }
        process
    }

    /// Starts the binary and expects it to exit on its own.
    pub fn run_to_exit(args: &[String]) -> (ExitStatus, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_doorman"))
            .arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run doorman serve");
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// How many of the process's threads are named `name` now (Linux's
    /// /proc/PID/task/*/comm).
    pub fn threads(&self, name: &str) -> usize {
        let tasks = format!("/proc/{}/task", self.child.id());
        std::fs::read_dir(tasks)
            .expect("the server's /proc/PID/task")
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim_end() == name)
            .count()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit by itself.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let until = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > until {
                panic!(
                    "doorman serve still running after {limit:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub async fn connect(&self) -> Conn<TcpStream> {
        Conn::tcp(&self.address).await
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `key=value` from a log line.
pub fn field(line: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&prefix))
        .map(|v| v.trim_matches('"').to_owned())
}

// --------------------------------------------------------- the library

/// The library server on an ephemeral port, with a state the test holds.
pub struct LibraryServer {
    pub address: String,
    pub state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<()>,
}

impl LibraryServer {
    pub async fn start(state: State) -> LibraryServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("local addr").to_string();
        let state = Arc::new(state);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(doorman::server::serve(
            Listener::Tcp(listener),
            state.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        LibraryServer {
            address,
            state,
            stop: Some(stop),
            task,
        }
    }

    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn connect(&self) -> Conn<TcpStream> {
        Conn::tcp(&self.address).await
    }
}

pub fn config(read_timeout: Duration, shutdown_timeout: Duration) -> Config {
    Config {
        read_timeout,
        shutdown_timeout,
        ..Config::default()
    }
}

// ------------------------------------------------------------ the client

/// Every wait in the client is bounded, so a server bug fails a test
/// instead of hanging it.
pub const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `(code, field)` of an error answer.
    pub fn error(&self) -> (String, Option<String>) {
        let json = self.json();
        let error = &json["error"];
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error without a message: {json}"
        );
        (
            error["code"].as_str().unwrap_or_default().to_owned(),
            error["field"].as_str().map(str::to_owned),
        )
    }
}

/// One client connection (HTTP/1.1, keep-alive).
pub struct Conn<S> {
    pub stream: S,
    buf: Vec<u8>,
}

impl Conn<TcpStream> {
    pub async fn tcp(address: &str) -> Self {
        let stream = tokio::time::timeout(PATIENCE, TcpStream::connect(address))
            .await
            .expect("connect in time")
            .expect("connect");
        Conn::new(stream)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(stream: S) -> Self {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Response {
        self.request("GET", path, None).await
    }

    pub async fn post(&mut self, path: &str, body: &Value) -> Response {
        self.post_raw(path, body.to_string().as_bytes()).await
    }

    pub async fn post_raw(&mut self, path: &str, body: &[u8]) -> Response {
        self.request("POST", path, Some(body)).await
    }

    pub async fn request(&mut self, method: &str, path: &str, body: Option<&[u8]>) -> Response {
        self.send(method, path, &[], body).await
    }

    /// A request with extra `headers`; a body is sent as JSON unless
    /// `headers` name another Content-Type (or `Content-Type: -` for none).
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: doorman\r\n");
        let typed = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        for (k, v) in headers {
            if !(k.eq_ignore_ascii_case("content-type") && *v == "-") {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        if let Some(body) = body {
            if !typed {
                head.push_str("Content-Type: application/json\r\n");
            }
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.unwrap_or_default());
        self.write(&bytes).await;
        self.read_response()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: no response: {e}"))
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        tokio::time::timeout(PATIENCE, self.stream.write_all(bytes))
            .await
            .expect("write in time")
            .expect("write");
    }

    /// Reads one response; an error when the server closed the connection
    /// (or sent something that is not HTTP).
    pub async fn read_response(&mut self) -> Result<Response, String> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line `{status_line}`"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .ok_or("response without content-length")?;
        self.buf.drain(..head_end + 4);
        while self.buf.len() < length {
            self.fill().await?;
        }
        let body = self.buf.drain(..length).collect();
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// True once the server has closed the connection (reads give EOF or
    /// a reset) within `limit`.
    pub async fn closed_within(&mut self, limit: Duration) -> bool {
        let mut scratch = [0u8; 1024];
        let until = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(until, self.stream.read(&mut scratch)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
            }
        }
    }

    async fn fill(&mut self) -> Result<(), String> {
        let mut scratch = [0u8; 16 * 1024];
        let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut scratch))
            .await
            .map_err(|_| "timed out waiting for the server".to_owned())?
            .map_err(|e| format!("read failed: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        self.buf.extend_from_slice(&scratch[..n]);
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A query body in the object form.
pub fn query(principal: (&str, &str), action: &str, resource: (&str, &str)) -> Value {
    serde_json::json!({
        "principal": {"type": principal.0, "id": principal.1},
        "action": {"type": "Action", "id": action},
        "resource": {"type": resource.0, "id": resource.1},
    })
}

/// `(decision, reasons)` of an answer.
pub fn verdict(answer: &Value) -> (String, Vec<String>) {
    let decision = answer["decision"]
        .as_str()
        .unwrap_or_else(|| panic!("no decision in {answer}"))
        .to_owned();
    let reasons = answer["reasons"]
        .as_array()
        .unwrap_or_else(|| panic!("no reasons in {answer}"))
        .iter()
        .map(|r| r.as_str().unwrap_or_default().to_owned())
        .collect();
    (decision, reasons)
}

pub fn allow(reasons: &[&str]) -> (String, Vec<String>) {
    (
        "allow".into(),
        reasons.iter().map(|r| r.to_string()).collect(),
    )
}

pub fn deny(reasons: &[&str]) -> (String, Vec<String>) {
    (
        "deny".into(),
        reasons.iter().map(|r| r.to_string()).collect(),
    )
}
