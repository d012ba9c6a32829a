//! `GET /.well-known/authzen-configuration`: where a client finds the
//! endpoints.
//!
//! Every URL is built on the PDP identifier: `--authzen-pdp-url` when
//! given (what clients reach doorman by, behind a proxy or a Unix socket);
//! else `http://` and the address doorman listens on, when that is a
//! definite address; else `http://` and the request's `Host` header (a
//! wildcard listen address such as `0.0.0.0` is no address to call). A
//! client checks that `policy_decision_point` is the URL it asked, so the
//! Host header is the right guess where no better one exists.
//!
//! `capabilities` lists registered capability URNs; the IANA registry has
//! none that doorman implements, and the spec says a parameter with no
//! values is left out, so it is absent.

use hyper::header::HOST;
use hyper::{HeaderMap, Response, StatusCode};
use serde::Serialize;

use super::Endpoint;
use crate::server::respond::{Body, respond};
use crate::server::state::State;

#[derive(Debug, Serialize)]
struct Metadata {
    policy_decision_point: String,
    access_evaluation_endpoint: String,
    access_evaluations_endpoint: String,
    search_subject_endpoint: String,
    search_resource_endpoint: String,
    search_action_endpoint: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    capabilities: Vec<&'static str>,
}

pub(super) fn answer(state: &State, headers: &HeaderMap) -> Response<Body> {
    let base = match &state.config().pdp_url {
        Some(url) => url.clone(),
        None => {
            let host = headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| !h.is_empty())
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    };
    let url = |e: Endpoint| format!("{base}{}", e.path());
    respond(
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
    )
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
}
