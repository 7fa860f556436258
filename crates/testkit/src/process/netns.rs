//! Test hosts on one machine: a network namespace per node, joined pairwise by veth links (a
//! full mesh, no bridge, so the host's firewall never sees the traffic). Node i's address is
//! 10.213.S.i on its loopback, routed over the direct link to each peer. Cutting a node off
//! is an iptables DROP inside its own namespace; healing flushes it. Needs root (CI has it).

use std::process::Command;

fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

pub struct Mesh {
    tag: String,
    subnet: u8,
    pub n: usize,
}

impl Mesh {
    /// Creates `n` hosts, or says why it cannot (not root, no `ip`).
    pub fn new(n: usize) -> Result<Mesh, String> {
        // Unique per mesh of this process too: tests of one binary run side by side.
        static MESHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let k = MESHES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let tag = format!("{:04}{}", std::process::id() % 10_000, k % 100);
        let subnet = (std::process::id() % 200 + 20) as u8;
        let mesh = Mesh { tag, subnet, n };
        for i in 1..=n {
            let ns = mesh.ns(i);
            let _ = sh(&["ip", "netns", "del", &ns]);
            sh(&["ip", "netns", "add", &ns])?;
            sh(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"])?;
            sh(&[
                "ip",
                "netns",
                "exec",
                &ns,
                "ip",
                "addr",
                "add",
                &format!("{}/32", mesh.ip(i)),
                "dev",
                "lo",
            ])?;
        }
        for i in 1..=n {
            for j in (i + 1)..=n {
                let (a, b) = (mesh.veth(i, j), mesh.veth(j, i));
                sh(&[
                    "ip",
                    "link",
                    "add",
                    &a,
                    "netns",
                    &mesh.ns(i),
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &b,
                    "netns",
                    &mesh.ns(j),
                ])?;
                for (x, y, dev) in [(i, j, &a), (j, i, &b)] {
                    let ns = mesh.ns(x);
                    sh(&["ip", "netns", "exec", &ns, "ip", "link", "set", dev, "up"])?;
                    sh(&[
                        "ip",
                        "netns",
                        "exec",
                        &ns,
                        "ip",
                        "route",
                        "add",
                        &format!("{}/32", mesh.ip(y)),
                        "dev",
                        dev,
                        "src",
                        &mesh.ip(x),
                    ])?;
                }
            }
        }
        Ok(mesh)
    }

    pub fn ns(&self, i: usize) -> String {
        format!("sw{}n{i}", self.tag)
    }

    fn veth(&self, i: usize, j: usize) -> String {
        format!("sw{}v{i}{j}", self.tag)
    }

    pub fn ip(&self, i: usize) -> String {
        format!("10.213.{}.{i}", self.subnet)
    }

    /// Drops everything host `i` sends or receives, except on its own loopback.
    pub fn isolate(&self, i: usize) {
        let ns = self.ns(i);
        sh(&[
            "ip", "netns", "exec", &ns, "iptables", "-A", "INPUT", "!", "-i", "lo", "-j", "DROP",
        ])
        .unwrap();
        sh(&[
            "ip", "netns", "exec", &ns, "iptables", "-A", "OUTPUT", "!", "-o", "lo", "-j", "DROP",
        ])
        .unwrap();
    }

    /// One-way cut: host `i` drops every packet from host `j` (what `j` sends never arrives;
    /// what `i` sends still reaches `j`, so TCP from either side stalls but `j` keeps hearing
    /// `i`'s first packets). `heal(i)` undoes it.
    pub fn drop_from(&self, i: usize, j: usize) -> Result<(), String> {
        sh(&[
            "ip",
            "netns",
            "exec",
            &self.ns(i),
            "iptables",
            "-A",
            "INPUT",
            "-s",
            &self.ip(j),
            "-j",
            "DROP",
        ])
    }

    pub fn heal(&self, i: usize) {
        sh(&["ip", "netns", "exec", &self.ns(i), "iptables", "-F"]).unwrap();
    }

    /// The command prefix that runs a program on host `i`.
    pub fn exec_prefix(&self, i: usize) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.ns(i)]
    }

    /// Like `exec_prefix`, but entering only the network namespace: the program shares the
    /// machine's mounts, so the namespaces it makes (`ip netns add`) are seen by everyone,
    /// as on a real host.
    pub fn enter_prefix(&self, i: usize) -> Vec<String> {
        vec!["nsenter".into(), format!("--net=/run/netns/{}", self.ns(i))]
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        for i in 1..=self.n {
            let _ = sh(&["ip", "netns", "del", &self.ns(i)]);
        }
    }
}
