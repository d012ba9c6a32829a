//! Command-line pieces shared by every subcommand.
//!
//! Every command that needs a snapshot takes the same loading flags; keeping
//! them in one `clap::Args` struct means `check`, `authorize`, `test` and
//! `serve` cannot drift apart. With no flags the bundled model is used, so
//! every command works straight after a clone.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::load::{DatabaseSource, LoadError, Sources};
use crate::snapshot::{Snapshot, ValidationMode};

/// Where the policies, schema and entities come from.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Directory read recursively for *.cedar policy files.
    #[arg(long, value_name = "DIR", default_value = "policies")]
    pub policies: PathBuf,
    /// A *.cedarschema / *.cedarschema.json file or a directory of them
    /// (`none` to run without a schema, which needs --validation off).
    #[arg(long, value_name = "PATH", default_value = "schema")]
    pub schema: PathBuf,
    /// Entity files (*.json, *.yaml) or directories, or a PostgreSQL
    /// database (postgres://user@host/db, see the README); repeat for
    /// several.
    #[arg(long, value_name = "PATH|URL", default_value = "fixtures/entities", value_parser = parse_entities)]
    pub entities: Vec<EntitiesArg>,
    /// strict, permissive or off.
    #[arg(long, value_name = "MODE", default_value = "strict", value_parser = parse_mode)]
    pub validation: ValidationMode,
    /// A gateway route map (YAML; see the README's "Gateway mode"),
    /// checked against the schema and loaded with the policies.
    #[arg(long, value_name = "FILE")]
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
    pub fn sources(&self) -> Sources {
        let (mut entities, mut databases) = (Vec::new(), Vec::new());
        for e in &self.entities {
            match e {
                EntitiesArg::Path(p) => entities.push(p.clone()),
                EntitiesArg::Database(d) => databases.push((**d).clone()),
            }
        }
        Sources {
            policies: self.policies.clone(),
            schema: (self.schema.as_os_str() != "none").then(|| self.schema.clone()),
            entities,
            databases,
            validation: self.validation,
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
