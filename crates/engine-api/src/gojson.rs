//! Decoding request bodies as Docker's server does (Go's `encoding/json`), not as serde does
//! by default: SDKs rely on two of Go's rules. A JSON `null` leaves the field as it was (for
//! a fresh decode: absent), and an object key matches a struct field case-insensitively when
//! no field has that exact name (`{"replicated": {"replicas": 3}}` sets `Replicated`). Without
//! them an SDK's `"Args": null` is refused and its lowercase keys silently ignored.
//!
//! This is a `Deserializer` over a parsed `serde_json::Value` that applies both rules whenever
//! serde asks for a struct (it names the struct's fields then), and hands everything else to
//! `serde_json`. Map keys (labels, sysctls) are data and are never rewritten.

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;
use serde::Deserialize;
use serde_json::Number;

/// Decodes `bytes` into `T` with Go's null and key-case rules.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let v: Json = serde_json::from_slice(bytes)?;
    T::deserialize(v)
}

/// Parsed JSON that keeps object keys in the order sent (serde_json's map sorts them here):
/// with two keys for one field, Go keeps the later one.
enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        Json::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json, E> {
        Number::from_f64(n)
            .map(Json::Number)
            .ok_or_else(|| E::custom("not a finite number"))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(Json::String(s))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = a.next_element()? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = a.next_entry::<String, Json>()? {
            out.push((k, v));
        }
        Ok(Json::Object(out))
    }
}

/// The struct field `key` sets: the exact name if there is one, else the first field whose
/// name equals it ignoring case (Go folds case the same way; field names here are ASCII).
fn field_for<'a>(key: &'a str, fields: &'static [&'static str]) -> &'a str {
    if fields.contains(&key) {
        return key;
    }
    fields
        .iter()
        .find(|f| f.eq_ignore_ascii_case(key))
        .copied()
        .unwrap_or(key)
}

/// An object decoded into a struct: nulls dropped, keys renamed to the fields they set. When
/// two keys set the same field, the later one wins, as in Go.
fn struct_entries(
    obj: Vec<(String, Json)>,
    fields: &'static [&'static str],
) -> Vec<(String, Json)> {
    let mut out: Vec<(String, Json)> = Vec::new();
    for (k, v) in obj {
        if matches!(v, Json::Null) {
            continue;
        }
        let name = field_for(&k, fields).to_string();
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = v,
            None => out.push((name, v)),
        }
    }
    out
}

struct Seq(std::vec::IntoIter<Json>);

struct Map {
    entries: std::vec::IntoIter<(String, Json)>,
    value: Option<Json>,
}

impl<'de> de::SeqAccess<'de> for Seq {
    type Error = serde_json::Error;

    fn next_element_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        match self.0.next() {
            Some(v) => seed.deserialize(v).map(Some),
            None => Ok(None),
        }
    }
}

impl<'de> de::MapAccess<'de> for Map {
    type Error = serde_json::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.entries.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(k.into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        seed.deserialize(self.value.take().unwrap_or(Json::Null))
    }
}

fn visit_map<'de, V: Visitor<'de>>(
    obj: Vec<(String, Json)>,
    visitor: V,
) -> Result<V::Value, serde_json::Error> {
    visitor.visit_map(Map {
        entries: obj.into_iter(),
        value: None,
    })
}

impl<'de> de::Deserializer<'de> for Json {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Json::Null => visitor.visit_unit(),
            Json::Bool(b) => visitor.visit_bool(b),
            Json::Number(n) => de::Deserializer::deserialize_any(n, visitor),
            Json::String(s) => visitor.visit_string(s),
            Json::Array(a) => visitor.visit_seq(Seq(a.into_iter())),
            Json::Object(o) => visit_map(o, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Json::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self {
            Json::Object(o) => visit_map(struct_entries(o, fields), visitor),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        // Only unit variants spelled as strings exist in these shapes.
        match self {
            Json::String(s) => visitor.visit_enum(s.into_deserializer()),
            other => other.deserialize_any(visitor),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Inner {
        #[serde(default)]
        replicas: Option<u64>,
        #[serde(default)]
        args: Vec<String>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Outer {
        #[serde(default)]
        name: String,
        #[serde(default)]
        replicated: Option<Inner>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default)]
        list: Vec<Inner>,
    }

    #[test]
    fn null_is_absent_and_keys_match_any_case() {
        let o: Outer = from_slice(
            br#"{"name":"web","REPLICATED":{"replicas":3,"Args":null},"Labels":{"Tier":"a"},
                 "list":[{"args":["x"]}]}"#,
        )
        .unwrap();
        assert_eq!(o.name, "web");
        assert_eq!(o.replicated.as_ref().unwrap().replicas, Some(3));
        assert!(o.replicated.as_ref().unwrap().args.is_empty());
        // Map keys are data: never folded.
        assert_eq!(o.labels.keys().collect::<Vec<_>>(), ["Tier"]);
        assert_eq!(o.list[0].args, ["x"]);
        let o: Outer = from_slice(br#"{"Name":null,"Replicated":null,"List":null}"#).unwrap();
        assert_eq!(o, Outer::default());
    }

    #[test]
    fn an_exact_name_wins_and_the_later_duplicate_wins() {
        let o: Outer = from_slice(br#"{"name":"a","Name":"b"}"#).unwrap();
        assert_eq!(o.name, "b");
        let o: Outer = from_slice(br#"{"Name":"b","name":"a"}"#).unwrap();
        assert_eq!(o.name, "a");
    }

    #[test]
    fn wrong_types_are_still_errors() {
        assert!(from_slice::<Outer>(br#"{"Name":3}"#).is_err());
        assert!(from_slice::<Outer>(br#"{"Replicated":{"Replicas":"x"}}"#).is_err());
    }
}
