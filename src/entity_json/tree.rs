//! A JSON value as the fast entity reader wants it.
//!
//! `serde_json::Value` keeps objects in an `IndexMap` (Cedar turns on
//! `preserve_order`) and so hashes every key with SipHash and copies every
//! string: about two thirds of reading a large entity file. An entity's
//! objects are a handful of fields, found faster by a scan than by a hash,
//! and most of its strings have no escapes and can be borrowed from the
//! file. [`Json`] is that tree; [`Json::to_value`] gives back exactly the
//! `Value` serde_json would have read (for Cedar's parser, which decides
//! whenever the fast reader does not).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A JSON value; strings borrowed from the input where they can be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    /// A number that fits an `i64`, the only kind Cedar's `Long` takes.
    Int(i64),
    /// Any other number, kept as serde_json read it.
    Num(Number),
    Str(Cow<'a, str>),
    Arr(Vec<Json<'a>>),
    Obj(Fields<'a>),
}

/// An object's fields in the order written, repeats included (serde_json
/// keeps the last of a repeated key; the fast reader leaves such an object
/// to Cedar: see [`Fields::get`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Fields<'a> {
    list: Vec<(Cow<'a, str>, Json<'a>)>,
    repeated: bool,
}

impl<'a> Fields<'a> {
    /// The field named `key`; `None` too when any key is repeated, so the
    /// fast reader never picks a value serde_json would not.
    pub(crate) fn get(&self, key: &str) -> Option<&Json<'a>> {
        if self.repeated {
            return None;
        }
        self.list.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The fields, or `None` when a key is repeated.
    pub(crate) fn iter(&self) -> Option<impl Iterator<Item = (&str, &Json<'a>)>> {
        (!self.repeated).then(|| self.list.iter().map(|(k, v)| (k.as_ref(), v)))
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// Notes whether a key is repeated: by pairs in a small object, by
    /// sorting in a large one (a body of a million keys must not take a
    /// million squared steps).
    fn finish(mut self) -> Self {
        let keys = || self.list.iter().map(|(k, _)| k.as_ref());
        self.repeated = if self.list.len() <= 16 {
            keys()
                .enumerate()
                .any(|(i, k)| keys().take(i).any(|before| before == k))
        } else {
            let mut sorted: Vec<&str> = keys().collect();
            sorted.sort_unstable();
            sorted.windows(2).any(|w| w[0] == w[1])
        };
        self
    }
}

impl<'a> Json<'a> {
    pub(crate) fn as_object(&self) -> Option<&Fields<'a>> {
        match self {
            Json::Obj(f) => Some(f),
            _ => None,
        }
    }

    pub(crate) fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Arr(items) => Some(items),
            _ => None,
        }
    }

    /// A tree over a `Value` already read (YAML files, request bodies),
    /// borrowing its strings.
    pub(crate) fn of(value: &'a Value) -> Json<'a> {
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => n.as_i64().map_or_else(|| Json::Num(n.clone()), Json::Int),
            Value::String(s) => Json::Str(Cow::Borrowed(s)),
            Value::Array(items) => Json::Arr(items.iter().map(Json::of).collect()),
            Value::Object(map) => Json::Obj(Fields {
                list: map
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Json::of(v)))
                    .collect(),
                repeated: false,
            }),
        }
    }

    /// The first key repeated within one object, anywhere in the tree (depth
    /// first, in the order written), with the path of the object holding it
    /// in the sidecar's field notation (`requests[0].context.a`; empty for
    /// the top). serde_json keeps the last of a repeated key; a reader that
    /// keeps the first would see another request, so requests refuse them.
    pub(crate) fn repeated_key(&self) -> Option<Repeated> {
        match self {
            Json::Arr(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| item.repeated_key().map(|r| r.under(&format!("[{i}]")))),
            Json::Obj(fields) => {
                if fields.repeated {
                    let keys = &fields.list;
                    let key = keys
                        .iter()
                        .enumerate()
                        .find(|(i, (k, _))| keys[..*i].iter().any(|(before, _)| before == k))
                        .map(|(_, (k, _))| k.as_ref().to_owned())?;
                    return Some(Repeated {
                        path: String::new(),
                        key,
                    });
                }
                fields
                    .list
                    .iter()
                    .find_map(|(k, v)| v.repeated_key().map(|r| r.under(&field_step(k))))
            }
            _ => None,
        }
    }

    /// The `Value` serde_json reads from the same text.
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Int(n) => Value::from(*n),
            Json::Num(n) => Value::Number(n.clone()),
            Json::Str(s) => Value::String(s.as_ref().to_owned()),
            Json::Arr(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Obj(fields) => {
                let mut map = Map::new();
                for (k, v) in &fields.list {
                    map.insert(k.as_ref().to_owned(), v.to_value());
                }
                Value::Object(map)
            }
        }
    }
}

/// A key given twice in one object: [`Json::repeated_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Repeated {
    /// Where the object is (`requests[0].context`; empty for the top).
    pub(crate) path: String,
    pub(crate) key: String,
}

/// An object key as one step of a field path: the key itself when it is
/// a plain name, else the key as a JSON string in brackets (`[""]`,
/// `["a.b"]`), so that an empty key, or one holding the path's own `.`
/// and `[`, still names one field, and names it unmistakably.
pub(crate) fn field_step(key: &str) -> Cow<'_, str> {
    let plain = !key.is_empty()
        && !key.chars().any(|c| {
            matches!(c, '.' | '[' | ']' | '"' | '\\') || c.is_whitespace() || c.is_control()
        });
    if plain {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(format!("[{}]", Value::String(key.to_owned())))
    }
}

impl Repeated {
    /// The same key seen from one level up, where `step` (a key's
    /// [`field_step`], or `[i]` for an array item) leads to the object.
    fn under(mut self, step: &str) -> Repeated {
        let joint = if self.path.is_empty() || self.path.starts_with('[') {
            ""
        } else {
            "."
        };
        self.path = format!("{step}{joint}{}", self.path);
        self
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Json<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Int(n))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(i64::try_from(n).map_or_else(|_| Json::Num(n.into()), Json::Int))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Json<'de>, E> {
        Ok(Number::from_f64(n).map_or(Json::Null, Json::Num))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s)))
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        Json::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Arr(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut list = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(Key(k)) = map.next_key()? {
            list.push((k, map.next_value()?));
        }
        Ok(Json::Obj(
            Fields {
                list,
                repeated: false,
            }
            .finish(),
        ))
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree gives back what serde_json reads, for every kind of value
    /// and for repeated keys, escapes and numbers no `Long` holds.
    #[test]
    fn the_tree_gives_back_serde_jsons_reading() {
        let texts = [
            r#"[{"uid": {"type": "User", "id": "a\"b"}, "attrs": {"n": -3, "big": 18446744073709551615, "f": 1.5, "e": 1e400}, "parents": []}]"#,
            r#"{"a": 1, "b": [true, null, "x\u00e9"], "a": {"c": {}}}"#,
            r#""just a string""#,
            r#"[[], {}, 0, -0, 9223372036854775807, -9223372036854775808]"#,
        ];
        for text in texts {
            let Ok(value) = serde_json::from_str::<Value>(text) else {
                assert!(serde_json::from_str::<Json>(text).is_err(), "{text}");
                continue;
            };
            let tree: Json = serde_json::from_str(text).unwrap();
            assert_eq!(tree.to_value(), value, "{text}");
            assert_eq!(Json::of(&value).to_value(), value, "{text}");
        }
        let tree: Json = serde_json::from_str(texts[1]).unwrap();
        assert!(
            tree.as_object().unwrap().get("b").is_none(),
            "a repeated key hides the object"
        );
        let wide: String = (0..40).map(|i| format!(r#""k{}": {i},"#, i % 39)).collect();
        let text = format!("{{{wide}\"z\": 0}}");
        let tree: Json = serde_json::from_str(&text).unwrap();
        assert!(
            tree.as_object().unwrap().iter().is_none(),
            "found in a large object too"
        );
    }
}
