//! `--expect-changes FILE`: the changes a pull request means to make.
//!
//! A YAML list (read with serde-saphyr) of
//! `{action: ViewInbox, principal: "Member::*", resource: "Inbox::\"acme-*\"", change: allow}`
//! where `principal` and `resource` are patterns over the entity reference
//! as Cedar writes it (`*` matches any run of characters; omitted means
//! any) and `change` is the new decision (`allow`: NEW allows what OLD
//! denied; `deny`: the reverse). A change some entry matches is intended;
//! the run fails only on the others. For the symbolic mode the match is on
//! its counterexample: one example of the change, not all of it.

use std::path::Path;

use regex::Regex;
use serde::Deserialize;

use super::DiffReport;
use crate::decide::Decision;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    action: String,
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    resource: Option<String>,
    change: Decision,
}

impl<'de> Deserialize<'de> for Decision {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "allow" => Ok(Decision::Allow),
            "deny" => Ok(Decision::Deny),
            other => Err(serde::de::Error::custom(format!(
                "change must be allow or deny, not `{other}`"
            ))),
        }
    }
}

/// One intended change.
#[derive(Debug)]
pub struct Expected {
    text: String,
    action: String,
    principal: Regex,
    resource: Regex,
    change: Decision,
}

impl Expected {
    fn matches(&self, principal: &str, action: &str, resource: &str, after: Decision) -> bool {
        let action = action
            .strip_prefix("Action::")
            .map_or(action.to_owned(), |a| a.trim_matches('"').to_owned());
        let want = self
            .action
            .strip_prefix("Action::")
            .map_or(self.action.clone(), |a| a.trim_matches('"').to_owned());
        want == action
            && after == self.change
            && self.principal.is_match(principal)
            && self.resource.is_match(resource)
    }
}

fn pattern(p: Option<&str>) -> Regex {
    let p = p.unwrap_or("*");
    let escaped: Vec<String> = p.split('*').map(regex::escape).collect();
    Regex::new(&format!("^{}$", escaped.join(".*"))).expect("escaped pattern")
}

pub fn read(path: &Path) -> Result<Vec<Expected>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("error: {}: cannot read: {e}", path.display()))?;
    let raw: Vec<Raw> = serde_saphyr::from_str(&text).map_err(|e| {
        let d = crate::load::yaml_diagnostic(path, &text, &e);
        format!("{d}")
    })?;
    Ok(raw
        .into_iter()
        .map(|r| Expected {
            text: format!(
                "{{action: {}, principal: {}, resource: {}, change: {}}}",
                r.action,
                r.principal.as_deref().unwrap_or("*"),
                r.resource.as_deref().unwrap_or("*"),
                r.change
            ),
            principal: pattern(r.principal.as_deref()),
            resource: pattern(r.resource.as_deref()),
            action: r.action,
            change: r.change,
        })
        .collect())
}

/// Marks the changes the expectations cover; returns the expectations
/// that matched nothing.
pub fn apply(expected: &[Expected], report: &mut DiffReport) -> Vec<String> {
    let mut used = vec![false; expected.len()];
    let mut mark = |p: &str, a: &str, r: &str, after: Decision| -> bool {
        let mut hit = false;
        for (i, e) in expected.iter().enumerate() {
            if e.matches(p, a, r, after) {
                used[i] = true;
                hit = true;
            }
        }
        hit
    };
    if let Some(ex) = &mut report.exhaustive {
        for f in &mut ex.flips {
            f.intended = mark(&f.principal, &f.action, &f.resource, f.after);
        }
    }
    if let Some(rep) = &mut report.replay {
        for c in &mut rep.changes {
            let f = &mut c.flip;
            f.intended = mark(&f.principal, &f.action, &f.resource, f.after);
        }
    }
    if let Some(sym) = &mut report.symbolic {
        for f in sym.environments.iter_mut().flat_map(|e| &mut e.findings) {
            let (p, a, r) = f.parts();
            f.intended = mark(&p, &a, &r, f.decisions().1);
        }
    }
    expected
        .iter()
        .zip(used)
        .filter(|(_, u)| !u)
        .map(|(e, _)| e.text.clone())
        .collect()
}
