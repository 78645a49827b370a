//! A client that opens more connections than the fleet's process has descriptors for: the
//! process keeps its connections within its open-file limit less a reserve and refuses the
//! rest, so its health prober never fails for want of a descriptor (EMFILE) and no healthy
//! server is restarted; the admin API still answers. The fleet runs as its own process with a
//! low limit (`ulimit -n`), so the test process's own limit does not matter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

const LIMIT: u32 = 256;
const ATTACK: usize = 400;

async fn get(url: &str) -> Value {
    let answer = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .expect("the admin API answers");
    answer.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_descriptors_are_refused_and_no_server_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("fleet.toml");
    std::fs::write(
        &spec,
        "[[groups]]\nname = \"community\"\nprofile = \"community\"\ncount = 2\nfirst_port = 0\n\
         [health]\ninterval = 100\ntimeout = 500\nfailures_to_unhealthy = 3\n\
         [http]\nheader_read_timeout = 30000\n",
    )
    .unwrap();
    let log = dir.path().join("fleet.log");
    let mut up = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {LIMIT} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_fleet"))
        .args(["up", "--no-memory", "--no-gateway", "--admin-port", "0"])
        .arg("--spec")
        .arg(&spec)
        .arg("--admin-token-file")
        .arg(dir.path().join("token"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("fleet up starts");
    let mut lines = BufReader::new(up.stdout.take().unwrap()).lines();
    let admin = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = up.kill();
            panic!(
                "fleet up ended early: {}",
                std::fs::read_to_string(&log).unwrap()
            );
        };
        if let Some(url) = line.trim().strip_prefix("admin") {
            break url.split_whitespace().next().unwrap().to_owned();
        }
    };
    let servers = get(&admin).await;
    let ports: Vec<u16> = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["port"].as_u64().unwrap() as u16)
        .collect();

    // Silent connections to both servers, far more than 256 descriptors hold; the kernel
    // completes each handshake whether or not the fleet accepts it.
    let mut held = Vec::new();
    for i in 0..ATTACK {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", ports[i % ports.len()])) {
            held.push(stream);
        }
    }
    assert!(held.len() > LIMIT as usize, "{} connected", held.len());
    // ~20 probes of each server while the connections are held.
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The admin API answers meanwhile: its few connections are outside the budget.
    let during = get(&admin).await;
    assert!(during["servers"].is_array(), "{during}");
    drop(held);

    let deadline = Instant::now() + Duration::from_secs(10);
    let servers = loop {
        let servers = get(&admin).await;
        let healthy = servers["servers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "healthy");
        if healthy || Instant::now() > deadline {
            break servers;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = up.kill();
    let _ = up.wait();
    let log = std::fs::read_to_string(&log).unwrap();
    for server in servers["servers"].as_array().unwrap() {
        assert_eq!(server["restarts"], 0, "{server}\n{log}");
        assert_eq!(server["state"], "healthy", "{server}\n{log}");
    }
    assert!(!log.contains("Too many open files"), "{log}");
}
