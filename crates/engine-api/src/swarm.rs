//! `POST /swarm/update` (join token, unlock key and root CA rotation, and the settings this
//! swarm can change: node certificate expiry, task history retention, autolock), `GET
//! /swarm/unlockkey`, `POST /swarm/unlock` (through the Lock service) and `POST
//! /swarm/leave` (refused, pointing to swarmd). All through the control API's
//! UpdateCluster, which validates and makes the tokens and keys; this module never generates
//! a secret itself. `GET /swarm` is in `system`.

use crate::backend::Backend;
use crate::convert::ms_to_ns;
use crate::error::ApiError;
use crate::reply::Reply;
use crate::request::Request;
use crate::types as d;
use hyper::StatusCode;
use serde_json::json;
use swarm_api::*;
use tonic::Request as Rpc;

fn bad(field: &str, why: &str) -> ApiError {
    ApiError::BadRequest(format!("{field}: {why}"))
}

/// Refuses `field` unless the value sent is what the swarm has.
fn unchanged<T: PartialEq + std::fmt::Debug>(
    field: &str,
    sent: T,
    have: T,
) -> Result<(), ApiError> {
    if sent == have {
        Ok(())
    } else {
        Err(bad(
            field,
            &format!("cannot be changed here (it is {have:?}, {sent:?} was sent)"),
        ))
    }
}

/// What an update asks for: the current spec with the three settings this swarm honours
/// replaced, and whether to rotate the root CA.
#[derive(Debug, PartialEq)]
pub struct Asked {
    pub spec: ClusterSpec,
    pub rotate_root: bool,
}

/// Reads an update. Every field other than the three settings must be absent or equal what
/// `GET /swarm` shows. `CAConfig.ForceRotate` is Docker's rotation counter: this swarm shows
/// 0, so any other value (the CLI's `swarm ca --rotate` sends what it read plus one) asks for
/// a rotation.
pub fn spec_from_docker(cur: &ClusterSpec, s: d::SwarmSpec) -> Result<Asked, ApiError> {
    let mut rotate_root = false;
    let mut spec = cur.clone();
    let a = cur.annotations.clone().unwrap_or_default();
    if !s.name.is_empty() {
        unchanged("Name", s.name.as_str(), a.name.as_str())?;
    }
    if let Some(labels) = s.labels {
        let have: d::Labels = a.labels.into_iter().collect();
        unchanged("Labels", labels, have)?;
    }
    if let Some(r) = s.raft {
        let have = cur.raft.unwrap_or_default();
        unchanged(
            "Raft.SnapshotInterval",
            r.snapshot_interval,
            have.snapshot_interval,
        )?;
        unchanged(
            "Raft.LogEntriesForSlowFollowers",
            r.log_entries_for_slow_followers,
            have.log_entries_for_slow_followers,
        )?;
        unchanged(
            "Raft.ElectionTick",
            r.election_tick,
            i64::from(have.election_tick),
        )?;
        unchanged(
            "Raft.HeartbeatTick",
            r.heartbeat_tick,
            i64::from(have.heartbeat_tick),
        )?;
        unchanged(
            "Raft.KeepOldSnapshots",
            r.keep_old_snapshots.unwrap_or(0),
            0,
        )?;
    }
    if let Some(disp) = s.dispatcher {
        let have = cur.dispatcher.unwrap_or_default().heartbeat_period_ms;
        unchanged(
            "Dispatcher.HeartbeatPeriod",
            disp.heartbeat_period,
            ms_to_ns(have),
        )?;
    }
    if let Some(t) = s.task_defaults {
        if t.log_driver.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(bad(
                "TaskDefaults.LogDriver",
                "a default log driver for tasks is not supported",
            ));
        }
    }
    if let Some(ca) = s.ca_config {
        if ca.external_cas.as_ref().is_some_and(|v| !v.is_empty()) {
            return Err(bad(
                "CAConfig.ExternalCAs",
                "external CAs are not supported",
            ));
        }
        if !ca.signing_ca_cert.is_empty() || !ca.signing_ca_key.is_empty() {
            return Err(bad(
                "CAConfig.SigningCACert",
                "a root CA of your own is not supported",
            ));
        }
        rotate_root = ca.force_rotate != 0;
        if ca.node_cert_expiry < 0 {
            return Err(bad("CAConfig.NodeCertExpiry", "must not be negative"));
        }
        spec.ca_config = Some(CaConfig {
            node_cert_expiry_ms: ca.node_cert_expiry / 1_000_000,
        });
    }
    if let Some(limit) = s.orchestration.and_then(|o| o.task_history_retention_limit) {
        spec.orchestration = Some(OrchestrationConfig {
            task_history_retention_limit: limit,
        });
    }
    if let Some(e) = s.encryption_config {
        spec.encryption = Some(EncryptionConfig {
            auto_lock_managers: e.auto_lock_managers,
        });
    }
    Ok(Asked { spec, rotate_root })
}

pub async fn update(b: &Backend, r: &Request) -> Result<Reply, ApiError> {
    let version = r.version()?;
    let (worker, manager, unlock_key) = (
        r.go_bool("rotateWorkerToken")?,
        r.go_bool("rotateManagerToken")?,
        r.go_bool("rotateManagerUnlockKey")?,
    );
    let body: d::SwarmSpec = r.json()?;
    let cluster = b.cluster().await?;
    let asked = spec_from_docker(&cluster.spec.clone().unwrap_or_default(), body)?;
    let rotation = ClusterRotation {
        worker_join_token: worker,
        manager_join_token: manager,
        root_ca: asked.rotate_root,
        manager_unlock_key: unlock_key,
    };
    b.control()
        .update_cluster(Rpc::new(UpdateClusterRequest {
            cluster_id: cluster.id.clone(),
            cluster_version: version,
            spec: Some(asked.spec),
            rotation: Some(rotation),
        }))
        .await?;
    tracing::info!(cluster = %cluster.id, "docker API: swarm updated");
    Ok(Reply::empty(StatusCode::OK))
}

pub async fn unlock_key(b: &Backend) -> Result<Reply, ApiError> {
    let key = b
        .control()
        .get_unlock_key(Rpc::new(GetUnlockKeyRequest {}))
        .await?
        .into_inner()
        .unlock_key;
    Ok(Reply::ok(&json!({ "UnlockKey": key })))
}

/// Whatever this manager's Lock service says: one serving this API is running, so
/// unlocked, and it says so (409, as Docker's "swarm is not locked").
pub async fn unlock(b: &Backend, r: &Request) -> Result<Reply, ApiError> {
    let body: d::UnlockRequest = r.json()?;
    let lock = b
        .lock()
        .ok_or_else(|| ApiError::Conflict("this manager is not locked".into()))?;
    lock.unlock(Rpc::new(UnlockRequest {
        unlock_key: body.unlock_key,
    }))
    .await?;
    Ok(Reply::empty(StatusCode::OK))
}

/// A node leaves by stopping its swarmd, not through this API.
pub fn leave() -> ApiError {
    ApiError::Unavailable(
        "leaving the swarm is not done through this API: stop swarmd on this node, then remove \
         it from a manager (`swarmctl node rm NODE`)"
            .into(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn current() -> ClusterSpec {
        ClusterSpec {
            annotations: Some(Annotations {
                name: "default".into(),
                labels: Default::default(),
            }),
            raft: Some(RaftConfig {
                snapshot_interval: 10000,
                log_entries_for_slow_followers: 500,
                heartbeat_tick: 1,
                election_tick: 10,
            }),
            dispatcher: Some(DispatcherConfig {
                heartbeat_period_ms: 5000,
            }),
            ..Default::default()
        }
    }

    fn body(v: serde_json::Value) -> d::SwarmSpec {
        crate::gojson::from_slice(v.to_string().as_bytes()).unwrap()
    }

    /// What the CLI sends back: GET /swarm's spec with its flags applied.
    fn as_shown() -> serde_json::Value {
        json!({
            "Name": "default", "Labels": {},
            "Orchestration": {"TaskHistoryRetentionLimit": 5},
            "Raft": {"SnapshotInterval": 10000, "LogEntriesForSlowFollowers": 500,
                     "HeartbeatTick": 1, "ElectionTick": 10},
            "Dispatcher": {"HeartbeatPeriod": 5_000_000_000i64},
            "CAConfig": {"NodeCertExpiry": 7_776_000_000_000_000i64},
            "TaskDefaults": {},
            "EncryptionConfig": {"AutoLockManagers": true}
        })
    }

    #[test]
    fn the_three_settings_apply_and_what_is_shown_passes() {
        let asked = spec_from_docker(&current(), body(as_shown())).unwrap();
        assert!(!asked.rotate_root);
        let spec = asked.spec;
        let limit = spec.orchestration.unwrap().task_history_retention_limit;
        assert_eq!(limit, 5);
        assert_eq!(spec.ca_config.unwrap().node_cert_expiry_ms, 7_776_000_000);
        assert!(spec.encryption.unwrap().auto_lock_managers);
        assert_eq!(spec.raft, current().raft);
        // Absent parts are left as they are.
        let asked = spec_from_docker(&current(), body(json!({}))).unwrap();
        assert_eq!(asked.spec, current());
        // `swarm ca --rotate`: the counter shown (0) plus one.
        let mut b = as_shown();
        b["CAConfig"]["ForceRotate"] = json!(1);
        assert!(spec_from_docker(&current(), body(b)).unwrap().rotate_root);
    }

    #[test]
    fn what_cannot_change_is_refused_by_field() {
        let cases = [
            ("/Name", json!("prod"), "Name:"),
            ("/Labels", json!({"a": "b"}), "Labels:"),
            ("/Raft/ElectionTick", json!(20), "Raft.ElectionTick:"),
            ("/Raft/KeepOldSnapshots", json!(2), "Raft.KeepOldSnapshots:"),
            (
                "/Dispatcher/HeartbeatPeriod",
                json!(1),
                "Dispatcher.HeartbeatPeriod:",
            ),
            (
                "/CAConfig/ExternalCAs",
                json!([{"URL": "x"}]),
                "CAConfig.ExternalCAs:",
            ),
            (
                "/CAConfig/SigningCACert",
                json!("PEM"),
                "CAConfig.SigningCACert:",
            ),
            (
                "/TaskDefaults/LogDriver",
                json!({"Name": "x"}),
                "TaskDefaults.LogDriver:",
            ),
        ];
        for (ptr, v, field) in cases {
            let mut b = as_shown();
            let (parent, key) = ptr.rsplit_once('/').unwrap();
            b.pointer_mut(parent).unwrap()[key] = v;
            let e = spec_from_docker(&current(), body(b)).unwrap_err();
            assert_eq!(e.status().as_u16(), 400);
            assert!(e.to_string().starts_with(field), "{ptr}: {e}");
        }
    }
}
