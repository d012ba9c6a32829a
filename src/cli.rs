//! Command-line pieces shared by every subcommand.
//!
//! Every command that needs a snapshot takes the same loading flags; keeping
//! them in one `clap::Args` struct means `check`, `authorize`, `test` and
//! `serve` cannot drift apart. With no flags the bundled model is used, so
//! every command works straight after a clone.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::load::Sources;
use crate::snapshot::ValidationMode;

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
    /// Entity files (*.json, *.yaml) or directories; repeat for several.
    #[arg(long, value_name = "PATH", default_value = "fixtures/entities")]
    pub entities: Vec<PathBuf>,
    /// strict, permissive or off.
    #[arg(long, value_name = "MODE", default_value = "strict", value_parser = parse_mode)]
    pub validation: ValidationMode,
}

fn parse_mode(s: &str) -> Result<ValidationMode, String> {
    s.parse()
}

impl LoadArgs {
    pub fn sources(&self) -> Sources {
        Sources {
            policies: self.policies.clone(),
            schema: (self.schema.as_os_str() != "none").then(|| self.schema.clone()),
            entities: self.entities.clone(),
            validation: self.validation,
        }
    }
}

/// Output format for commands that print results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}
