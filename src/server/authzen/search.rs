//! `POST /access/v1/search/subject`, `/search/resource` and `/search/action`.
//!
//! A search reads like an evaluation whose searched part has only a type
//! (its `id` and `properties` are ignored, as AuthZEN says; an action
//! search has no action), and is answered by the library's
//! [`Snapshot::search`] on one snapshot. The answer is
//! `{"results": [...]}`, with a `page` object first when the request
//! carried one or when the search goes on (`next_token` is `""` on the
//! last page). A page holds at most `page.limit` results (at least 1, at
//! most [`PAGE`]) and decides at most [`BUDGET`] candidates, so no request
//! costs more than a bounded amount whatever it asks: a page cut short by
//! the budget may hold fewer results than asked, or none, and still have a
//! `next_token`.
//!
//! An unknown searched type, even one no Cedar type could be, has no
//! entities: `{"results": []}`, never a 400; so has a given type the
//! action does not take (AuthZEN asks for empty results, not errors, for
//! unknown types). The input parts (the other entity, the action, the
//! context) are otherwise read and mapped exactly as for an evaluation, so
//! what an evaluation refuses about them (a malformed type name, an
//! unknown action, a context the action does not take) a search refuses.

use std::num::{NonZeroU32, NonZeroUsize};

use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::question::{self, Question, Resolved, Verb};
use super::read::{self, Action, Entity, Id};
use super::token::{Binding, Token};
use crate::decide::uid_from_parts;
use crate::entity_json::{Fields, Json};
use crate::search::{Cursor, Searched};
use crate::server::admin::not_ready;
use crate::server::error::{ApiError, Code};
use crate::server::respond::{Body, refuse, respond};
use crate::server::state::State;
use crate::snapshot::Snapshot;

/// Results per page when the request gives no `page.limit`, and the most
/// a page holds whatever it asks.
pub(super) const PAGE: NonZeroU32 = NonZeroU32::new(1000).unwrap();

/// Candidates decided per page at most. A search the forbids cannot narrow
/// (input entities with `properties`, a model without a tenant rule)
/// decides candidates until it has a page of allowed ones, which on a
/// large store where few are allowed is every entity of the type: 1.1 s
/// per 100,000 Members with the bundled model (docs/performance.md, the
/// search deciding every Member). At about 11 µs a decision, a page costs
/// at most about 0.2 s; a page that runs out answers what it found
/// (perhaps nothing) with a `next_token` that goes on after the last
/// candidate decided. A search narrowed to a tenant decides that tenant's
/// entities only and rarely comes near it.
pub(super) const BUDGET: NonZeroUsize = NonZeroUsize::new(20_000).unwrap();

/// What an endpoint searches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Subject,
    Resource,
    Action,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Subject => "subject",
            Kind::Resource => "resource",
            Kind::Action => "action",
        }
    }
}

pub(crate) fn answer(state: &State, kind: Kind, body: &Bytes) -> Response<Body> {
    let answer = read::body(body).and_then(|json| {
        let top = read::object(&json, "")?;
        let snapshot = state.snapshot().ok_or_else(|| not_ready(state))?;
        search(&snapshot, kind, top)
    });
    answer.unwrap_or_else(|e| refuse(&e))
}

fn search(snapshot: &Snapshot, kind: Kind, top: &Fields<'_>) -> Result<Response<Body>, ApiError> {
    let part = |name: &str| read::get(top, name).ok_or_else(|| read::required("", name));
    let id = |searched: bool| if searched { Id::Ignored } else { Id::Required };
    let subject = read::entity(
        part("subject")?,
        "subject".into(),
        id(kind == Kind::Subject),
    )?;
    let resource = read::entity(
        part("resource")?,
        "resource".into(),
        id(kind == Kind::Resource),
    )?;
    let action = match kind {
        Kind::Action => None,
        _ => Some(read::action(part("action")?, "action".into())?),
    };
    let context = read::get(top, "context")
        .map(|c| read::context(c, "context".into()))
        .transpose()?;
    let page = Page::read(top, kind)?;

    let searched = match kind {
        Kind::Subject => Searched::Principal,
        Kind::Resource => Searched::Resource,
        Kind::Action => Searched::Action,
    };
    // A searched type no Cedar type can be has no entities.
    let unnameable = |e: &Entity<'_>| uid_from_parts(e.ty, "").is_err();
    if (kind == Kind::Subject && unnameable(&subject))
        || (kind == Kind::Resource && unnameable(&resource))
    {
        return Ok(page.answer(Vec::new(), None));
    }
    let input = |e: &Entity<'_>, searched: bool| -> Result<Resolved, ApiError> {
        // The searched entity's properties are ignored with its id.
        let e = Entity {
            properties: if searched { None } else { e.properties },
            ..e.clone()
        };
        question::entity(snapshot, &e)
    };
    let subject = input(&subject, kind == Kind::Subject)?;
    let resource = input(&resource, kind == Kind::Resource)?;
    let verb = match &action {
        Some(a) => question::action(snapshot, a)?,
        // The action is what varies; the question needs one to be built.
        None => Verb {
            uid: uid_from_parts("Action", "").map_err(|m| ApiError::new(Code::Internal, m))?,
            sent: Action {
                name: "",
                properties: None,
                path: "action".into(),
            },
        },
    };
    let question = Question::new(&subject, &verb, &resource, context.as_ref())?;
    let found = snapshot
        .search(
            searched,
            &question.query,
            &question.layers(),
            page.cursor.as_ref(),
            NonZeroUsize::try_from(page.limit).unwrap_or(NonZeroUsize::MIN),
            BUDGET,
        )
        .map_err(|e| question.refused(e))?;
    let results = found
        .results
        .iter()
        .map(|uid| match kind {
            Kind::Action => Found::Action {
                name: uid.id().unescaped().to_owned(),
            },
            _ => Found::Entity {
                ty: uid.type_name().to_string(),
                id: uid.id().unescaped().to_owned(),
            },
        })
        .collect();
    Ok(page.answer(results, found.next))
}

/// The request's `page`, with its token read and checked.
struct Page<'j> {
    /// Whether the request had a `page` object (then the answer has one).
    asked: bool,
    limit: NonZeroU32,
    cursor: Option<Cursor>,
    /// The request, for binding a token to it: only when one is read or
    /// issued (most searches are answered in one page and need neither).
    request: &'j Fields<'j>,
    kind: Kind,
    /// Its binding, once a token has needed it.
    binding: Option<Binding>,
}

impl<'j> Page<'j> {
    fn read(top: &'j Fields<'j>, kind: Kind) -> Result<Page<'j>, ApiError> {
        let Some(page) = read::get(top, "page") else {
            return Ok(Page {
                asked: false,
                limit: PAGE,
                cursor: None,
                request: top,
                kind,
                binding: None,
            });
        };
        let page = read::object(page, "page")?;
        let limit = match read::get(page, "limit") {
            None => None,
            // A page of none would never move: its token would be the
            // place it started from.
            Some(Json::Int(0)) => {
                return Err(ApiError::at(
                    Code::InvalidField,
                    "page.limit",
                    "must be at least 1: a page of 0 results never advances",
                ));
            }
            Some(Json::Int(n)) if *n > 0 => Some(
                u32::try_from(*n)
                    .ok()
                    .and_then(NonZeroU32::new)
                    .unwrap_or(NonZeroU32::MAX),
            ),
            Some(other) => {
                return Err(ApiError::at(
                    Code::InvalidField,
                    "page.limit",
                    format!("must be a positive integer, not {}", describe(other)),
                ));
            }
        };
        let mut binding = None;
        let (limit, cursor) = match read::string(page, "token", "page")?.filter(|t| !t.is_empty()) {
            None => (limit.unwrap_or(PAGE), None),
            Some(text) => {
                let token = Token::decode(text).ok_or_else(|| {
                    ApiError::at(
                        Code::InvalidField,
                        "page.token",
                        "is not a token this server issued",
                    )
                })?;
                let request = bind(top, kind);
                binding = Some(request);
                if token.binding != request {
                    return Err(ApiError::at(
                        Code::InvalidField,
                        "page.token",
                        "belongs to another request: a follow-up must repeat the request that \
                         gave the token (subject, action, resource and context)",
                    ));
                }
                if limit.is_some_and(|l| l.min(PAGE) != token.limit) {
                    return Err(ApiError::at(
                        Code::InvalidField,
                        "page.limit",
                        format!(
                            "differs from the limit the token was issued for ({})",
                            token.limit
                        ),
                    ));
                }
                (token.limit, Some(token.cursor))
            }
        };
        Ok(Page {
            asked: true,
            limit: limit.min(PAGE),
            cursor,
            request: top,
            kind,
            binding,
        })
    }

    fn answer(&self, results: Vec<Found>, next: Option<Cursor>) -> Response<Body> {
        let page = (self.asked || next.is_some()).then(|| PageOut {
            next_token: next.map_or_else(String::new, |cursor| {
                Token {
                    binding: self
                        .binding
                        .unwrap_or_else(|| bind(self.request, self.kind)),
                    limit: self.limit,
                    cursor,
                }
                .encode()
            }),
            count: results.len(),
        });
        respond(StatusCode::OK, &Answer { page, results })
    }
}

/// What a token is bound to: the endpoint and the request's parts.
fn bind(request: &Fields<'_>, kind: Kind) -> Binding {
    Binding::of(
        kind.name(),
        &["subject", "action", "resource", "context"].map(|n| (n, read::get(request, n))),
    )
}

fn describe(value: &Json<'_>) -> String {
    match value {
        Json::Int(n) => format!("{n}"),
        other => read::kind(other).to_owned(),
    }
}

// ------------------------------------------------------------------ out

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AuthZenSearchResults)]
pub(in crate::server) struct Answer {
    // First, as the spec recommends, so a client can show progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<PageOut>,
    results: Vec<Found>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AuthZenPageOut)]
struct PageOut {
    next_token: String,
    count: usize,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(as = AuthZenFound)]
enum Found {
    Entity {
        #[serde(rename = "type")]
        ty: String,
        id: String,
    },
    Action {
        name: String,
    },
}
