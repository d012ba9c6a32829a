//! `GET /.well-known/authzen-configuration`: where a client finds the
//! endpoints.
//!
//! Every URL is built on the PDP identifier: `--authzen-pdp-url` when
//! given (what clients reach doorman by, behind a proxy or a Unix socket);
//! else `http://` and the address doorman listens on, when that is a
//! definite address; else (a wildcard listen address such as `0.0.0.0` is
//! no address to call, nor is a Unix socket) `http://` and the host the
//! request names. A client checks that `policy_decision_point` is the URL
//! it asked, so that is the right guess where no better one exists.
//!
//! The request's host is the request URI's authority (HTTP/2's
//! `:authority`, an absolute-form HTTP/1.1 target), else its `Host`
//! header, and is taken only when it reads as `host[:port]`: letters,
//! digits, `.` and `-`, or an IPv6 address in brackets, and a numeric
//! port. Anything else (a path, a user, quotes, spaces) is not reflected
//! into the document; the listen address is advertised instead, or
//! `http://localhost` for a Unix socket. A document derived from the
//! request carries `Cache-Control: no-store`, so no cache serves one
//! client's guess to another.
//!
//! `capabilities` lists registered capability URNs; the IANA registry has
//! none that doorman implements, and the spec says a parameter with no
//! values is left out, so it is absent.

use hyper::header::{CACHE_CONTROL, HOST, HeaderValue};
use hyper::{HeaderMap, Response, StatusCode, Uri};
use serde::Serialize;

use super::Endpoint;
use crate::server::respond::{Body, respond};
use crate::server::state::State;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AuthZenMetadata)]
pub(in crate::server) struct Metadata {
    policy_decision_point: String,
    access_evaluation_endpoint: String,
    access_evaluations_endpoint: String,
    search_subject_endpoint: String,
    search_resource_endpoint: String,
    search_action_endpoint: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    capabilities: Vec<&'static str>,
}

pub(super) fn answer(state: &State, uri: &Uri, headers: &HeaderMap) -> Response<Body> {
    let config = state.config();
    let base = match &config.pdp_url {
        Some(url) => url.clone(),
        None => {
            let named = uri.authority().map(|a| a.as_str()).or_else(|| {
                headers
                    .get(HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::trim)
            });
            match named.filter(|h| is_host_port(h)) {
                Some(host) => format!("http://{host}"),
                None => config
                    .listen
                    .as_deref()
                    .filter(|a| is_host_port(a))
                    .map_or_else(|| "http://localhost".to_owned(), |a| format!("http://{a}")),
            }
        }
    };
    let url = |e: Endpoint| format!("{base}{}", e.path());
    let mut response = respond(
        StatusCode::OK,
        &Metadata {
            access_evaluation_endpoint: url(Endpoint::Evaluation),
            access_evaluations_endpoint: url(Endpoint::Evaluations),
            search_subject_endpoint: url(Endpoint::SearchSubject),
            search_resource_endpoint: url(Endpoint::SearchResource),
            search_action_endpoint: url(Endpoint::SearchAction),
            capabilities: Vec::new(),
            policy_decision_point: base,
        },
    );
    if config.pdp_url.is_none() {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// `host[:port]` as a URL's authority may hold it, and nothing more: a
/// name or IPv4 address of letters, digits, `.` and `-`, or an IPv6
/// address in brackets; then, optionally, `:` and a port number.
fn is_host_port(text: &str) -> bool {
    if text.is_empty() || text.len() > 255 {
        return false;
    }
    let (host_ok, port) = match text.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, after)) => (
                !inside.is_empty()
                    && inside
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.'),
                match after {
                    "" => None,
                    _ => match after.strip_prefix(':') {
                        Some(port) => Some(port),
                        None => return false,
                    },
                },
            ),
            None => return false,
        },
        None => {
            let (host, port) = match text.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            };
            (
                !host.is_empty()
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
                port,
            )
        }
    };
    host_ok
        && port.is_none_or(|p| {
            !p.is_empty()
                && p.len() <= 5
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u16>().is_ok()
        })
}

/// The PDP identifier for `--authzen-pdp-url`: an `http` or `https` URL
/// with a host and no query or fragment; a trailing `/` is dropped.
pub fn parse_pdp_url(text: &str) -> Result<String, String> {
    let url = text.trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("`{text}` is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("`{text}` has no host"));
    }
    if rest.contains(['?', '#']) || rest.contains(char::is_whitespace) {
        return Err(format!("`{text}` must have no query, fragment or spaces"));
    }
    Ok(url.to_owned())
}

/// The default PDP identifier for a listen address (`127.0.0.1:8700`):
/// `None` for a wildcard address or a Unix socket.
pub fn pdp_url_of(listen: &str) -> Option<String> {
    let addr: std::net::SocketAddr = listen.parse().ok()?;
    (!addr.ip().is_unspecified()).then(|| format!("http://{addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdp_urls_are_checked_and_derived() {
        assert_eq!(
            parse_pdp_url("https://pdp.example.com/").as_deref(),
            Ok("https://pdp.example.com")
        );
        assert_eq!(
            parse_pdp_url("http://10.0.0.1:8700/authz").as_deref(),
            Ok("http://10.0.0.1:8700/authz")
        );
        for bad in [
            "pdp.example.com",
            "ftp://x",
            "https://",
            "https://x?y=1",
            "https://x#f",
        ] {
            assert!(parse_pdp_url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            pdp_url_of("127.0.0.1:8700").as_deref(),
            Some("http://127.0.0.1:8700")
        );
        assert_eq!(pdp_url_of("[::1]:80").as_deref(), Some("http://[::1]:80"));
        assert_eq!(pdp_url_of("0.0.0.0:8700"), None);
        assert_eq!(pdp_url_of("unix:/run/d.sock"), None);
    }

    #[test]
    fn only_a_host_and_port_is_taken_from_a_request() {
        for good in [
            "doorman",
            "pdp.example.com:8443",
            "10.0.0.1:80",
            "[::1]",
            "[::1]:8700",
            "[::ffff:10.0.0.1]:1",
            "0.0.0.0:65535",
            "Pdp-1.Example",
        ] {
            assert!(is_host_port(good), "{good}");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            ":80",
            "evil.example/phish",
            "evil.example/",
            "user@evil.example",
            "a\"b",
            "a b",
            "host:",
            "host:http",
            "host:65536",
            "host:1:2",
            "[::1",
            "[]:80",
            "[::1]x",
            "[::1]:",
            "[g::1]",
            "x<script>",
            "evil.example?x=1",
            "evil.example#f",
            "evil_host",
            "unix:/run/d.sock",
            long.as_str(),
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }
}
