//! Test files → suites of flat cases.
//!
//! Two formats come in and one shape goes out, so the runner and the reports
//! never care where a case came from:
//!
//! - doorman suites (`*.test.yaml`): named cases plus role matrices. Every
//!   struct denies unknown fields, so `expcet: deny` is a file:line error
//!   instead of a case that silently expects nothing. A matrix row is
//!   expanded here into one case per principal, the ones not under `allow`
//!   expecting deny, which is the whole point of writing a matrix.
//! - Cedar CLI test files (`cedar run-tests`): a JSON array of
//!   `{name?, request, entities, decision, reason, num_errors}`. Cedar's
//!   semantics are kept so existing files pass or fail exactly as they do
//!   there: `reason` must be a subset of the determining policies, and
//!   `num_errors` (optional here) must match. `entities` is either inline
//!   entity JSON or a path relative to the test file; either way it replaces
//!   the `--entities` world, as in Cedar.
//!
//! Entity references are kept as the strings the user wrote and parsed only
//! when the case runs: a malformed `principal:` then fails that one case,
//! with its name and line, while every other case still runs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::diag::Diagnostic;
use crate::load::{list_files, yaml_diagnostic};

/// One test file, read and expanded.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The file, as found (relative paths stay relative, for messages).
    pub file: PathBuf,
    pub name: String,
    pub kind: Kind,
    pub cases: Vec<Case>,
}

/// Which format a suite was written in; it decides how `reasons` compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Doorman,
    Cedar,
}

/// One authorization question with its expected answer.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    /// Free-form tag, normally the rule book ID (`R12`).
    pub rule: Option<String>,
    /// 1-based line of the case (or matrix row) in its file; 0 if unknown.
    pub line: usize,
    pub principal: String,
    pub action: String,
    pub resource: String,
    pub context: Value,
    pub expect: Expect,
    pub reasons: Option<Reasons>,
    /// Cedar test files only: the exact number of evaluation errors.
    pub num_errors: Option<usize>,
    /// Why the case is not run, when it is skipped.
    pub skip: Option<String>,
    pub world: World,
}

/// The expected outcome of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Allow,
    Deny,
    /// The request is invalid against the schema and is refused.
    Error,
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Expect::Allow => "allow",
            Expect::Deny => "deny",
            Expect::Error => "error",
        })
    }
}

/// How the determining policies are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reasons {
    /// doorman suites: exactly this set.
    Exactly(Vec<String>),
    /// Cedar test files: at least these (Cedar's own rule).
    AtLeast(Vec<String>),
}

/// The entities a case is decided against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum World {
    /// Those named by `--entities`.
    Default,
    /// Entity files, already resolved against the suite's directory.
    Files(Vec<PathBuf>),
    /// Inline Cedar entity JSON, kept as compact text so that cases with the
    /// same entities share one snapshot.
    Inline(String),
}

/// Finds and reads every test file under `paths`. Every broken file is
/// reported, not just the first, so one run shows all there is to fix.
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<Suite>, Vec<Diagnostic>> {
    let files = discover(paths)?;
    let mut suites = Vec::new();
    let mut diags = Vec::new();
    for file in files {
        match read(&file) {
            Ok(s) => suites.push(s),
            Err(mut d) => diags.append(&mut d),
        }
    }
    if diags.is_empty() {
        Ok(suites)
    } else {
        Err(diags)
    }
}

/// Every test file under `paths`, each once, in the order given (each
/// directory sorted).
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Vec<Diagnostic>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut diags = Vec::new();
    for path in paths {
        let explicit = path.is_file();
        if explicit && format_of(path).is_none() {
            diags.push(Diagnostic::new(
                path,
                0,
                0,
                "not a test file: expected a .yaml/.yml suite or a .json Cedar test file",
            ));
            continue;
        }
        let found = match list_files(path, is_test_file) {
            Ok(f) => f,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        for file in found {
            let key = file.canonicalize().unwrap_or_else(|_| file.clone());
            if seen.insert(key) {
                // `doorman test .` should print `a.test.yaml`, not `./a.test.yaml`.
                out.push(
                    file.strip_prefix(".")
                        .map_or(file.clone(), Path::to_path_buf),
                );
            }
        }
    }
    if out.is_empty() && diags.is_empty() {
        let named = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        diags.push(Diagnostic::new(
            Path::new(&named),
            0,
            0,
            "no *.test.yaml or *.cedartest.json file found",
        ));
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

fn is_test_file(name: &str) -> bool {
    name.ends_with(".test.yaml") || name.ends_with(".test.yml") || name.ends_with(".cedartest.json")
}

fn format_of(path: &Path) -> Option<Kind> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => Some(Kind::Doorman),
        Some("json") => Some(Kind::Cedar),
        _ => None,
    }
}

/// Reads one test file in the format its name says.
pub fn read(path: &Path) -> Result<Suite, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![Diagnostic::new(path, 0, 0, format!("cannot read: {e}"))])?;
    match format_of(path) {
        Some(Kind::Cedar) => parse_cedar(path, &text),
        _ => parse_doorman(path, &text),
    }
}

// ------------------------------------------------------------ doorman YAML

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    name: String,
    #[serde(default)]
    entities: Option<Vec<PathBuf>>,
    #[serde(default)]
    cases: Vec<Spanned<CaseFile>>,
    #[serde(default)]
    matrix: Vec<Spanned<MatrixFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    name: String,
    #[serde(default)]
    rule: Option<String>,
    principal: String,
    action: String,
    resource: String,
    #[serde(default)]
    context: Option<Value>,
    expect: Expect,
    #[serde(default)]
    reasons: Option<Vec<String>>,
    #[serde(default)]
    skip: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MatrixFile {
    name: String,
    principals: Roles,
    rows: Vec<Spanned<RowFile>>,
    #[serde(default)]
    skip: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RowFile {
    #[serde(default)]
    rule: Option<String>,
    action: String,
    resource: String,
    #[serde(default)]
    context: Option<Value>,
    allow: Vec<String>,
    #[serde(default)]
    skip: Option<String>,
}

/// A matrix's `role: principal` map in the order written, so the expanded
/// cases (and the report) follow the table's columns.
struct Roles(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Roles {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RolesVisitor;
        impl<'de> Visitor<'de> for RolesVisitor {
            type Value = Roles;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of role name to principal, like admin: Member::\"acme-ada\"")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Roles, A::Error> {
                let mut roles: Vec<(String, String)> = Vec::new();
                while let Some((role, principal)) = map.next_entry::<String, String>()? {
                    if roles.iter().any(|(r, _)| *r == role) {
                        return Err(serde::de::Error::custom(format!(
                            "role `{role}` is given twice"
                        )));
                    }
                    roles.push((role, principal));
                }
                Ok(Roles(roles))
            }
        }
        d.deserialize_map(RolesVisitor)
    }
}

fn line_of<T>(s: &Spanned<T>) -> usize {
    s.referenced.line() as usize
}

fn parse_doorman(path: &Path, text: &str) -> Result<Suite, Vec<Diagnostic>> {
    let file: SuiteFile =
        serde_saphyr::from_str(text).map_err(|e| vec![yaml_diagnostic(path, text, &e)])?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let world = match file.entities {
        None => World::Default,
        Some(list) => World::Files(list.iter().map(|p| dir.join(p)).collect()),
    };
    let mut diags = Vec::new();
    let mut cases = Vec::new();
    for spanned in file.cases {
        let line = line_of(&spanned);
        let c = spanned.value;
        if c.expect == Expect::Error && c.reasons.as_ref().is_some_and(|r| !r.is_empty()) {
            diags.push(Diagnostic::new(
                path,
                line,
                0,
                format!(
                    "case `{}`: `reasons` cannot be checked when the request is expected to be refused (expect: error)",
                    c.name
                ),
            ));
            continue;
        }
        cases.push(Case {
            name: c.name,
            rule: c.rule,
            line,
            principal: c.principal,
            action: c.action,
            resource: c.resource,
            context: c.context.unwrap_or_else(empty_context),
            expect: c.expect,
            reasons: c.reasons.map(Reasons::Exactly),
            num_errors: None,
            skip: c.skip,
            world: world.clone(),
        });
    }
    for spanned in file.matrix {
        let matrix = spanned.value;
        for row in matrix.rows {
            let line = line_of(&row);
            let row = row.value;
            let unknown: Vec<&str> = row
                .allow
                .iter()
                .filter(|r| !matrix.principals.0.iter().any(|(role, _)| role == *r))
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                let known: Vec<&str> = matrix
                    .principals
                    .0
                    .iter()
                    .map(|(r, _)| r.as_str())
                    .collect();
                diags.push(Diagnostic::new(
                    path,
                    line,
                    0,
                    format!(
                        "matrix `{}`: `allow` names {} not under `principals` (which has {})",
                        matrix.name,
                        unknown.join(", "),
                        known.join(", ")
                    ),
                ));
                continue;
            }
            for (role, principal) in &matrix.principals.0 {
                let allowed = row.allow.iter().any(|r| r == role);
                cases.push(Case {
                    name: format!(
                        "{}: {role} {} {}",
                        matrix.name,
                        row.action.trim(),
                        row.resource.trim()
                    ),
                    rule: row.rule.clone(),
                    line,
                    principal: principal.clone(),
                    action: row.action.clone(),
                    resource: row.resource.clone(),
                    context: row.context.clone().unwrap_or_else(empty_context),
                    expect: if allowed { Expect::Allow } else { Expect::Deny },
                    reasons: None,
                    num_errors: None,
                    skip: row.skip.clone().or_else(|| matrix.skip.clone()),
                    world: world.clone(),
                });
            }
        }
    }
    if diags.is_empty() {
        Ok(Suite {
            file: path.to_path_buf(),
            name: file.name,
            kind: Kind::Doorman,
            cases,
        })
    } else {
        Err(diags)
    }
}

fn empty_context() -> Value {
    Value::Object(serde_json::Map::new())
}

// ------------------------------------------------------------ Cedar JSON

/// One case of a `cedar run-tests` file. Unknown fields are ignored, as the
/// Cedar CLI ignores them (older files carry `has_error`).
#[derive(Deserialize)]
struct CedarCase {
    #[serde(default)]
    name: Option<String>,
    request: CedarRequest,
    entities: Value,
    decision: CedarDecision,
    #[serde(default)]
    reason: Vec<String>,
    #[serde(default)]
    num_errors: Option<usize>,
}

#[derive(Deserialize)]
struct CedarRequest {
    principal: String,
    action: String,
    resource: String,
    #[serde(default = "empty_context")]
    context: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum CedarDecision {
    Allow,
    Deny,
}

fn parse_cedar(path: &Path, text: &str) -> Result<Suite, Vec<Diagnostic>> {
    let items: Vec<Value> = serde_json::from_str(text).map_err(|e| {
        let (line, bytes) = (e.line(), e.column());
        let message = crate::diag::without_json_position(&e.to_string(), line, bytes);
        vec![Diagnostic::new(
            path,
            line,
            crate::diag::char_column(text, line, bytes),
            format!("not a Cedar test file (a JSON array of test cases): {message}"),
        )]
    })?;
    let lines = crate::load::item_lines(text, false);
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut diags = Vec::new();
    let mut cases = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let line = lines.get(i).copied().unwrap_or(0);
        let c: CedarCase = match serde_json::from_value(item) {
            Ok(c) => c,
            Err(e) => {
                diags.push(Diagnostic::new(
                    path,
                    line,
                    0,
                    format!("test {}: {e}", i + 1),
                ));
                continue;
            }
        };
        let world = match c.entities {
            Value::String(file) => World::Files(vec![dir.join(file)]),
            v @ Value::Array(_) => World::Inline(v.to_string()),
            _ => {
                diags.push(Diagnostic::new(
                    path,
                    line,
                    0,
                    format!(
                        "test {}: `entities` must be a list of Cedar entities or the name of an entity file",
                        i + 1
                    ),
                ));
                continue;
            }
        };
        cases.push(Case {
            name: c.name.unwrap_or_else(|| format!("test {}", i + 1)),
            rule: None,
            line,
            principal: c.request.principal,
            action: c.request.action,
            resource: c.request.resource,
            context: c.request.context,
            expect: match c.decision {
                CedarDecision::Allow => Expect::Allow,
                CedarDecision::Deny => Expect::Deny,
            },
            reasons: Some(Reasons::AtLeast(c.reason)),
            num_errors: c.num_errors,
            skip: None,
            world,
        });
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(Suite {
        file: path.to_path_buf(),
        name,
        kind: Kind::Cedar,
        cases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doorman(text: &str) -> Result<Suite, Vec<Diagnostic>> {
        parse_doorman(Path::new("dir/s.test.yaml"), text)
    }

    #[test]
    fn matrix_rows_expand_to_one_case_per_principal_with_implicit_denies() {
        let suite = doorman(
            "name: m\nmatrix:\n  - name: t\n    principals: {b: P::\"b\", a: P::\"a\"}\n    rows:\n      - {rule: R1, action: X, resource: R::\"r\", allow: [a]}\n",
        )
        .expect("parses");
        let got: Vec<(&str, Expect, usize)> = suite
            .cases
            .iter()
            .map(|c| (c.principal.as_str(), c.expect, c.line))
            .collect();
        // Written order, not alphabetical: the report follows the table.
        assert_eq!(
            got,
            vec![
                ("P::\"b\"", Expect::Deny, 6),
                ("P::\"a\"", Expect::Allow, 6)
            ]
        );
        assert_eq!(suite.cases[0].rule.as_deref(), Some("R1"));
    }

    #[test]
    fn a_misspelt_field_is_an_error_with_its_line() {
        let err = doorman(
            "name: s\ncases:\n  - name: c\n    principal: P::\"a\"\n    action: X\n    resource: R::\"r\"\n    expcet: deny\n",
        )
        .expect_err("unknown field");
        assert_eq!(err.len(), 1);
        assert!(err[0].message.contains("expcet"), "{}", err[0].message);
        assert!(err[0].line >= 3, "line {}", err[0].line);
    }

    #[test]
    fn a_matrix_allowing_an_undefined_role_is_an_error() {
        let err = doorman(
            "name: m\nmatrix:\n  - name: t\n    principals: {a: P::\"a\"}\n    rows:\n      - {action: X, resource: R::\"r\", allow: [a, boss]}\n",
        )
        .expect_err("undefined role");
        assert_eq!(err[0].line, 6);
        assert!(err[0].message.contains("boss"));
    }

    #[test]
    fn suite_entities_are_relative_to_the_suite() {
        let case =
            "  - {name: c, principal: P::\"a\", action: X, resource: R::\"r\", expect: allow}\n";
        let own =
            doorman(&format!("name: s\nentities: [../w.yaml]\ncases:\n{case}")).expect("parses");
        assert_eq!(
            own.cases[0].world,
            World::Files(vec![PathBuf::from("dir/../w.yaml")])
        );
        let default = doorman(&format!("name: s\ncases:\n{case}")).expect("parses");
        assert_eq!(default.cases[0].world, World::Default);
    }

    #[test]
    fn cedar_cases_keep_cedar_semantics() {
        let text = r#"[
  {"request": {"principal": "User::\"alice\"", "action": "Action::\"view\"",
               "resource": "Photo::\"a\"", "context": {}},
   "entities": [], "decision": "allow", "reason": ["policy0"], "num_errors": 0},
  {"name": "two", "request": {"principal": "User::\"bob\"", "action": "Action::\"view\"",
   "resource": "Photo::\"a\""}, "entities": "e.json", "decision": "deny", "reason": []}
]"#;
        let suite = parse_cedar(Path::new("t/x.cedartest.json"), text).expect("parses");
        assert_eq!(suite.cases.len(), 2);
        assert_eq!(suite.cases[0].name, "test 1");
        assert_eq!(suite.cases[0].line, 2);
        assert_eq!(
            suite.cases[0].reasons,
            Some(Reasons::AtLeast(vec!["policy0".into()]))
        );
        assert_eq!(suite.cases[0].world, World::Inline("[]".into()));
        assert_eq!(suite.cases[1].name, "two");
        assert_eq!(suite.cases[1].line, 5);
        assert_eq!(suite.cases[1].num_errors, None);
        assert_eq!(
            suite.cases[1].world,
            World::Files(vec![PathBuf::from("t/e.json")])
        );
    }

    /// Found by fuzzing (`fuzz/`, target `loader`): the column of a JSON
    /// error was serde_json's, in bytes, past the end of the line.
    #[test]
    fn cedar_file_errors_are_located_in_characters() {
        let text = "[{\"request\": \"ééééé\" x}]";
        let err = parse_cedar(Path::new("t/x.cedartest.json"), text).expect_err("not JSON");
        assert_eq!((err[0].line, err[0].column), (1, 22), "{:?}", err[0]);
        assert!(!err[0].message.contains("column"), "{}", err[0].message);
    }

    #[test]
    fn json_item_lines_skip_brackets_inside_strings() {
        let text = "[\n {\"a\": \"[{\"},\n\n {\"b\": [1, {\"c\": 2}]}\n]";
        assert_eq!(crate::load::item_lines(text, false), vec![2, 4]);
    }
}
