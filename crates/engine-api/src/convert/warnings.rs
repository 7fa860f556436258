//! The `Warnings` of a create or update answer: fields of the Docker spec that were accepted
//! but have no effect here, each named by its JSON path. Which fields those are is decided
//! where the spec is translated; this file only knows what "set" means for raw JSON.

use serde_json::Value;

#[derive(Debug, Default)]
pub struct Warnings(Vec<String>);

impl Warnings {
    /// Warns that `field` is not supported when `value` carries anything: the Docker CLI sends
    /// empty objects, zeroes and `false` for options it was not given, which mean "unset".
    pub fn unsupported(&mut self, field: &str, value: Option<&Value>) {
        if value.is_some_and(is_set) {
            self.0.push(format!(
                "{field}: not supported by this swarm; accepted and ignored"
            ));
        }
    }

    /// Warns about `field` with a reason of the caller's.
    pub fn push(&mut self, field: &str, why: &str) {
        self.0.push(format!("{field}: {why}"));
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// Whether a JSON value says anything: not null, nor an empty object, list or string, nor
/// zero or false, nor made only of such values.
pub fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_set),
        Value::Object(o) => o.values().any(is_set),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_shapes_are_unset() {
        for v in [
            json!(null),
            json!({}),
            json!([]),
            json!({"A": {}, "B": 0, "C": false}),
        ] {
            assert!(!is_set(&v), "{v}");
        }
        for v in [
            json!({"A": {"B": "x"}}),
            json!([{"Kind": "gpu"}]),
            json!(true),
        ] {
            assert!(is_set(&v), "{v}");
        }
        let mut w = Warnings::default();
        w.unsupported("A.B", Some(&json!({})));
        w.unsupported("A.C", Some(&json!({"Disable": true})));
        w.unsupported("A.D", None);
        assert_eq!(
            w.into_vec(),
            ["A.C: not supported by this swarm; accepted and ignored"]
        );
    }
}
