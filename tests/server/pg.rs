//! A throwaway PostgreSQL cluster: `initdb` into a temporary directory,
//! `pg_ctl start` on a free loopback port, stopped (immediately) when
//! dropped. As root, the cluster runs as the `postgres` user, since
//! PostgreSQL refuses to run as root. Also used by `benches/postgres.rs`.
//!
//! The server binaries come from `pg_config --bindir`, else the newest
//! `/usr/lib/postgresql/*/bin` (Debian's layout), else `PATH`; CI installs
//! Debian's `postgresql` package.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running cluster with a `doorman` superuser that needs no password.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Who runs the server processes (`None`: this user).
    owner: Option<&'static str>,
    pub port: u16,
    /// With TLS: the server's settings for it.
    tls: Option<String>,
}

impl Cluster {
    pub fn start() -> Cluster {
        Cluster::start_with(false)
    }

    /// A cluster that also speaks TLS, with a certificate for 127.0.0.1
    /// from a throwaway CA ([`Cluster::ca`]).
    pub fn start_tls() -> Cluster {
        Cluster::start_with(true)
    }

    /// The CA certificate (PEM) of a [`Cluster::start_tls`] cluster.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn start_with(tls: bool) -> Cluster {
        let bin = bindir();
        let dir = tempfile::tempdir().expect("temp dir");
        let owner = running_as_root().then_some("postgres");
        if let Some(user) = owner {
            // The cluster's user must reach its directory.
            run(Command::new("chmod").arg("755").arg(dir.path()));
            run(Command::new("chown").arg(user).arg(dir.path()));
        }
        let tls = tls.then(|| {
            let d = dir.path();
            std::fs::write(d.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
            let openssl = |args: &str| run(Command::new("openssl").args(args.split(' ')).current_dir(d));
            openssl("req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=doorman-test-ca");
            openssl("req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1");
            openssl("x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext");
            run(Command::new("chmod").arg("600").arg(d.join("server.key")));
            if let Some(user) = owner {
                run(Command::new("chown").arg(user).arg(d.join("server.key")).arg(d.join("server.crt")));
            }
            format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                d.join("server.crt").display(),
                d.join("server.key").display()
            )
        });
        let cluster = Cluster {
            bin,
            owner,
            port: free_port(),
            dir,
            tls,
        };
        let data = cluster.data();
        run(cluster
            .command("initdb")
            .args([
                "-U",
                "doorman",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data));
        cluster.start_again();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.owner {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    /// Starts the (stopped) cluster again on the same port.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k '' -c listen_addresses=127.0.0.1 -c shared_buffers=32MB \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off{}",
            self.port,
            self.tls.as_deref().unwrap_or("")
        );
        run(self
            .command("pg_ctl")
            .args(["-w", "-t", "60", "-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .arg("-D")
            .arg(self.data())
            .arg("start"));
    }

    /// Stops the cluster (closing every connection), keeping its data.
    pub fn stop(&self) {
        run(self
            .command("pg_ctl")
            .args(["-w", "-m", "fast", "-D"])
            .arg(self.data())
            .arg("stop"));
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://doorman@127.0.0.1:{}/{database}", self.port)
    }

    /// A client connection to `database`.
    pub async fn connect(&self, database: &str) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.url(database), tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("connect to {database}: {e}"));
        tokio::spawn(connection);
        client
    }

    /// Creates `database`, running each of `scripts` in it.
    pub async fn create(&self, database: &str, scripts: &[&str]) {
        self.connect("postgres")
            .await
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .expect("create database");
        let client = self.connect(database).await;
        for script in scripts {
            client
                .batch_execute(script)
                .await
                .unwrap_or_else(|e| panic!("{e:?}"));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(self.data())
            .arg("stop")
            .output();
    }
}

/// The repository's SQL file `name` (under `sql/`).
pub fn sql(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn bindir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|d| d.join("initdb").exists());
    versions.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    versions.pop().unwrap_or_else(|| {
        let on_path = Command::new("sh")
            .args(["-c", "command -v initdb"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        on_path
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .expect("PostgreSQL's server programs (initdb): install Debian's postgresql package")
    })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
