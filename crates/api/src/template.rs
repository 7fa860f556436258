//! Service templates, as Docker has them: Go-template placeholders in a container's hostname,
//! environment values, mount sources and targets, and label values, filled in per task on the
//! node that runs it (`{{.Node.Hostname}}`, `{{.Task.Slot}}`, ...).
//!
//! Only the subset Docker documents is understood — field paths of the template context and
//! `index` into the service's labels — and unlike Docker, a template naming anything else is
//! refused when the spec is written ([`check`]), not when a task starts. Pure: the agent
//! builds the [`TemplateContext`] and applies [`expand`]; validation calls [`check`].

use std::collections::BTreeMap;

use crate::Task;

/// What a template can name, for one task on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateContext {
    pub service_id: String,
    pub service_name: String,
    pub service_labels: BTreeMap<String, String>,
    pub node_id: String,
    pub node_hostname: String,
    pub node_os: String,
    pub node_architecture: String,
    pub task_id: String,
    /// `<service>.<slot or node ID>.<task ID>`, the task's container name.
    pub task_name: String,
    /// The slot, or the node ID for a task of a global service (it has no slot).
    pub task_slot: String,
}

impl TemplateContext {
    /// The context of `task` on the node described by `hostname`, `os` and `architecture`.
    pub fn of_task(task: &Task, hostname: &str, os: &str, architecture: &str) -> TemplateContext {
        let service = task.service_annotations.as_ref();
        let service_name = match service.map(|a| a.name.as_str()) {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => task.service_name.clone(),
        };
        TemplateContext {
            service_id: task.service_id.clone(),
            service_name,
            service_labels: service
                .map(|a| {
                    a.labels
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            node_id: task.node_id.clone(),
            node_hostname: hostname.to_string(),
            node_os: os.to_string(),
            node_architecture: architecture.to_string(),
            task_id: task.id.clone(),
            task_name: format!("{}.{}", crate::names::task_name(task), task.id),
            task_slot: if task.slot > 0 {
                task.slot.to_string()
            } else {
                task.node_id.clone()
            },
        }
    }

    fn field(&self, path: &str) -> Option<String> {
        let v = match path {
            ".Service.ID" => &self.service_id,
            ".Service.Name" => &self.service_name,
            ".Service.Labels" => return Some(go_map(&self.service_labels)),
            ".Node.ID" => &self.node_id,
            ".Node.Hostname" => &self.node_hostname,
            ".Node.Platform.OS" => &self.node_os,
            ".Node.Platform.Architecture" => &self.node_architecture,
            ".Task.ID" => &self.task_id,
            ".Task.Name" => &self.task_name,
            ".Task.Slot" => &self.task_slot,
            _ => return None,
        };
        Some(v.clone())
    }
}

/// A map printed as Go prints one: `map[a:1 b:2]`, keys in order.
fn go_map(m: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("map[{}]", pairs.join(" "))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template: unclosed action (a `{{{{` without its `}}}}`)")]
    Unclosed,
    #[error("template: empty action `{{{{}}}}`")]
    Empty,
    #[error("template: {0} is not a placeholder (use .Service.ID, .Service.Name, .Service.Labels, .Node.ID, .Node.Hostname, .Node.Platform.OS, .Node.Platform.Architecture, .Task.ID, .Task.Name or .Task.Slot)")]
    UnknownField(String),
    #[error("template: `{0}` is not understood (a placeholder, or index .Service.Labels \"KEY\")")]
    Unsupported(String),
}

/// One piece of a parsed template.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Field(&'a str),
    Label(String),
}

/// Refuses a template that [`expand`] could not fill in, for any task.
pub fn check(s: &str) -> Result<(), TemplateError> {
    parse(s).map(|_| ())
}

/// `s` with every placeholder replaced by its value in `ctx`.
pub fn expand(s: &str, ctx: &TemplateContext) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(s.len());
    for piece in parse(s)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Field(path) => {
                out.push_str(&ctx.field(path).ok_or_else(|| unknown(path))?);
            }
            Piece::Label(key) => {
                // Go's index of a map answers the empty string for a missing key.
                out.push_str(ctx.service_labels.get(&key).map_or("", String::as_str));
            }
        }
    }
    Ok(out)
}

fn unknown(path: &str) -> TemplateError {
    TemplateError::UnknownField(path.to_string())
}

fn parse(s: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = s;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[open + 2..];
        let close = close_of(after).ok_or(TemplateError::Unclosed)?;
        let mut action = &after[..close];
        // `{{- ` and ` -}}` trim the white space on that side, as in Go.
        if let Some(a) = action.strip_prefix("- ") {
            text = text.trim_end();
            action = a;
        }
        trim_next = false;
        if let Some(a) = action.strip_suffix(" -") {
            trim_next = true;
            action = a;
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        pieces.push(action_piece(action.trim())?);
        rest = &after[close + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// Where the action's `}}` is, skipping quoted strings (a label key may hold braces).
fn close_of(action: &str) -> Option<usize> {
    let bytes = action.as_bytes();
    let mut i = 0;
    let mut quoted = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'}' if !quoted && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn action_piece(action: &str) -> Result<Piece<'_>, TemplateError> {
    if action.is_empty() {
        return Err(TemplateError::Empty);
    }
    if let Some(key) = action.strip_prefix(".Service.Labels.") {
        // Go reads `.Map.key` as an index for keys that are identifiers.
        if !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Ok(Piece::Label(key.to_string()));
        }
        return Err(unknown(action));
    }
    if action.starts_with('.') {
        let probe = TemplateContext::default();
        return match probe.field(action) {
            Some(_) => Ok(Piece::Field(action)),
            None => Err(unknown(action)),
        };
    }
    let unsupported = || TemplateError::Unsupported(action.to_string());
    let Some(args) = action.strip_prefix("index ") else {
        return Err(unsupported());
    };
    let args = args.trim_start();
    let Some(key) = args.strip_prefix(".Service.Labels") else {
        return Err(unsupported());
    };
    let key = key.trim();
    if key.len() < 2 || !key.starts_with('"') || !key.ends_with('"') {
        return Err(unsupported());
    }
    let inner = &key[1..key.len() - 1];
    if inner.contains('"') && !inner.contains("\\\"") {
        return Err(unsupported());
    }
    Ok(Piece::Label(
        inner.replace("\\\"", "\"").replace("\\\\", "\\"),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ctx() -> TemplateContext {
        TemplateContext {
            service_id: "svc1".into(),
            service_name: "web".into(),
            service_labels: [
                ("tier".to_string(), "front".to_string()),
                ("a".into(), "1".into()),
            ]
            .into(),
            node_id: "node1".into(),
            node_hostname: "h1".into(),
            node_os: "linux".into(),
            node_architecture: "x86_64".into(),
            task_id: "t1".into(),
            task_name: "web.2.t1".into(),
            task_slot: "2".into(),
        }
    }

    #[test]
    fn every_placeholder_is_filled_in() {
        let cases = [
            ("{{.Service.ID}}", "svc1"),
            ("{{.Service.Name}}", "web"),
            ("{{.Service.Labels}}", "map[a:1 tier:front]"),
            ("{{.Node.ID}}", "node1"),
            ("{{.Node.Hostname}}", "h1"),
            ("{{.Node.Platform.OS}}", "linux"),
            ("{{.Node.Platform.Architecture}}", "x86_64"),
            ("{{.Task.ID}}", "t1"),
            ("{{.Task.Name}}", "web.2.t1"),
            ("{{.Task.Slot}}", "2"),
            ("{{ .Node.Hostname }}-{{.Task.Slot}}", "h1-2"),
            (r#"{{index .Service.Labels "tier"}}"#, "front"),
            (r#"{{index .Service.Labels "missing"}}"#, ""),
            ("{{.Service.Labels.tier}}", "front"),
            ("x {{- .Task.Slot -}} y", "x2y"),
            ("no placeholder", "no placeholder"),
            ("", ""),
        ];
        for (template, want) in cases {
            check(template).unwrap();
            assert_eq!(expand(template, &ctx()).unwrap(), want, "{template}");
        }
    }

    #[test]
    fn malformed_templates_are_refused_by_name() {
        let cases = [
            ("{{.Node.Hostname", "unclosed"),
            ("a {{}} b", "empty action"),
            ("{{.Node.Name}}", ".Node.Name is not a placeholder"),
            (
                "{{.Service.Labels.a.b}}",
                ".Service.Labels.a.b is not a placeholder",
            ),
            ("{{printf \"%s\" .Node.ID}}", "is not understood"),
            ("{{index .Node.ID \"x\"}}", "is not understood"),
            ("{{index .Service.Labels tier}}", "is not understood"),
        ];
        for (template, want) in cases {
            let err = check(template).unwrap_err().to_string();
            assert!(err.contains(want), "{template}: {err}");
            assert!(expand(template, &ctx()).is_err());
        }
    }

    #[test]
    fn a_task_gives_its_context() {
        let task = Task {
            id: "t9".into(),
            service_id: "s1".into(),
            service_name: "web".into(),
            node_id: "n1".into(),
            slot: 3,
            service_annotations: Some(crate::Annotations {
                name: "web".into(),
                labels: [("k".to_string(), "v".to_string())].into(),
            }),
            ..Default::default()
        };
        let c = TemplateContext::of_task(&task, "host", "linux", "aarch64");
        assert_eq!(c.task_name, "web.3.t9");
        assert_eq!(c.task_slot, "3");
        assert_eq!(c.service_labels.get("k").map(String::as_str), Some("v"));
        let global = Task { slot: 0, ..task };
        let c = TemplateContext::of_task(&global, "host", "linux", "aarch64");
        assert_eq!(c.task_slot, "n1");
        assert_eq!(c.task_name, "web.n1.t9");
    }
}
