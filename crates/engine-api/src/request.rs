//! What a handler reads from a request: query parameters, Docker's `filters` JSON and the
//! body. Every parse error is a one-line 400 naming the parameter.

use crate::error::ApiError;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

pub struct Request {
    pub query: Vec<(String, String)>,
    pub body: bytes::Bytes,
}

/// Docker's list filters: key -> accepted values.
pub type Filters = BTreeMap<String, Vec<String>>;

impl Request {
    pub fn new(query: Option<&str>, body: bytes::Bytes) -> Request {
        let query = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Request { query, body }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter as Docker reads them: "1", "true" (any case) are true.
    pub fn flag(&self, name: &str) -> bool {
        self.param(name)
            .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
    }

    /// A boolean parameter read as Docker's server reads most (Go's `strconv.ParseBool`):
    /// absent or empty is false, anything unreadable a 400 naming it.
    pub fn go_bool(&self, name: &str) -> Result<bool, ApiError> {
        match self.param(name).unwrap_or("") {
            "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            v => Err(ApiError::BadRequest(format!(
                "{name}: invalid value {v:?} (true or false)"
            ))),
        }
    }

    /// The `version` parameter of an update: the object version the client read.
    pub fn version(&self) -> Result<u64, ApiError> {
        let v = self.param("version").ok_or_else(|| {
            ApiError::BadRequest("version: missing (the object's Version.Index)".into())
        })?;
        v.parse().map_err(|_| {
            ApiError::BadRequest(format!("version: {v:?} is not a non-negative integer"))
        })
    }

    /// `filters`, checked against the keys the endpoint knows.
    pub fn filters(&self, accepted: &[&str]) -> Result<Filters, ApiError> {
        let Some(raw) = self.param("filters").filter(|s| !s.is_empty()) else {
            return Ok(Filters::new());
        };
        let filters = parse_filters(raw)?;
        if let Some(k) = filters.keys().find(|k| !accepted.contains(&k.as_str())) {
            return Err(ApiError::BadRequest(format!(
                "filters: invalid filter '{k}' (accepted: {})",
                accepted.join(", ")
            )));
        }
        Ok(filters)
    }

    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.body.is_empty() {
            return Err(ApiError::BadRequest("body: missing (a JSON object)".into()));
        }
        // As Docker's server decodes: `null` is absent, keys match fields in any case.
        crate::gojson::from_slice(&self.body)
            .map_err(|e| ApiError::BadRequest(format!("body: invalid JSON: {e}")))
    }
}

/// Both of Docker's encodings: `{"key": {"value": true}}` and the older `{"key": ["value"]}`.
fn parse_filters(raw: &str) -> Result<Filters, ApiError> {
    let v: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::BadRequest(format!("filters: invalid JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::BadRequest("filters: not a JSON object".into()))?;
    let mut out = Filters::new();
    for (k, vals) in obj {
        let list: Vec<String> = match vals {
            serde_json::Value::Object(m) => m
                .iter()
                .filter(|(_, on)| on.as_bool().unwrap_or(false))
                .map(|(v, _)| v.clone())
                .collect(),
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| {
                    x.as_str().map(str::to_string).ok_or_else(|| {
                        ApiError::BadRequest(format!("filters: {k}: values must be strings"))
                    })
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "filters: {k}: not a list or map of values"
                )))
            }
        };
        out.insert(k.clone(), list);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(q: &str) -> Request {
        Request::new(Some(q), bytes::Bytes::new())
    }

    #[test]
    fn filters_in_both_encodings() {
        let r = req("filters=%7B%22service%22%3A%7B%22web%22%3Atrue%7D%7D");
        let f = r.filters(&["service"]).unwrap();
        assert_eq!(f["service"], ["web"]);
        let r = req(r#"filters={"node":["n1","n2"]}"#);
        assert_eq!(r.filters(&["node"]).unwrap()["node"], ["n1", "n2"]);
    }

    #[test]
    fn bad_parameters_are_named() {
        let e = req(r#"filters={"colour":["red"]}"#)
            .filters(&["service"])
            .unwrap_err();
        assert!(e.to_string().contains("invalid filter 'colour'"), "{e}");
        assert!(req("filters=nope").filters(&[]).is_err());
        let e = req("version=x").version().unwrap_err();
        assert!(e.to_string().starts_with("version:"), "{e}");
        assert!(req("").version().is_err());
        assert_eq!(req("version=12").version().unwrap(), 12);
    }
}
