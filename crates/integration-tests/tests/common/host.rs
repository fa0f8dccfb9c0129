//! Where a test service runs: the address it listens on and, unless it shares the test's own
//! network namespace, the namespace it is started in (`ip netns exec`).

use std::ffi::OsStr;

use tokio::process::Command;

use super::free_port;

/// A service's place on the test network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The address it listens on.
    pub ip: String,
    /// The network namespace it runs in; `None` for the test's own.
    pub netns: Option<String>,
}

impl Host {
    /// Loopback in the test's own namespace.
    pub fn loopback() -> Self {
        Self {
            ip: "127.0.0.1".to_owned(),
            netns: None,
        }
    }

    /// A fresh `ip:port` on this host.
    pub fn address(&self) -> String {
        format!("{}:{}", self.ip, free_port())
    }

    /// A command running `program` on this host. `ip netns exec` replaces itself with the
    /// program, so the child's pid is the program's and signals reach it.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        match &self.netns {
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns]).arg(program);
                command
            }
            None => Command::new(program),
        }
    }
}
