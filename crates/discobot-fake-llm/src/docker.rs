//! Finds the Docker bridge gateway: the host address containers reach as `host.docker.internal`.

use std::io::Read;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A stuck Docker daemon must not hang the test that asked.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// The address of the Docker bridge's gateway on this host, so a fake that containers must
/// reach can listen there (and only there). Asks `docker network inspect bridge`, then
/// falls back to the `docker0` interface from `ip -4 addr show docker0`; `None` when neither works.
pub fn docker_bridge_gateway() -> Option<IpAddr> {
    let inspect = run(
        "docker",
        &[
            "network",
            "inspect",
            "bridge",
            "--format",
            "{{(index .IPAM.Config 0).Gateway}}",
        ],
    );
    if let Some(gateway) = inspect.as_deref().and_then(parse_inspect_gateway) {
        return Some(gateway);
    }
    run("ip", &["-4", "addr", "show", "docker0"])
        .as_deref()
        .and_then(parse_ip_addr_show)
}

/// The gateway from `docker network inspect --format '{{(index .IPAM.Config 0).Gateway}}'`.
pub(crate) fn parse_inspect_gateway(output: &str) -> Option<IpAddr> {
    output.trim().parse().ok()
}

/// The first `inet` address of `ip -4 addr show <interface>`
/// (a line such as `    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0`).
pub(crate) fn parse_ip_addr_show(output: &str) -> Option<IpAddr> {
    output.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next()? != "inet" {
            return None;
        }
        words.next()?.split('/').next()?.parse().ok()
    })
}

/// The stdout of a command that exited successfully within [`COMMAND_TIMEOUT`].
fn run(program: &str, args: &[&str]) -> Option<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    // Both commands print a line or two, far below a pipe's buffer, so waiting before
    // reading cannot deadlock.
    let status = loop {
        if let Some(status) = child.try_wait().ok()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !status.success() {
        return None;
    }
    let mut stdout = String::new();
    child.stdout.take()?.read_to_string(&mut stdout).ok()?;
    Some(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_inspect_output() {
        assert_eq!(
            parse_inspect_gateway("172.17.0.1\n"),
            Some("172.17.0.1".parse().unwrap())
        );
        assert_eq!(parse_inspect_gateway("<no value>\n"), None);
        assert_eq!(parse_inspect_gateway(""), None);
    }

    #[test]
    fn parses_ip_addr_show_output() {
        let output = "3: docker0: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue state DOWN group default\n    link/ether 02:42:8f:11:22:33 brd ff:ff:ff:ff:ff:ff\n    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\n       valid_lft forever preferred_lft forever\n";
        assert_eq!(
            parse_ip_addr_show(output),
            Some("172.17.0.1".parse().unwrap())
        );
        assert_eq!(
            parse_ip_addr_show("Device \"docker0\" does not exist.\n"),
            None
        );
    }

    #[test]
    fn a_missing_program_is_none() {
        assert_eq!(run("discobot-no-such-program", &[]), None);
    }
}
