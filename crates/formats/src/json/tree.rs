//! A JSON tree that borrows its strings from the input where it can and keeps object
//! properties in document order: several times faster to build than `serde_json::Value`, and
//! it refuses duplicate property names (which parsers resolve differently).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum V<'a> {
    Null,
    Bool(bool),
    /// A non-negative integer.
    U(u64),
    /// A negative integer.
    I(i64),
    /// Any other number (never used for amounts: those are strings).
    F(f64),
    Str(Cow<'a, str>),
    Arr(Vec<V<'a>>),
    Obj(Vec<(Cow<'a, str>, V<'a>)>),
}

/// An object's properties, in document order, names unique.
pub(crate) type Obj<'a> = [(Cow<'a, str>, V<'a>)];

/// The property `key` of an object.
pub(crate) fn field<'v>(m: &'v Obj<'v>, key: &str) -> Option<&'v V<'v>> {
    m.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

impl V<'_> {
    /// What kind of value this is, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            V::Null => "null",
            V::Bool(_) => "a boolean",
            V::U(_) | V::I(_) | V::F(_) => "a number",
            V::Str(_) => "a string",
            V::Arr(_) => "an array",
            V::Obj(_) => "an object",
        }
    }
}

impl fmt::Display for V<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            V::U(n) => write!(f, "{n}"),
            V::I(n) => write!(f, "{n}"),
            V::F(n) => write!(f, "{n}"),
            V::Str(s) => write!(f, "{:?}", s.chars().take(40).collect::<String>()),
            other => f.write_str(other.kind()),
        }
    }
}

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a property name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for V<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = V<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<V<'de>, E> {
        Ok(V::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<V<'de>, E> {
        Ok(V::Bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<V<'de>, E> {
        Ok(V::U(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<V<'de>, E> {
        Ok(if v >= 0 { V::U(v as u64) } else { V::I(v) })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<V<'de>, E> {
        Ok(V::F(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<V<'de>, E> {
        Ok(V::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<V<'de>, E> {
        Ok(V::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<V<'de>, E> {
        Ok(V::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<V<'de>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(V::Arr(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<V<'de>, A::Error> {
        let mut out: Vec<(Cow<'de, str>, V<'de>)> = Vec::with_capacity(4);
        while let Some(Key(k)) = map.next_key()? {
            if out.iter().any(|(seen, _)| *seen == k) {
                return Err(de::Error::custom(format_args!(
                    "duplicate property {:?}",
                    k.chars().take(40).collect::<String>()
                )));
            }
            let v = map.next_value()?;
            out.push((k, v));
        }
        Ok(V::Obj(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_plain_strings_and_refuses_duplicates() {
        let v: V = serde_json::from_str(r#"{"a": "x", "b": "y\n", "c": [1, -2, 1.5, null, true]}"#).unwrap();
        let V::Obj(m) = &v else { panic!("{v:?}") };
        assert!(matches!(field(m, "a"), Some(V::Str(Cow::Borrowed("x")))));
        assert!(matches!(field(m, "b"), Some(V::Str(Cow::Owned(s))) if s == "y\n"));
        assert_eq!(field(m, "c"), Some(&V::Arr(vec![V::U(1), V::I(-2), V::F(1.5), V::Null, V::Bool(true)])));
        let e = serde_json::from_str::<V>(r#"{"a": 1, "a": 2}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate property \"a\""), "{e}");
    }
}
