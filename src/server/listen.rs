//! Where the sidecar listens: a TCP address or a Unix domain socket.
//!
//! Sidecars often share a pod volume with the service they guard, and a
//! Unix socket there skips TCP entirely (and is protected by file
//! permissions). Both kinds hand the accept loop a byte stream; the loop is
//! generic over it, so this module only knows how to bind, accept and clean
//! up.
//!
//! A socket file left behind by a crashed server would make every restart
//! fail, so binding removes a stale one, but only after checking that no
//! live server answers on it, and only if it is a socket.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;

use tokio::net::{TcpListener, TcpStream};

/// A `--listen` value: `127.0.0.1:8700`, `[::1]:8700`, `localhost:8700` or
/// `unix:/run/doorman/doorman.sock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(String),
    Unix(PathBuf),
}

impl FromStr for ListenAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path, e.g. unix:/run/doorman/doorman.sock".into());
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        match s.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(ListenAddr::Tcp(s.to_owned()))
            }
            _ => Err(format!(
                "`{s}` is not HOST:PORT (e.g. 127.0.0.1:8700) or unix:PATH"
            )),
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => f.write_str(a),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(unix::Socket),
}

/// One accepted connection.
pub enum Accepted {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl Listener {
    pub async fn bind(addr: &ListenAddr) -> io::Result<Listener> {
        match addr {
            ListenAddr::Tcp(a) => Ok(Listener::Tcp(TcpListener::bind(a.as_str()).await?)),
            #[cfg(unix)]
            ListenAddr::Unix(path) => Ok(Listener::Unix(unix::Socket::bind(path.clone()).await?)),
            #[cfg(not(unix))]
            ListenAddr::Unix(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "Unix domain sockets are not supported on this platform",
            )),
        }
    }

    /// The address actually bound (with the real port when 0 was asked).
    pub fn local_addr(&self) -> ListenAddr {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => ListenAddr::Tcp(a.to_string()),
                Err(_) => ListenAddr::Tcp("?".into()),
            },
            #[cfg(unix)]
            Listener::Unix(s) => ListenAddr::Unix(s.path.clone()),
        }
    }

    pub async fn accept(&self) -> io::Result<Accepted> {
        match self {
            Listener::Tcp(l) => {
                let (stream, _) = l.accept().await?;
                // Answers are one small write each; Nagle would hold them
                // back waiting for the client's delayed ACK.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!("cannot set TCP_NODELAY: {e}");
                }
                Ok(Accepted::Tcp(stream))
            }
            #[cfg(unix)]
            Listener::Unix(s) => Ok(Accepted::Unix(s.listener.accept().await?.0)),
        }
    }

    /// Stops listening; a Unix socket's file is removed.
    pub async fn close(self) {
        match self {
            Listener::Tcp(l) => drop(l),
            #[cfg(unix)]
            Listener::Unix(s) => s.close().await,
        }
    }
}

#[cfg(unix)]
pub mod unix {
    use std::io;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use std::path::{Path, PathBuf};

    use tokio::net::{UnixListener, UnixStream};

    /// A listening Unix socket and the file it created.
    #[derive(Debug)]
    pub struct Socket {
        pub(super) listener: UnixListener,
        pub(super) path: PathBuf,
        /// (device, inode) of the socket file, so closing never removes a
        /// file someone else put at the same path meanwhile.
        identity: Option<(u64, u64)>,
    }

    impl Socket {
        pub(super) async fn bind(path: PathBuf) -> io::Result<Socket> {
            remove_stale(&path).await?;
            let listener = UnixListener::bind(&path)?;
            let identity = identity(&path).await;
            Ok(Socket {
                listener,
                path,
                identity,
            })
        }

        pub(super) async fn close(self) {
            drop(self.listener);
            let same = identity(&self.path).await;
            if same.is_some()
                && same == self.identity
                && let Err(e) = remove(&self.path).await
            {
                tracing::warn!("cannot remove {}: {e}", self.path.display());
            }
        }
    }

    // File operations go to the blocking pool, as everything touching the
    // file system does in this server.
    async fn metadata(path: &Path) -> io::Result<std::fs::Metadata> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || std::fs::symlink_metadata(path))
            .await
            .map_err(io::Error::other)?
    }

    async fn remove(path: &Path) -> io::Result<()> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || std::fs::remove_file(path))
            .await
            .map_err(io::Error::other)?
    }

    async fn identity(path: &Path) -> Option<(u64, u64)> {
        metadata(path).await.ok().map(|m| (m.dev(), m.ino()))
    }

    async fn remove_stale(path: &Path) -> io::Result<()> {
        let meta = match metadata(path).await {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        match UnixStream::connect(path).await {
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another server is listening on {}", path.display()),
            )),
            // Only a refused connection proves nobody listens; permission
            // denied or a full backlog may well be a live server.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                tracing::info!("removing stale socket {}", path.display());
                remove(path).await
            }
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("{} may be in use ({e}); not removing it", path.display()),
            )),
        }
    }
}
