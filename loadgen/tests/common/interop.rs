//! Third-party MCP software for interop tests: the official Python SDK and the TypeScript SDK's
//! `server-everything`, installed (pinned) by `ci/interop/setup.sh` on first use, and started
//! as real processes on loopback ports. A test that needs them calls [`software`]; it skips,
//! saying why, only when a registry cannot be reached.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead as _, BufReader},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

/// Where the installed software is.
#[derive(Debug, Clone)]
pub struct Software {
    pub dir: PathBuf,
}

impl Software {
    /// The venv's Python (with `mcp`, `uvicorn`, `pyjwt`, `cryptography`).
    pub fn python(&self) -> PathBuf {
        self.dir.join("venv/bin/python")
    }

    /// An executable installed by npm (e.g. `mcp-server-everything`).
    pub fn node_bin(&self, name: &str) -> PathBuf {
        self.dir.join("node/node_modules/.bin").join(name)
    }

    /// A script of the interop fixture, `loadgen/tests/interop/NAME`.
    pub fn script(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/interop")
            .join(name)
    }
}

/// The installed software, installing it on first use; `None` (after printing why) when a
/// registry cannot be reached. A set-up that fails for any other reason fails the test.
pub fn software() -> Option<Software> {
    static INSTALLED: OnceLock<Option<Software>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let out = Command::new("bash")
                .arg(root.join("ci/interop/setup.sh"))
                .current_dir(&root)
                .output()
                .expect("running ci/interop/setup.sh");
            match out.status.code() {
                Some(0) => Some(Software {
                    dir: PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
                }),
                Some(3) => {
                    eprintln!(
                        "SKIPPED: interop software not installed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                    None
                }
                _ => panic!(
                    "ci/interop/setup.sh failed ({}):\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ),
            }
        })
        .clone()
}

/// A free loopback port (bound, then released for the server to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A server process, killed (with its process group) when dropped.
pub struct ServerProcess {
    child: Child,
    pub port: u16,
    pub name: String,
}

impl ServerProcess {
    /// Starts `command` (which must listen on 127.0.0.1:`port`) and waits up to 60 s until the
    /// port accepts; its stderr is echoed to the test's output, prefixed with `name`.
    pub fn start(name: &str, mut command: Command, port: u16) -> ServerProcess {
        use std::os::unix::process::CommandExt as _;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        if let Some(stderr) = child.stderr.take() {
            let prefix = name.to_string();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("[{prefix}] {line}");
                }
            });
        }
        let mut server = ServerProcess {
            child,
            port,
            name: name.to_string(),
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{name} exited before listening: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not listen on {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // The whole group: `npx`/shell wrappers leave the real server as a grandchild.
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::KILL,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
