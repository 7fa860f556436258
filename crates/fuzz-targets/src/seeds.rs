//! Well-formed inputs for each target, the corpus's starting points: a fuzzer mutating a valid
//! service spec reaches the handlers' checks much sooner than one starting from nothing.
//! `tests/corpus.rs` writes them into `fuzz/corpus/` (on request) and mutates them in CI.

use prost::Message;
use swarm_api::*;

fn with_selector(selector: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![selector];
    v.extend_from_slice(body);
    v
}

fn joined(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&0u8)
}

/// A standard query for `name`, type A, recursion desired.
fn dns_query(name: &str, qtype: u16) -> Vec<u8> {
    let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    p
}

/// The starting inputs of target `name`.
pub fn seeds(name: &str) -> Vec<Vec<u8>> {
    match name {
        "expressions" => vec![
            joined(&[b"node.role==manager", b"node.labels.zone!=b", b"node.hostname==x"]),
            joined(&[b"engine.labels.os == linux", b"spread=node.labels.zone"]),
        ],
        "tokens" => {
            let mut v = vec![
                format!("{}{}", swarm_ca::UNLOCK_KEY_PREFIX, "0f".repeat(32)).into_bytes(),
            ];
            if let Ok(root) = swarm_ca::RootCa::generate() {
                v.push(swarm_ca::generate_join_token(&root).into_bytes());
            }
            v
        }
        "sealed_file" => {
            let key = swarm_ca::UnlockKey::parse(&format!(
                "{}{}",
                swarm_ca::UNLOCK_KEY_PREFIX,
                "ab".repeat(32)
            ));
            let sealed = key.ok().and_then(|k| k.seal("tls-key", b"a key").ok());
            sealed.map(|s| with_selector(0, &s)).into_iter().collect()
        }
        "dns_query" => vec![
            dns_query("web", 1),
            dns_query("tasks.web", 1),
            dns_query("alias", 28),
        ],
        "control_request" => vec![
            with_selector(
                6,
                &CreateServiceRequest {
                    spec: Some(swarm_testkit::fixtures::service_spec("api")),
                }
                .encode_to_vec(),
            ),
            with_selector(
                17,
                &CreateNetworkRequest {
                    spec: Some(NetworkSpec {
                        annotations: Some(Annotations {
                            name: "front".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                }
                .encode_to_vec(),
            ),
            with_selector(
                4,
                &GetServiceRequest {
                    service_id: "svc1".into(),
                }
                .encode_to_vec(),
            ),
        ],
        "engine_api_request" => vec![
            with_selector(
                1,
                &joined(&[
                    b"/v1.41/services/create",
                    b"",
                    br#"{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox"},"Placement":{"Constraints":["node.role==manager"]}},"Mode":{"Replicated":{"Replicas":2}},"EndpointSpec":{"Ports":[{"TargetPort":80,"PublishedPort":8080}]}}"#,
                ]),
            ),
            with_selector(
                0,
                &joined(&[b"/v1.41/services", br#"filters={"name":["web"]}"#, b""]),
            ),
            with_selector(
                0,
                &joined(&[b"/v1.41/tasks", br#"filters={"desired-state":["running"]}"#, b""]),
            ),
            with_selector(
                1,
                &joined(&[
                    b"/v1.41/networks/create",
                    b"",
                    br#"{"Name":"net","Driver":"overlay","Attachable":true}"#,
                ]),
            ),
            with_selector(
                1,
                &joined(&[
                    b"/v1.41/secrets/create",
                    b"",
                    br#"{"Name":"s","Data":"aGVsbG8="}"#,
                ]),
            ),
        ],
        "raft_rpc" => vec![with_selector(1, &[1, 0, 1, 1, 1, 0, 0, 0])],
        "ca_csr" => {
            let mut v = Vec::new();
            if let Ok((_key, csr)) = swarm_ca::new_key_and_csr() {
                v.push(with_selector(0, csr.as_bytes()));
            }
            if let Ok(root) = swarm_ca::RootCa::generate() {
                v.push(with_selector(1, root.cert_der()));
                v.push(with_selector(3, root.cert_pem().as_bytes()));
            }
            v
        }
        "raft_disk" => raft_disk(),
        "node_rpc" => {
            // A selector of 8 or more swaps in w1's session or the worker token.
            let report = UpdateTaskStatusRequest {
                session_id: String::new(),
                updates: vec![TaskStatusUpdate {
                    task_id: "t1".into(),
                    status: Some(TaskStatus {
                        state: TaskState::Running as i32,
                        message: "started".into(),
                        ..Default::default()
                    }),
                }],
            };
            let mut v = vec![
                with_selector(0, &SessionRequest::default().encode_to_vec()),
                with_selector(9, &[]),
                with_selector(10, &report.encode_to_vec()),
                with_selector(11, &[]),
                with_selector(12, &[]),
                with_selector(5, &[]),
            ];
            if let Ok((_key, csr)) = swarm_ca::new_key_and_csr() {
                let join = IssueNodeCertificateRequest {
                    csr: csr.into_bytes(),
                    token: String::new(),
                    hostname: "w9".into(),
                    addr: "10.0.0.9:4242".into(),
                };
                // 14: a join with the real token; 6: a renewal by w1 (no token).
                v.push(with_selector(14, &join.encode_to_vec()));
                v.push(with_selector(6, &join.encode_to_vec()));
            }
            v
        }
        "cli_flags" => vec![
            joined(&[
                b"--name", b"web", b"--image", b"busybox", b"--replicas", b"3",
                b"--cpu-limit", b"0.5", b"--memory-limit", b"64MiB",
                b"--cpu-reservation", b"0.25", b"--memory-reservation", b"1g",
                b"--mount", b"type=bind,source=/srv,target=/data,readonly",
                b"--publish", b"8080:80/tcp", b"-p", b"published=53,target=53,protocol=udp,mode=host",
                b"--env", b"A=1", b"--label", b"tier=front",
                b"--constraint", b"node.role==worker", b"--placement-pref", b"spread=node.labels.zone",
                b"--restart-condition", b"on-failure", b"--restart-delay", b"5s",
                b"--restart-max-attempts", b"3", b"--restart-window", b"1m30s",
            ]),
            joined(&[
                b"--update-parallelism", b"2", b"--update-delay", b"10s",
                b"--update-on-failure", b"rollback", b"--update-order", b"start-first",
                b"--update-monitor", b"500ms", b"--update-max-failure-ratio", b"0.2",
                b"--rollback-parallelism", b"0", b"--health-cmd", b"curl -f localhost",
                b"--health-interval", b"5s", b"--health-retries", b"3",
                b"--stop-grace-period", b"20s", b"--stop-signal", b"SIGINT",
                b"--secret", b"pw:pw.txt", b"--config", b"conf",
                b"--network", b"front,alias=api", b"--endpoint-mode", b"dnsrr",
                b"--mode", b"replicated-job", b"--max-concurrent", b"2",
            ]),
        ],
        _ => Vec::new(),
    }
}

/// A store's content with a row of every kind, as a snapshot holds it.
fn store_content() -> Vec<u8> {
    use swarm_testkit::fixtures as f;
    StoreSnapshot {
        nodes: vec![f::node("n1")],
        services: vec![f::service("s1", "web")],
        tasks: vec![f::task("t1", "s1"), f::task("t2", "s1")],
        clusters: vec![Cluster::default()],
        secrets: vec![f::secret("c1", "pw", b"x")],
        configs: vec![f::config("g1", "conf", b"y")],
        networks: vec![f::network("w1", "front", "10.0.9.0/24")],
    }
    .encode_to_vec()
}

/// Frames as `raft_disk::length_prefixed` cuts them.
fn length_prefixed(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    for p in parts {
        v.extend_from_slice(&u16::try_from(p.len()).unwrap_or(u16::MAX).to_le_bytes());
        v.extend_from_slice(p);
    }
    v
}

fn raft_disk() -> Vec<Vec<u8>> {
    let index = 9u8;
    let content = store_content();
    let mut v = vec![with_selector(5, &content)];
    if let Ok(s) = swarm_raft::fuzzing::samples(u64::from(index), &content) {
        let at = |selector: u8, body: &[u8]| {
            let mut b = vec![selector, index];
            b.extend_from_slice(body);
            b
        };
        let mut entry = vec![1u8];
        entry.extend_from_slice(&s.entry_plaintext);
        v.push(at(1, &entry));
        v.push(at(2, &s.snapshot_file));
        v.push(at(3, &length_prefixed(&s.snapshot_frames)));
    }
    v
}
