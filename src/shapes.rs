//! Request shapes that need no validation: found once per schema.
//!
//! Cedar's request validation was half of what a decision's own code cost.
//! For most requests it can only say yes: an action the schema declares, a
//! principal and resource of types it allows, an empty context. Which
//! shapes those are depends on the schema alone, so the loader asks the
//! validator once, and the decision path looks the shape up.

use cedar_policy::{Context, EntityTypeName, EntityUid, Request, Schema};

/// The request shapes (action, principal type, resource type) for which
/// Cedar's request validation accepts an empty context whatever the
/// principal's and resource's ids. Found at load time by asking the
/// validator itself, twice per shape with different made-up ids, so an
/// enumerated entity type (whose ids the validator checks) never qualifies.
/// Validation looks at nothing else of such a request, so a request of one
/// of these shapes is valid without asking again.
#[derive(Default)]
pub(crate) struct EmptyContext {
    shapes: foldhash::HashMap<EntityUid, Vec<(EntityTypeName, EntityTypeName)>>,
}

/// Past this many shapes (a schema of very many actions and types) the
/// rest are validated per request, as before; loading stays quick.
const MAX_SHAPES: usize = 10_000;

impl EmptyContext {
    pub(crate) fn build(schema: Option<&Schema>) -> EmptyContext {
        let mut out = EmptyContext::default();
        let Some(schema) = schema else {
            return out;
        };
        let probe = |p: &EntityTypeName, a: &EntityUid, r: &EntityTypeName, id: &str| {
            let uid = |t: &EntityTypeName, side: &str| {
                EntityUid::from_type_name_and_id(
                    t.clone(),
                    cedar_policy::EntityId::new(format!("\u{0}doorman-probe-{side}-{id}")),
                )
            };
            Request::new(
                uid(p, "principal"),
                a.clone(),
                uid(r, "resource"),
                Context::empty(),
                Some(schema),
            )
            .is_ok()
        };
        for env in schema.request_envs().take(MAX_SHAPES) {
            let (p, a, r) = (env.principal(), env.action(), env.resource());
            if probe(p, a, r, "a") && probe(p, a, r, "b") {
                out.shapes
                    .entry(a.clone())
                    .or_default()
                    .push((p.clone(), r.clone()));
            }
        }
        out
    }

    pub(crate) fn accepts(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
    ) -> bool {
        self.shapes.get(action).is_some_and(|shapes| {
            let (p, r) = (principal.type_name(), resource.type_name());
            shapes.iter().any(|(sp, sr)| sp == p && sr == r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"
        entity User, Doc;
        entity Role enum ["admin", "member"];
        action see appliesTo { principal: [User, Role], resource: Doc };
        action post appliesTo { principal: User, resource: Doc, context: { n: Long } };
        action peek appliesTo { principal: User, resource: Doc, context: { n?: Long } };
    "#;

    struct Query {
        principal: EntityUid,
        action: EntityUid,
        resource: EntityUid,
    }

    fn query(p: &str, a: &str, r: &str) -> Query {
        Query {
            principal: crate::uid::parse_uid(p).unwrap(),
            action: crate::uid::parse_action(a).unwrap(),
            resource: crate::uid::parse_uid(r).unwrap(),
        }
    }

    impl EmptyContext {
        fn accepts_query(&self, q: &Query) -> bool {
            self.accepts(&q.principal, &q.action, &q.resource)
        }
    }

    #[test]
    fn only_shapes_valid_whatever_the_ids_skip_validation() {
        let schema = Schema::from_cedarschema_str(SCHEMA).unwrap().0;
        let shapes = EmptyContext::build(Some(&schema));
        assert!(shapes.accepts_query(&query(r#"User::"u""#, "see", r#"Doc::"d""#)));
        assert!(shapes.accepts_query(&query(r#"User::"u""#, "peek", r#"Doc::"d""#)));
        // An enumerated type: its ids are checked, so it is always validated.
        let typo = query(r#"Role::"admni""#, "see", r#"Doc::"d""#);
        assert!(!shapes.accepts_query(&typo));
        assert!(
            Request::new(
                typo.principal,
                typo.action,
                typo.resource,
                Context::empty(),
                Some(&schema)
            )
            .is_err()
        );
        // A required context attribute, a type the action does not take, an
        // action the schema does not know.
        assert!(!shapes.accepts_query(&query(r#"User::"u""#, "post", r#"Doc::"d""#)));
        assert!(!shapes.accepts_query(&query(r#"Doc::"d""#, "see", r#"Doc::"d""#)));
        assert!(!shapes.accepts_query(&query(r#"User::"u""#, "fly", r#"Doc::"d""#)));
        assert!(!EmptyContext::build(None).accepts_query(&query(
            r#"User::"u""#,
            "see",
            r#"Doc::"d""#
        )));
    }
}
