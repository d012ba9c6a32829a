//! Integration tests of `doorman serve`: the real binary (and, where a test
//! must hold the state or shorten a timeout, the library server) on an
//! ephemeral port, spoken to over HTTP.
//!
//! `postgres` starts real PostgreSQL clusters (`pg`): CI installs Debian's
//! `postgresql` package.
//!
//! One test binary with modules rather than one file per area, so the
//! helpers in `support` are compiled once and linking happens once.

#[path = "../common/mod.rs"]
mod common;

mod api;
mod auth;
mod authzen;
mod fixtures;
mod gateway;
mod lifecycle;
mod nginx;
mod observe;
mod openapi;
mod pg;
mod postgres;
mod reload;
mod shadow;
mod support;
