//! The `fleet` binary end to end: `up` with a spec file, `status` and `down` against it, and
//! clear errors for a bad spec and a taken port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

fn fleet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fleet"))
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
"#,
    )
    .expect("write spec");
    let mut up = fleet()
        .args(["up", "--spec"])
        .arg(&spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("fleet up starts");
    let stdout = up.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut admin = None;
    let mut healthy_line = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while admin.is_none() && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if line.contains("healthy in") {
            healthy_line = Some(line.clone());
        }
        if let Some(rest) = line.trim().strip_prefix("admin") {
            let url = rest.split_whitespace().next().unwrap_or("");
            admin = url.strip_suffix("/servers").map(String::from);
        }
    }
    let admin = admin.expect("fleet up names its admin API");
    assert!(
        healthy_line
            .expect("summary line")
            .starts_with("6/6 healthy in")
    );

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

    let down = fleet()
        .args(["down", "--admin", &admin])
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

    let missing = fleet()
        .args(["up", "--spec", "/nonexistent/x.toml"])
        .output()
        .expect("runs");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/x.toml"));

    let blocker = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = blocker.local_addr().expect("addr").port();
    let out = fleet()
        .args(["up", "--servers", "2", "--admin-port", &port.to_string()])
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
