//! `fleet serve-stdio` as an MCP host runs it: a child process spoken to in newline-delimited
//! JSON-RPC on its stdin and stdout, in both lifecycles (`initialize` and 2026-07-28
//! `server/discover`), exiting 0 when its stdin closes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// A running `fleet serve-stdio` with its stdout read line by line on a thread.
struct StdioServer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl StdioServer {
    fn start(profile: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fleet"))
            .args(["serve-stdio", "--profile", profile])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("fleet serve-stdio starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            lines,
        }
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{message}").expect("write to the server");
        stdin.flush().expect("flush");
    }

    /// The next line on stdout, which must be one JSON message.
    fn next(&self) -> Value {
        let line = self.lines.recv_timeout(WAIT).expect("the server answers");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON on stdout ({e}): {line}"))
    }

    fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let answer = self.next();
        assert_eq!(answer["id"], id, "{answer}");
        answer
    }

    /// Closes stdin and waits (bounded) for the exit status.
    fn close(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(
                    self.lines.recv_timeout(Duration::from_secs(1)).is_err(),
                    "nothing more on stdout"
                );
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("serve-stdio did not exit after stdin closed");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn tool_names(list: &Value) -> Vec<String> {
    list["result"]["tools"]
        .as_array()
        .expect("a tool list")
        .iter()
        .map(|t| t["name"].as_str().expect("a name").to_string())
        .collect()
}

#[test]
fn initialize_list_call_and_exit_zero_when_stdin_closes() {
    let mut server = StdioServer::start("community");
    let init = server.request(
        0,
        "initialize",
        json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"},
        }),
    );
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25", "{init}");
    server.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let list = server.request(1, "tools/list", json!({}));
    let names = tool_names(&list);
    for tool in ["echo", "add", "text_stats", "json_query", "work"] {
        assert!(names.iter().any(|n| n == tool), "{tool} in {names:?}");
    }
    let echo = server.request(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "over stdio"}}),
    );
    assert_eq!(echo["result"]["isError"], false, "{echo}");
    assert_eq!(echo["result"]["structuredContent"]["text"], "over stdio");
    let bad = server.request(3, "tools/call", json!({"name": "add", "arguments": {}}));
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    assert!(server.close().success());
}

#[test]
fn discover_opens_a_stateless_session_with_the_profiles_tools() {
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "0"},
    });
    let mut server = StdioServer::start("security");
    let discover = server.request(0, "server/discover", json!({"_meta": meta}));
    let versions = discover["result"]["supportedVersions"].to_string();
    assert!(versions.contains("2026-07-28"), "{discover}");
    let names = tool_names(&server.request(1, "tools/list", json!({"_meta": meta})));
    assert!(names.iter().any(|n| n == "scan_secrets"), "{names:?}");
    assert!(!names.iter().any(|n| n == "echo"), "{names:?}");
    assert!(server.close().success());
}
