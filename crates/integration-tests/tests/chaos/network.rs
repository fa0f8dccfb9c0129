//! A private network of namespaces, so a scenario can cut links between services:
//!
//! ```text
//!   test process (own namespace, 10.a.b.1) ──┐
//!   <prefix>-core  etcd, controllers, coordinators (10.a.b.2)
//!   <prefix>-b1/2/3  one broker each (10.a.b.11, .12, .13)
//! ```
//!
//! Every namespace joins one bridge inside the core namespace through a veth pair. Services
//! listen only inside the namespaces; the test reaches them over its own veth. Faults are
//! iptables rules inside a broker's namespace. Everything is removed on drop.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::common::host::Host;

/// How many brokers get a namespace.
const BROKERS: usize = 3;

pub struct Network {
    prefix: String,
    /// `10.a.b`, the /24 every address is in.
    subnet: String,
    /// The test's own end of its veth pair.
    root_link: String,
}

/// Runs `ip`/`iptables` `args`; the error output when it fails.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl Network {
    /// Creates the namespaces and links; `Err` says why it cannot (not root, no `ip`).
    pub fn create() -> Result<Self, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let network = Self {
            prefix: format!("strom-chaos-{pid}-{n}"),
            subnet: format!("10.{}.{}", 100 + pid % 150, n % 256),
            root_link: format!("sc{}r{n}", pid % 100_000),
        };
        network.build().inspect_err(|_| network.remove())?;
        Ok(network)
    }

    fn build(&self) -> Result<(), String> {
        let core = self.netns("core");
        run("ip", &["netns", "add", &core])?;
        let ip_core = |args: &[&str]| {
            let mut all = vec!["-n", core.as_str()];
            all.extend_from_slice(args);
            run("ip", &all)
        };
        ip_core(&["link", "set", "lo", "up"])?;
        ip_core(&["link", "add", "br0", "type", "bridge"])?;
        ip_core(&["link", "set", "br0", "up"])?;
        ip_core(&[
            "addr",
            "add",
            &format!("{}.2/24", self.subnet),
            "dev",
            "br0",
        ])?;
        // The test's own link.
        run(
            "ip",
            &[
                "link",
                "add",
                &self.root_link,
                "type",
                "veth",
                "peer",
                "name",
                "vroot",
                "netns",
                &core,
            ],
        )?;
        ip_core(&["link", "set", "vroot", "master", "br0", "up"])?;
        let root_address = format!("{}.1/24", self.subnet);
        run(
            "ip",
            &["addr", "add", &root_address, "dev", &self.root_link],
        )?;
        run("ip", &["link", "set", &self.root_link, "up"])?;
        for index in 0..BROKERS {
            let ns = self.netns(&format!("b{}", index + 1));
            let port = format!("vb{}", index + 1);
            run("ip", &["netns", "add", &ns])?;
            run(
                "ip",
                &[
                    "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port,
                    "netns", &core,
                ],
            )?;
            ip_core(&["link", "set", &port, "master", "br0", "up"])?;
            let address = format!("{}/24", self.broker(index).ip);
            run("ip", &["-n", &ns, "addr", "add", &address, "dev", "eth0"])?;
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    fn netns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// Where etcd, the controllers and the coordinators run.
    pub fn core(&self) -> Host {
        Host {
            ip: format!("{}.2", self.subnet),
            netns: Some(self.netns("core")),
        }
    }

    /// Where broker `index` (0-based) runs.
    pub fn broker(&self, index: usize) -> Host {
        Host {
            ip: format!("{}.{}", self.subnet, 11 + index),
            netns: Some(self.netns(&format!("b{}", index + 1))),
        }
    }

    /// Drops every packet between broker `index` and each host in `peers`, both ways.
    pub fn cut(&self, index: usize, peers: &[Host]) {
        let ns = self.netns(&format!("b{}", index + 1));
        for peer in peers {
            for (chain, side) in [("INPUT", "-s"), ("OUTPUT", "-d")] {
                let rule = [
                    "netns", "exec", &ns, "iptables", "-A", chain, side, &peer.ip, "-j", "DROP",
                ];
                run("ip", &rule).unwrap();
            }
        }
    }

    /// Removes every rule [`Network::cut`] added to broker `index`.
    pub fn heal(&self, index: usize) {
        let ns = self.netns(&format!("b{}", index + 1));
        for chain in ["INPUT", "OUTPUT"] {
            run("ip", &["netns", "exec", &ns, "iptables", "-F", chain]).unwrap();
        }
    }

    fn remove(&self) {
        // Deleting a namespace deletes the veth ends in it, and so their peers.
        let _ = run("ip", &["link", "del", &self.root_link]);
        for index in 0..BROKERS {
            let _ = run(
                "ip",
                &["netns", "del", &self.netns(&format!("b{}", index + 1))],
            );
        }
        let _ = run("ip", &["netns", "del", &self.netns("core")]);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.remove();
    }
}
