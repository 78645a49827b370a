//! The `fleet` binary end to end: `up` with a spec file, `status` and `down` against it, and
//! clear errors for a bad spec and a taken port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

fn fleet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fleet"))
}

/// Starts `fleet up` with `args`, its admin token written to `token_file`; returns the child,
/// its admin URL and its "N/N healthy in" line once it is up.
fn spawn_up(args: &[&str], token_file: &Path) -> (std::process::Child, String, String) {
    // Memory has its own tests (memory_fleet.rs); without it these fleets share no repository.
    let mut up = fleet()
        .args(["up", "--no-memory", "--gateway-port", "0"])
        .arg("--admin-token-file")
        .arg(token_file)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("fleet up starts");
    let stdout = up.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut summary = String::new();
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if line.contains("healthy in") {
            summary = line.clone();
        }
        if let Some(rest) = line.trim().strip_prefix("admin") {
            let url = rest.split_whitespace().next().unwrap_or("");
            if let Some(admin) = url.strip_suffix("/servers") {
                return (up, admin.to_string(), summary);
            }
        }
    }
    let _ = up.kill();
    let _ = up.wait();
    panic!("fleet up did not name its admin API");
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[test]
fn process_mode_children_exit_when_the_supervisor_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("admin-token");
    let (mut up, admin, _) = spawn_up(
        &[
            "--servers",
            "4",
            "--isolation",
            "process",
            "--ephemeral-ports",
            "--admin-port",
            "0",
        ],
        &token_file,
    );
    let status = fleet()
        .args(["status", "--json", "--admin", &admin])
        .output()
        .expect("status runs");
    let view: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    let pids: Vec<u64> = view["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .filter_map(|s| s["pid"].as_u64())
        .collect();
    assert_eq!(pids.len(), 4);
    assert!(pids.iter().all(|p| alive(*p)));
    up.kill().expect("SIGKILL the supervisor");
    up.wait().expect("reaped");
    // Their stdin closes with the supervisor, which tells them to stop.
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|p| alive(*p)) {
        assert!(
            Instant::now() < deadline,
            "orphaned servers still running: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn up_status_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("fleet.toml");
    std::fs::write(
        &spec,
        r#"
admin_port = 0
[[groups]]
name = "edge"
profile = "community"
count = 4
first_port = 0
[[groups]]
name = "audit"
profile = "security"
count = 2
first_port = 0
[health]
interval = "500ms"
"#,
    )
    .expect("write spec");
    let spec = spec.to_string_lossy().to_string();
    let token_file = dir.path().join("state/admin-token");
    let (mut up, admin, summary) =
        spawn_up(&["--spec", &spec, "--startup-timeout", "1m"], &token_file);
    assert!(summary.starts_with("6/6 healthy in"), "{summary}");
    // Written for this user alone, and named at start-up.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&token_file)
        .expect("token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let token = std::fs::read_to_string(&token_file).expect("token");
    assert_eq!(token.trim().len(), 64, "{token}");

    let status = fleet()
        .args(["status", "--all", "--admin", &admin])
        .output()
        .expect("status runs");
    assert!(status.status.success());
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.starts_with("6/6 healthy"), "{text}");
    assert!(
        text.contains("edge-0003") && text.contains("audit-0001"),
        "{text}"
    );

    // Without the token the fleet stays up.
    let refused = fleet()
        .args(["down", "--admin", &admin, "--admin-token-file"])
        .arg(dir.path().join("missing"))
        .output()
        .expect("down runs");
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("admin token file"), "{err}");
    assert!(up.try_wait().expect("wait").is_none(), "still running");

    let down = fleet()
        .args(["down", "--admin", &admin, "--admin-token-file"])
        .arg(&token_file)
        .output()
        .expect("down runs");
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(code) = up.try_wait().expect("wait") {
            assert!(code.success(), "fleet up exits cleanly: {code}");
            break;
        }
        assert!(Instant::now() < deadline, "fleet up did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bad_spec_and_taken_port_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("bad.toml");
    std::fs::write(&spec, "isolation = \"thread\"\n").expect("write");
    let out = fleet()
        .args(["up", "--spec"])
        .arg(&spec)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("isolation"),
        "{err}"
    );

    let out = fleet()
        .args(["up", "--startup-timeout", "30x"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--startup-timeout") && err.contains("1m30s"),
        "{err}"
    );

    // Replication settings without a peer to replicate to, and a bad peer in the spec.
    let out = fleet()
        .args(["up", "--no-gateway", "--memory-node-id", "node-a"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("need a peer"), "{err}");
    std::fs::write(&spec, "[memory]\npeers = [\"https://h/p.git\"]\n").expect("write");
    let out = fleet()
        .args(["up", "--spec"])
        .arg(&spec)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("memory.peers"), "{err}");

    let missing = fleet()
        .args(["up", "--spec", "/nonexistent/x.toml"])
        .output()
        .expect("runs");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/x.toml"));

    let blocker = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = blocker.local_addr().expect("addr").port();
    let out = fleet()
        .args([
            "up",
            "--no-memory",
            "--no-gateway",
            "--servers",
            "2",
            "--admin-port",
            &port.to_string(),
        ])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&port.to_string()) && err.contains("admin"),
        "{err}"
    );
}

#[test]
fn status_without_a_fleet_says_so() {
    let out = fleet()
        .args(["status", "--admin", "http://127.0.0.1:9"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is `fleet up` running?"));
}

/// SIGTERM (how `kill`, systemd and Kubernetes stop a service) stops the fleet as Ctrl-C does:
/// a clean stop and exit status 0, not a death by signal.
#[test]
fn sigterm_stops_the_fleet_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("admin-token");
    let (mut up, _, _) = spawn_up(
        &["--servers", "2", "--ephemeral-ports", "--admin-port", "0"],
        &token_file,
    );
    let sent = Command::new("kill")
        .args(["-TERM", &up.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = up.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "fleet up did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
}
