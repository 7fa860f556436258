//! From method and path to the operation asked for: strips the optional `/vX.Y` prefix
//! (refusing versions outside what we accept) and names the route. Owns no handling.

use crate::convert::payloads::Kind;
use crate::error::ApiError;
use crate::{MAX_ACCEPTED_API_VERSION, MIN_API_VERSION};
use hyper::Method;

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Ping,
    Version,
    Info,
    Events,
    Swarm,
    /// `swarm init` and `swarm join`: this node always is in a swarm already.
    SwarmMembership,
    SwarmLeave,
    UpdateSwarm,
    UnlockKey,
    Unlock,
    ListNodes,
    GetNode(String),
    UpdateNode(String),
    RemoveNode(String),
    ListServices,
    CreateService,
    GetService(String),
    UpdateService(String),
    RemoveService(String),
    ServiceLogs(String),
    ListTasks,
    GetTask(String),
    TaskLogs(String),
    ListNetworks,
    CreateNetwork,
    GetNetwork(String),
    RemoveNetwork(String),
    /// `/secrets` and `/configs`, told apart by their kind.
    ListPayloads(Kind),
    CreatePayload(Kind),
    GetPayload(Kind, String),
    UpdatePayload(Kind, String),
    RemovePayload(Kind, String),
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The path without its version prefix, after checking the version.
fn strip_version(path: &str) -> Result<&str, ApiError> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok(path);
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let Some(v) = parse_version(ver) else {
        // Not a version at all (no route starts with /v otherwise): let routing say 404.
        return Ok(path);
    };
    let min = parse_version(MIN_API_VERSION).unwrap_or((1, 24));
    if v < min {
        return Err(ApiError::BadRequest(format!(
            "client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}"
        )));
    }
    if v > MAX_ACCEPTED_API_VERSION {
        let (a, b) = MAX_ACCEPTED_API_VERSION;
        return Err(ApiError::BadRequest(format!(
            "client version {ver} is too new. Maximum supported API version is {a}.{b}"
        )));
    }
    Ok(tail)
}

pub fn route(method: &Method, path: &str) -> Result<Route, ApiError> {
    let path = strip_version(path)?;
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    let delete = method == Method::DELETE;
    let id = |s: &str| s.to_string();
    let r = match segs.as_slice() {
        ["_ping"] if get => Route::Ping,
        ["version"] if get => Route::Version,
        ["info"] if get => Route::Info,
        ["events"] if get => Route::Events,
        ["swarm"] if get => Route::Swarm,
        ["swarm", "init" | "join"] if post => Route::SwarmMembership,
        ["swarm", "leave"] if post => Route::SwarmLeave,
        ["swarm", "update"] if post => Route::UpdateSwarm,
        ["swarm", "unlockkey"] if get => Route::UnlockKey,
        ["swarm", "unlock"] if post => Route::Unlock,
        ["nodes"] if get => Route::ListNodes,
        ["nodes", n] if get => Route::GetNode(id(n)),
        ["nodes", n] if delete => Route::RemoveNode(id(n)),
        ["nodes", n, "update"] if post => Route::UpdateNode(id(n)),
        ["services"] if get => Route::ListServices,
        ["services", "create"] if post => Route::CreateService,
        ["services", s] if get => Route::GetService(id(s)),
        ["services", s] if delete => Route::RemoveService(id(s)),
        ["services", s, "update"] if post => Route::UpdateService(id(s)),
        ["services", s, "logs"] if get => Route::ServiceLogs(id(s)),
        ["tasks"] if get => Route::ListTasks,
        ["tasks", t] if get => Route::GetTask(id(t)),
        ["tasks", t, "logs"] if get => Route::TaskLogs(id(t)),
        ["networks"] if get => Route::ListNetworks,
        ["networks", "create"] if post => Route::CreateNetwork,
        ["networks", n] if get => Route::GetNetwork(id(n)),
        ["networks", n] if delete => Route::RemoveNetwork(id(n)),
        [kind @ ("secrets" | "configs"), rest @ ..] => {
            let kind = if *kind == "secrets" {
                Kind::Secret
            } else {
                Kind::Config
            };
            match rest {
                [] if get => Route::ListPayloads(kind),
                ["create"] if post => Route::CreatePayload(kind),
                [s] if get => Route::GetPayload(kind, id(s)),
                [s] if delete => Route::RemovePayload(kind, id(s)),
                [s, "update"] if post => Route::UpdatePayload(kind, id(s)),
                _ => return Err(not_found(method, path)),
            }
        }
        _ => return Err(not_found(method, path)),
    };
    Ok(r)
}

fn not_found(method: &Method, path: &str) -> ApiError {
    ApiError::NotFound(format!(
        "page not found: {method} {path} is not part of the swarm subset served here"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn versioned_and_bare_paths_route_alike() {
        assert_eq!(route(&Method::HEAD, "/_ping").unwrap(), Route::Ping);
        assert_eq!(
            route(&Method::GET, "/v1.41/services/web").unwrap(),
            Route::GetService("web".into())
        );
        assert_eq!(
            route(&Method::POST, "/v1.50/nodes/abc/update").unwrap(),
            Route::UpdateNode("abc".into())
        );
        assert_eq!(route(&Method::GET, "/tasks").unwrap(), Route::ListTasks);
        assert_eq!(
            route(&Method::POST, "/v1.41/networks/create").unwrap(),
            Route::CreateNetwork
        );
        assert_eq!(
            route(&Method::GET, "/v1.41/networks/app").unwrap(),
            Route::GetNetwork("app".into())
        );
        assert_eq!(
            route(&Method::DELETE, "/networks/app").unwrap(),
            Route::RemoveNetwork("app".into())
        );
        assert_eq!(
            route(&Method::GET, "/networks/").unwrap(),
            Route::ListNetworks
        );
    }

    #[test]
    fn versions_out_of_range_and_unknown_routes_are_refused() {
        let old = route(&Method::GET, "/v1.12/nodes").unwrap_err();
        assert_eq!(old.status().as_u16(), 400);
        assert!(old.to_string().contains("too old"));
        let new = route(&Method::GET, "/v1.99/nodes").unwrap_err();
        assert!(new.to_string().contains("too new"));
        let missing = route(&Method::GET, "/v1.41/containers/json").unwrap_err();
        assert_eq!(missing.status().as_u16(), 404);
        let wrong_method = route(&Method::PUT, "/services/create").unwrap_err();
        assert_eq!(wrong_method.status().as_u16(), 404);
        assert_eq!(
            route(&Method::POST, "/v1.41/secrets/abc/update").unwrap(),
            Route::UpdatePayload(Kind::Secret, "abc".into())
        );
        assert_eq!(
            route(&Method::GET, "/configs").unwrap(),
            Route::ListPayloads(Kind::Config)
        );
        assert!(route(&Method::PUT, "/configs/create").is_err());
        // Containers join networks on an engine, not here.
        let connect = route(&Method::POST, "/networks/app/connect").unwrap_err();
        assert_eq!(connect.status().as_u16(), 404);
    }
}
