//! Entity references as users type them: `Member::"acme-ada"`, an action as
//! `ViewInbox`, a type name and an id from JSON.
//!
//! The bottom of the crate: the loader, the store, request entities and the
//! decision path all read references, and none of them should have to
//! import another to do it.

use std::str::FromStr;

use cedar_policy::{EntityTypeName, EntityUid};

/// Parses `Type::"id"` (Cedar's entity reference syntax).
pub fn parse_uid(text: &str) -> Result<EntityUid, String> {
    EntityUid::from_str(text.trim())
        .map_err(|e| format!("`{text}` is not an entity reference like Member::\"acme-ada\": {e}"))
}

/// Parses an action: `ViewInbox` is shorthand for `Action::"ViewInbox"`.
pub fn parse_action(text: &str) -> Result<EntityUid, String> {
    let text = text.trim();
    if text.contains("::") {
        parse_uid(text)
    } else {
        uid_from_parts("Action", text)
    }
}

/// Builds a UID from a type name and an id (any string is a valid id).
pub fn uid_from_parts(type_name: &str, id: &str) -> Result<EntityUid, String> {
    let ty = entity_type(type_name)
        .map_err(|e| format!("`{type_name}` is not an entity type name: {e}"))?;
    Ok(EntityUid::from_type_name_and_id(
        ty,
        cedar_policy::EntityId::new(id),
    ))
}

/// Parses an entity type name, remembering it per thread: every request
/// names three or more, they are few, and each parse runs Cedar's full
/// grammar (about a tenth of a decision). Only names that parse are kept,
/// and at most `KEPT` of them, so a client inventing names cannot grow it.
pub(crate) fn entity_type(text: &str) -> Result<EntityTypeName, String> {
    use std::cell::RefCell;
    const KEPT: usize = 256;
    thread_local! {
        static NAMES: RefCell<foldhash::HashMap<String, EntityTypeName>> =
            RefCell::default();
    }
    if let Some(known) = NAMES.with(|n| n.borrow().get(text).cloned()) {
        return Ok(known);
    }
    let parsed = EntityTypeName::from_str(text).map_err(|e| e.to_string())?;
    NAMES.with(|n| {
        let mut n = n.borrow_mut();
        if n.len() < KEPT {
            n.insert(text.to_owned(), parsed.clone());
        }
    });
    Ok(parsed)
}
