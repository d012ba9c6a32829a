//! Command-line pieces shared by every subcommand.
//!
//! Every command that needs a snapshot takes the same loading flags; keeping
//! them in one `clap::Args` struct means `check`, `authorize`, `test` and
//! `serve` cannot drift apart. With no flags the bundled model is used, so
//! every command works straight after a clone.
//!
//! Every flag of every command also reads an environment variable named
//! after it: `--foo-bar` is `DOORMAN_FOO_BAR` (clap's `env`, listed in
//! `--help`). A flag added later follows the same rule.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::load::{DatabaseSource, LoadError, Sources};
use crate::snapshot::{Snapshot, ValidationMode};

/// Where the policies, schema and entities come from.
///
/// Every flag can also be set from the environment: `--foo-bar` is
/// `DOORMAN_FOO_BAR` (the flag wins when both are given), so a container
/// is configured without a wrapper script.
///
/// With no flags the bundled model is used. Once `--policies` names the
/// policies, the bundled schema and entities no longer apply: a missing
/// `--schema` means no schema (and then validation `off`), a missing
/// `--entities` no entities, rather than a silent mix of the caller's
/// policies with the bundled example's files.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Directory read recursively for *.cedar policy files
    /// [default: policies].
    #[arg(long, value_name = "DIR", env = "DOORMAN_POLICIES")]
    pub policies: Option<PathBuf>,
    /// A *.cedarschema / *.cedarschema.json file or a directory of them;
    /// `none` for no schema [default: schema, or none when --policies is
    /// given].
    #[arg(long, value_name = "PATH", env = "DOORMAN_SCHEMA")]
    pub schema: Option<PathBuf>,
    /// Entity files (*.json, *.yaml) or directories, or a PostgreSQL
    /// database (postgres://user@host/db, see the README); repeat, or
    /// separate with `;`, for several [default: fixtures/entities, or none
    /// when --policies is given].
    #[arg(long, value_name = "PATH|URL", env = "DOORMAN_ENTITIES", value_delimiter = ';', value_parser = parse_entities)]
    pub entities: Vec<EntitiesArg>,
    /// strict, permissive or off [default: strict with a schema, off
    /// without one].
    #[arg(long, value_name = "MODE", env = "DOORMAN_VALIDATION", value_parser = parse_mode)]
    pub validation: Option<ValidationMode>,
    /// A gateway route map (YAML; see the README's "Gateway mode"),
    /// checked against the schema and loaded with the policies.
    #[arg(long, value_name = "FILE", env = "DOORMAN_ROUTES")]
    pub routes: Option<PathBuf>,
}

fn parse_mode(s: &str) -> Result<ValidationMode, String> {
    s.parse()
}

/// One `--entities` value: files, or a database.
#[derive(Debug, Clone)]
pub enum EntitiesArg {
    Path(PathBuf),
    Database(Box<DatabaseSource>),
}

fn parse_entities(s: &str) -> Result<EntitiesArg, String> {
    if DatabaseSource::is_url(s) {
        DatabaseSource::parse(s).map(|d| EntitiesArg::Database(Box::new(d)))
    } else {
        Ok(EntitiesArg::Path(PathBuf::from(s)))
    }
}

impl LoadArgs {
    /// The sources the flags name, with the defaults filled in: the
    /// bundled model's paths only when `--policies` is not given.
    pub fn sources(&self) -> Sources {
        let bundled = self.policies.is_none();
        let schema = match &self.schema {
            Some(s) if s.as_os_str() == "none" => None,
            Some(s) => Some(s.clone()),
            None => bundled.then(|| PathBuf::from("schema")),
        };
        let default_entities = [EntitiesArg::Path(PathBuf::from("fixtures/entities"))];
        let named = if self.entities.is_empty() && bundled {
            &default_entities[..]
        } else {
            &self.entities[..]
        };
        // An explicit mode without a schema is kept: loading then says
        // plainly that it needs one.
        let validation = self.validation.unwrap_or(if schema.is_some() {
            ValidationMode::Strict
        } else {
            ValidationMode::Off
        });
        let (mut entities, mut databases) = (Vec::new(), Vec::new());
        for e in named {
            match e {
                EntitiesArg::Path(p) => entities.push(p.clone()),
                EntitiesArg::Database(d) => databases.push((**d).clone()),
            }
        }
        Sources {
            policies: self.policies.clone().unwrap_or_else(|| "policies".into()),
            schema,
            entities,
            databases,
            validation,
            routes: self.routes.clone(),
        }
    }

    /// Loads the files and reads every database source in full: what the
    /// one-shot commands (`check`, `authorize`, `test`) answer from. A
    /// database row that is refused is an error here, as a bad entity in a
    /// file is.
    pub fn load(&self) -> Result<Snapshot, LoadError> {
        let sources = self.sources();
        let snapshot = crate::load::load(&sources)?;
        crate::postgres::read_blocking(snapshot, &sources.databases)
    }
}

/// Output format for commands that print results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}
