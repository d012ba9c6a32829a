//! The typed reader for well-formed bodies of doorman's own endpoints.
//!
//! Every function returns `None` where the walk ([`super::read`]) might say
//! something else than "here is the item", and the caller then runs the
//! walk; so this reader only has to be fast, never to word a refusal.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::read::{Brought, Item, ReadBatch};
use crate::decide::{Query, parse_action, parse_uid, uid_from_parts};
use crate::entity_json::Json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireItem<'a> {
    #[serde(borrow)]
    principal: WireRef<'a>,
    #[serde(borrow)]
    action: WireRef<'a>,
    #[serde(borrow)]
    resource: WireRef<'a>,
    // `null` and absent both read as `None`, as in the walk.
    #[serde(default)]
    context: Option<Unrepeated>,
    #[serde(default, borrow)]
    entities: Option<Json<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireBatch<'a> {
    #[serde(borrow)]
    requests: Vec<Object<WireItem<'a>>>,
    #[serde(default, borrow)]
    entities: Option<Json<'a>>,
}

/// `T` read from a JSON object only. A derived struct also reads a JSON
/// array, field by field in order, which the walk refuses.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Object)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A JSON value with no key repeated in any of its objects: read as
/// serde_json reads a `Value`, but a repeated key fails (and the walk then
/// names it), where serde_json would keep the last silently.
struct Unrepeated(Value);

impl<'de> Deserialize<'de> for Unrepeated {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Unrepeated;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Unrepeated, E> {
                Ok(Unrepeated(Value::Bool(b)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Unrepeated, E> {
                Ok(Unrepeated(Value::from(n)))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Unrepeated, E> {
                Ok(Unrepeated(Value::from(n)))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Unrepeated, E> {
                Ok(Unrepeated(
                    serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
                ))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Unrepeated, E> {
                Ok(Unrepeated(Value::String(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Unrepeated, E> {
                Ok(Unrepeated(Value::String(s)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Unrepeated, E> {
                Ok(Unrepeated(Value::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<Unrepeated, E> {
                Ok(Unrepeated(Value::Null))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Unrepeated, D::Error> {
                Unrepeated::deserialize(d)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Unrepeated, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(Unrepeated(item)) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Unrepeated(Value::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unrepeated, A::Error> {
                let mut out = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    let Unrepeated(value) = map.next_value()?;
                    if out.insert(key, value).is_some() {
                        return Err(de::Error::custom("repeated key"));
                    }
                }
                Ok(Unrepeated(Value::Object(out)))
            }
        }
        d.deserialize_any(V)
    }
}

/// `"Member::\"ada\""` or `{"type": "Member", "id": "ada"}`; nothing else.
enum WireRef<'a> {
    Text(Cow<'a, str>),
    Parts { ty: Cow<'a, str>, id: Cow<'a, str> },
}

/// A string, borrowed from the body unless it holds escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for WireRef<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = WireRef<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an entity reference")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(WireRef::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(WireRef::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut ty, mut id) = (None, None);
                while let Some(key) = map.next_key::<Str<'a>>()? {
                    let slot = match key.0.as_ref() {
                        "type" => &mut ty,
                        "id" => &mut id,
                        _ => return Err(de::Error::custom("not a plain reference")),
                    };
                    if slot.replace(map.next_value::<Str<'a>>()?.0).is_some() {
                        return Err(de::Error::custom("duplicate key"));
                    }
                }
                match (ty, id) {
                    (Some(ty), Some(id)) => Ok(WireRef::Parts { ty, id }),
                    _ => Err(de::Error::custom("incomplete reference")),
                }
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

fn uid(r: &WireRef<'_>, action: bool) -> Option<cedar_policy::EntityUid> {
    match r {
        WireRef::Text(t) if action => parse_action(t).ok(),
        WireRef::Text(t) => parse_uid(t).ok(),
        WireRef::Parts { ty, id } => uid_from_parts(ty, id).ok(),
    }
}

/// A list of entities, or `None` for `null` or absent; anything else is
/// the walk's to refuse.
fn entity_list(list: Option<Json<'_>>) -> Result<Option<Brought<'_>>, ()> {
    match list {
        None | Some(Json::Null) => Ok(None),
        // The walk names the key.
        Some(ref json) if json.repeated_key().is_some() => Err(()),
        Some(Json::Arr(items)) => Ok(Some(Brought::Read(items))),
        Some(_) => Err(()),
    }
}

fn convert(w: WireItem<'_>) -> Option<Item<'_>> {
    let context = match w.context {
        None => Value::Object(serde_json::Map::new()),
        Some(Unrepeated(v @ Value::Object(_))) => v,
        Some(_) => return None,
    };
    let entities = entity_list(w.entities).ok()?;
    Some(Item {
        query: Query {
            principal: uid(&w.principal, false)?,
            action: uid(&w.action, true)?,
            resource: uid(&w.resource, false)?,
            context,
        },
        entities,
    })
}

pub(crate) fn item(body: &[u8]) -> Option<Item<'_>> {
    convert(serde_json::from_slice::<Object<WireItem<'_>>>(body).ok()?.0)
}

pub(crate) fn batch(body: &[u8], max_batch: usize) -> Option<ReadBatch<'_>> {
    let Object(wire) = serde_json::from_slice::<Object<WireBatch<'_>>>(body).ok()?;
    if wire.requests.len() > max_batch {
        return None;
    }
    let entities = entity_list(wire.entities).ok()?;
    let requests = wire
        .requests
        .into_iter()
        .map(|Object(w)| convert(w).map(Ok))
        .collect::<Option<Vec<_>>>()?;
    Some(ReadBatch { requests, entities })
}
