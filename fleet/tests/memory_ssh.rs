//! Two `fleet up` nodes replicate their memory through a peer repository reached over
//! `ssh://` (a real OpenSSH server on loopback, git's own ssh transport): each publishes its
//! history on its own ref there, and a write on one node is read on the other, waiting for the
//! writer node's version. The ssh server comes from Debian (`ci/ssh/setup.sh` installs it on
//! first use; without the registry the test says so and skips).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The sshd binary, installed if missing; `None` when it cannot be (the reason printed).
fn sshd() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("bash")
        .arg(root.join("ci/ssh/setup.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("running ci/ssh/setup.sh");
    match out.status.code() {
        Some(0) => Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())),
        Some(3) => {
            eprintln!("SKIPPED: no ssh server here and none can be installed (see above)");
            None
        }
        _ => panic!("ci/ssh/setup.sh failed: {:?}", out.status),
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An OpenSSH server on 127.0.0.1 that lets this user in with `key`; returns it, its port and
/// the `GIT_SSH_COMMAND` that reaches it.
fn ssh_server(sshd: &Path, dir: &Path) -> (Running, u16, String) {
    let host_key = dir.join("host_key");
    let key = dir.join("client_key");
    for k in [&host_key, &key] {
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(k));
    }
    std::fs::copy(key.with_extension("pub"), dir.join("authorized_keys")).unwrap();
    // Privilege separation needs its directory (Debian's service script makes it).
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\nPermitRootLogin prohibit-password\nPidFile {}\n",
            host_key.display(),
            dir.join("authorized_keys").display(),
            dir.join("sshd.pid").display()
        ),
    )
    .unwrap();
    let server = Running(
        Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .expect("sshd starts"),
    );
    let ssh = format!(
        "ssh -F /dev/null -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o BatchMode=yes -o LogLevel=ERROR",
        key.display()
    );
    // Up once a plain ssh command gets through.
    let user = whoami();
    for _ in 0..100 {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!("{ssh} -p {port} {user}@127.0.0.1 true"))
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return (server, port, ssh);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "sshd did not let us in: {}",
        std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
    );
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Starts `fleet up` as `node` publishing to `peer`; returns it and its admin URL.
async fn node(dir: &Path, node: &str, peer: &str, ssh: &str) -> (Running, String) {
    node_with(dir, node, peer, ssh, &[]).await
}

async fn node_with(
    dir: &Path,
    node: &str,
    peer: &str,
    ssh: &str,
    extra: &[&str],
) -> (Running, String) {
    let mut up = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args([
            "up",
            "--servers",
            "1",
            "--ephemeral-ports",
            "--admin-port",
            "0",
            "--no-gateway",
            "--memory-peer-interval",
            "200ms",
            "--memory-node-id",
            node,
            "--memory-peer",
            peer,
            "--admin-token-file",
        ])
        .arg(dir.join(format!("{node}.token")))
        .args(extra)
        .arg("--memory-repo")
        .arg(dir.join(node))
        .env("GIT_SSH_COMMAND", ssh)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map(Running)
        .expect("fleet up starts");
    let stdout = up.0.stdout.take().unwrap();
    let admin = common::admin_url_from(stdout).await;
    (up, admin)
}

/// Calls a tool on the node's first server; returns its structured result.
async fn tool(admin: &str, name: &str, arguments: Value) -> Value {
    let view: Value = common::get_json(&format!("{admin}/servers")).await;
    let port = view["servers"][0]["port"].as_u64().unwrap();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let (status, answer) = common::post_stateless(
        &url,
        "tools/call",
        json!({"name": name, "arguments": arguments}),
    )
    .await;
    let answer = answer.unwrap_or_default();
    assert_eq!(status, 200, "{name}: {answer}");
    assert_ne!(answer["result"]["isError"], json!(true), "{name}: {answer}");
    answer["result"]["structuredContent"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_replicate_through_a_peer_over_ssh() {
    let Some(sshd) = sshd() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (_server, port, ssh) = ssh_server(&sshd, dir.path());
    let peer = dir.path().join("peer.git");
    run(Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["memory", "init-peer"])
        .arg(&peer));
    let url = format!("ssh://{}@127.0.0.1:{port}{}", whoami(), peer.display());
    let (_a, admin_a) = node(dir.path(), "node-a", &url, &ssh).await;
    let (_b, admin_b) = node(dir.path(), "node-b", &url, &ssh).await;

    tool(
        &admin_a,
        "create_entities",
        json!({"entities": [{"name": "over-ssh", "entityType": "test", "observations": ["from a"]}]}),
    )
    .await;
    let version = tool(&admin_a, "memory_version", json!({})).await;
    assert_eq!(version["node"], json!("node-a"), "{version}");
    let read = tool(
        &admin_b,
        "open_nodes",
        json!({"names": ["over-ssh"], "minVersion": version["version"],
               "minVersionNode": "node-a", "timeoutMs": 30_000}),
    )
    .await;
    assert_eq!(
        read["entities"][0]["observations"],
        json!(["from a"]),
        "{read}"
    );

    // Both nodes publish on their own refs at the peer, and say the peer is fine.
    let mut view = Value::Null;
    for _ in 0..100 {
        view = common::get_json(&format!("{admin_b}/servers")).await;
        let peers = &view["memory"]["peers"];
        let refs = git2::Repository::open(&peer).ok().map(|r| {
            ["node-a", "node-b"]
                .iter()
                .all(|n| r.refname_to_id(&format!("refs/heads/nodes/{n}")).is_ok())
        });
        if peers[0]["state"] == json!("ok") && refs == Some(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(view["memory"]["peers"][0]["state"], json!("ok"), "{view}");
    assert_eq!(
        view["memory"]["peers"][0]["url"],
        json!(format!("ssh://127.0.0.1:{port}{}", peer.display())),
        "the user is left out of what is shown"
    );
    let fsck = Command::new("git")
        .args(["fsck", "--full", "--no-progress"])
        .current_dir(&peer)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_answers_is_given_up_at_the_time_limit_ssh_included() {
    if sshd().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Takes connections and never says a word: ssh would wait for its banner forever.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    let url = format!("ssh://nobody@127.0.0.1:{port}/silent-peer.git");
    let ssh = "ssh -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
               -o BatchMode=yes";
    let (_a, admin) = node_with(
        dir.path(),
        "node-a",
        &url,
        ssh,
        &["--memory-peer-timeout", "2s"],
    )
    .await;
    tool(
        &admin,
        "create_entities",
        json!({"entities": [{"name": "kept", "entityType": "test", "observations": []}]}),
    )
    .await;
    // Three tries (1 s, then 2 s of backoff between them), each stopped at 2 s.
    let mut view = Value::Null;
    for _ in 0..200 {
        view = common::get_json(&format!("{admin}/servers")).await;
        if view["memory"]["peers"][0]["failures"].as_u64() >= Some(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let peer = &view["memory"]["peers"][0];
    assert_eq!(peer["state"], json!("failing"), "{view}");
    assert!(peer["failures"].as_u64() >= Some(3), "{view}");
    assert!(
        peer["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("took longer than 2000 ms")),
        "{view}"
    );
    // The ssh of each stopped try is gone with its git: at most the current try's is left
    // (killing git alone would leave one ssh per try waiting on the silent peer).
    let ssh_left = Command::new("pgrep")
        .args(["-f", &format!("^ssh .*{port}.*silent-peer")])
        .output()
        .unwrap();
    let ssh_left = String::from_utf8_lossy(&ssh_left.stdout).lines().count();
    assert!(ssh_left <= 1, "{ssh_left} ssh processes still waiting");
    // Writes went on meanwhile.
    let read = tool(&admin, "open_nodes", json!({"names": ["kept"]})).await;
    assert_eq!(read["entities"][0]["name"], json!("kept"), "{read}");
}
