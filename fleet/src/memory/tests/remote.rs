//! The store served to server processes over its socket: every call one round trip answered
//! from the owner's view (read-your-writes and `minVersion` across servers, deletes that remove
//! what was durable when the owner took them), many calls in flight from one process, a
//! reconnection after the owner's socket went away, and other users refused.

use std::time::Duration;

use super::support::*;
use crate::memory::*;

/// The owner's side of a store, served until `stop`, on a socket in a directory of its own
/// under `_parent` (readable by everyone, as `/tmp` is).
struct Served {
    socket: remote::MemorySocket,
    stop: tokio_util::sync::CancellationToken,
    _parent: tempfile::TempDir,
}

fn serve(store: &Store) -> Served {
    use std::os::unix::fs::PermissionsExt as _;
    let parent = tempfile::tempdir().unwrap();
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (socket, listener) = remote::MemorySocket::bind(Some(parent.path())).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(remote::serve(
        store.handle(),
        listener,
        socket.clone(),
        stop.clone(),
    ));
    Served {
        socket,
        stop,
        _parent: parent,
    }
}

/// A fresh store (in a temporary directory, kept alive by the first element) and its socket.
fn open_served() -> (tempfile::TempDir, Store, Served) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), quick()).unwrap();
    let served = serve(&store);
    (dir, store, served)
}

fn close(store: Store, served: Served) {
    served.stop.cancel();
    store.close().unwrap();
}

async fn connect(served: &Served, server: &str) -> Memory {
    let stop = tokio_util::sync::CancellationToken::new();
    let access = served.socket.access(server);
    Memory::Remote(remote::RemoteMemory::connect(access, stop).await.unwrap())
}

fn names(answer: &ReadAnswer) -> Vec<&str> {
    answer
        .graph
        .entities
        .iter()
        .map(|e| e.name.as_str())
        .collect()
}

/// Two server processes: what one writes the other reads at once with no wait asked for (the
/// first call made right after connecting), a `minVersion` ahead waits for the write that
/// reaches it, one never reached times out as a timeout, and the version is the owner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_process_reads_what_is_durable() {
    let (_dir, store, served) = open_served();
    let a = connect(&served, "srv-a").await;
    let b = connect(&served, "srv-b").await;

    let v1 = a.write("srv-a", create(&["x"])).await.unwrap().version;
    let read = b.read(Query::Open(vec!["x".into()]), None).await.unwrap();
    assert_eq!((names(&read), read.version), (vec!["x"], v1));
    assert_eq!(b.version().await.unwrap().0, v1);

    let wanted = v1 + 1;
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move {
            b.read(Query::Search("y".into()), Some((wanted.into(), WAIT)))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished(), "nothing reached {wanted} yet");
    let ack = a.write("srv-a", create(&["y"])).await.unwrap();
    let read = waiter.await.unwrap().unwrap();
    assert_eq!(names(&read), vec!["y"]);
    assert!(read.version >= wanted);
    assert_eq!(
        read.visible_at_us,
        Some(ack.acked_at_us),
        "visible through every server from its ack"
    );

    let err = b
        .read(
            Query::ReadGraph,
            Some(((wanted + 100).into(), Duration::from_millis(100))),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ReadError::Timeout(t) if t.wanted == wanted + 100),
        "{err}"
    );
    let all = a.read(Query::ReadGraph, None).await.unwrap();
    assert_eq!(names(&all), vec!["x", "y"]);
    close(store, served);
}

/// A server process's delete removes everything durable when the owner took it: the owner
/// stamps what the writer has seen, so a delete right after another server's create removes
/// it (were `seen` left at 0, add-wins would keep it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_delete_removes_what_was_durable_when_it_arrived() {
    let (_dir, store, served) = open_served();
    let a = connect(&served, "srv-a").await;
    store
        .handle()
        .write("srv-b", 0, create(&["gone"]))
        .await
        .unwrap();
    let delete = Op::DeleteEntities(DeleteEntities {
        entity_names: vec!["gone".into()],
    });
    a.write("srv-a", delete).await.unwrap();
    let read = a.read(Query::ReadGraph, None).await.unwrap();
    assert!(read.graph.entities.is_empty(), "{read:?}");
    close(store, served);
}

/// One process with far more calls in flight than the owner works on at once for it: every
/// one is answered, and right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_calls_in_flight_from_one_process_are_all_answered() {
    let (_dir, store, served) = open_served();
    let a = connect(&served, "srv-a").await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let a = a.clone();
        calls.spawn(async move {
            if i % 4 == 0 {
                let n = format!("e{i}");
                let ack = a.write("srv-a", create(&[&n])).await.unwrap();
                let read = a.read(Query::Open(vec![n.clone()]), None).await.unwrap();
                assert_eq!(names(&read), vec![n.as_str()]);
                assert!(read.version >= ack.version);
            } else {
                // Waits for a version some write of this storm reaches.
                a.read(Query::ReadGraph, Some((100.into(), WAIT)))
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = calls.join_next().await {
        done.unwrap();
    }
    assert_eq!(a.version().await.unwrap().0, 250);
    close(store, served);
}

/// The owner's socket goes away (its serving task stopped) and comes back under the same
/// name: calls fail while it is gone, saying so, and work again once it is back, with nothing
/// acknowledged lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_process_reconnects_when_the_owner_comes_back() {
    let (_dir, store, served) = open_served();
    let a = connect(&served, "srv-a").await;
    let v1 = a.write("srv-a", create(&["before"])).await.unwrap().version;
    served.stop.cancel();
    // The connection is dropped by the stopped owner; calls fail until it is back.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match a.read(Query::ReadGraph, None).await {
            Err(ReadError::Unavailable(_)) => break,
            Ok(_) => assert!(std::time::Instant::now() < deadline, "never dropped"),
            Err(e) => panic!("{e}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let back = tokio_util::sync::CancellationToken::new();
    let listener = served.socket.listen().unwrap();
    tokio::spawn(remote::serve(
        store.handle(),
        listener,
        served.socket.clone(),
        back.clone(),
    ));
    let read = loop {
        match a.read(Query::ReadGraph, None).await {
            Ok(read) => break read,
            Err(e) => assert!(std::time::Instant::now() < deadline, "never back: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((names(&read), read.version), (vec!["before"], v1));
    a.write("srv-a", create(&["after"])).await.unwrap();
    back.cancel();
    store.close().unwrap();
}

/// What a process gets from the memory socket at `path` when it sends `frames` (each
/// given as its announced length and its bytes): `refused` if it cannot connect, `served`
/// if the owner sends it anything (`served, then closed` if the owner then closes),
/// `closed` if the owner drops it unanswered. Run as `uid` when given.
async fn knock(path: &std::path::Path, frames: &[(u32, Vec<u8>)], uid: Option<u32>) -> String {
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let mut command = tokio::process::Command::new(python);
    command.arg("-c").arg(
        "import socket, struct, sys\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
         try:\n    s.connect(sys.argv[1])\n\
         except OSError:\n    print('refused'); sys.exit(0)\n\
         s.settimeout(5)\n\
         got, eof = b'', False\n\
         try:\n\
         \x20   for i in range(2, len(sys.argv), 2):\n\
         \x20       s.sendall(struct.pack('>I', int(sys.argv[i])) + bytes.fromhex(sys.argv[i + 1]))\n\
         \x20   while True:\n\
         \x20       chunk = s.recv(65536)\n\
         \x20       if not chunk:\n\
         \x20           eof = True\n\
         \x20           break\n\
         \x20       got += chunk\n\
         \x20       s.settimeout(1)\n\
         except OSError:\n    pass\n\
         print(('served' if got else 'closed') + (', then closed' if got and eof else ''))\n",
    );
    command.arg(path);
    for (length, bytes) in frames {
        command.arg(length.to_string());
        command.arg(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
    }
    if let Some(uid) = uid {
        command.uid(uid);
    }
    let out = command.output().await.expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A whole frame of `json`.
fn frame(json: serde_json::Value) -> (u32, Vec<u8>) {
    let bytes = serde_json::to_vec(&json).unwrap();
    (bytes.len() as u32, bytes)
}

fn hello(server: &str, token: &str) -> (u32, Vec<u8>) {
    frame(serde_json::json!({"Hello": {"server": server, "token": token}}))
}

/// A process of the fleet's own user must prove which server it is before anything is read
/// or sent: a request before the hello, garbage, a wrong token, another server's token and a
/// hello over the size limit are all closed unanswered, and none of them wrote anything; the
/// right token is welcomed. After the hello, a frame announced over the limit closes the
/// connection, and the owner serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_process_that_proves_its_server_is_served() {
    let (_dir, store, served) = open_served();
    let path = served.socket.path();
    let token_a = served.socket.access("srv-a").token;
    let write = frame(
        serde_json::json!({"Write": {"id": 1, "op": {"CreateEntities": {
        "entities": [{"name": "forged", "entityType": "t", "observations": []}]}}}}),
    );
    assert_eq!(
        knock(path, std::slice::from_ref(&write), None).await,
        "closed"
    );
    assert_eq!(knock(path, &[(5, b"hello".to_vec())], None).await, "closed");
    assert_eq!(
        knock(path, &[hello("srv-a", "00ff"), write.clone()], None).await,
        "closed"
    );
    assert_eq!(
        knock(path, &[hello("srv-b", &token_a), write.clone()], None).await,
        "closed"
    );
    let long = "x".repeat(2000);
    assert_eq!(knock(path, &[hello(&long, &token_a)], None).await, "closed");
    assert_eq!(store.handle().view().version(), 0, "nothing was written");

    assert_eq!(
        knock(path, &[hello("srv-a", &token_a)], None).await,
        "served"
    );
    let huge = (150 << 20, b"{}".to_vec());
    assert_eq!(
        knock(path, &[hello("srv-a", &token_a), huge], None).await,
        "served, then closed"
    );
    let a = connect(&served, "srv-a").await;
    a.write("srv-a", create(&["fine"])).await.unwrap();
    close(store, served);
}

/// Another local user (`nobody`) cannot even connect: the socket's directory is private. Were
/// its mode loosened by mistake, the owner would still drop that user's connection unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_process_is_refused_the_memory_socket() {
    use std::os::unix::fs::PermissionsExt as _;
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: running a process as another user needs root");
        return;
    }
    let (_dir, store, served) = open_served();
    let path = served.socket.path();
    let token = served.socket.access("srv-a").token;
    assert_eq!(knock(path, &[hello("srv-a", &token)], None).await, "served");
    assert_eq!(
        knock(path, &[hello("srv-a", &token)], Some(65534)).await,
        "refused"
    );
    let open = std::fs::Permissions::from_mode(0o777);
    std::fs::set_permissions(path.parent().unwrap(), open.clone()).unwrap();
    std::fs::set_permissions(path, open).unwrap();
    assert_eq!(
        knock(path, &[hello("srv-a", &token)], Some(65534)).await,
        "closed"
    );
    close(store, served);
}

/// A server process whose large writes cross the owner's large answers on one connection:
/// both sides write more than a socket buffer holds at once, and each must keep reading while
/// it writes, or both would wait for the other for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_writes_crossing_large_answers_do_not_block_the_connection() {
    let (_dir, store, served) = open_served();
    let a = connect(&served, "srv-a").await;
    let big = |name: String| {
        crate::memory::test_ops::create_entities(&[&name], "t", |_| "x".repeat(16 * 1024))
    };
    let observations = |name: &str| {
        Op::AddObservations(AddObservations {
            observations: vec![ObservationAddition {
                entity_name: name.into(),
                contents: (0..40)
                    .map(|i| format!("{i:02}{}", "y".repeat(16 * 1024 - 2)))
                    .collect(),
            }],
        })
    };
    // A graph whose read_graph answer is well over a socket buffer (~650 kB of JSON).
    for i in 0..40 {
        a.write("srv-a", big(format!("e{i}"))).await.unwrap();
    }
    let storm = async {
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..16 {
            let a = a.clone();
            calls.spawn(async move {
                if i % 2 == 0 {
                    a.read(Query::ReadGraph, None).await.map(|_| ())
                } else {
                    // ~650 kB each.
                    let name = format!("e{i}");
                    a.write("srv-a", observations(&name))
                        .await
                        .map(|_| ())
                        .map_err(|e| ReadError::Unavailable(e.to_string()))
                }
            });
        }
        while let Some(done) = calls.join_next().await {
            done.unwrap().unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(20), storm)
        .await
        .expect("the connection is blocked");
    close(store, served);
}

/// With the waiting reads of a process at their limit, a read whose version is already there
/// is still answered (it does not wait), and one that would wait is told at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_already_satisfied_is_answered_when_the_waits_are_full() {
    let (_dir, store, served) = open_served();
    let a = connect(&served, "srv-a").await;
    let v = a.write("srv-a", create(&["x"])).await.unwrap().version;
    let mut waiting = tokio::task::JoinSet::new();
    for _ in 0..1100 {
        let a = a.clone();
        waiting.spawn(async move {
            a.read(
                Query::ReadGraph,
                Some((1_000_000.into(), Duration::from_secs(5))),
            )
            .await
        });
    }
    // Let the waits reach the owner.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let read = a
        .read(Query::Open(vec!["x".into()]), Some((v.into(), WAIT)))
        .await
        .unwrap();
    assert_eq!(names(&read), vec!["x"]);
    waiting.abort_all();
    close(store, served);
}

/// One server's token opens a few connections at once (a reconnection overlapping the old
/// one), not any number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_holds_a_few_connections_at_once() {
    let (_dir, store, served) = open_served();
    let stop = tokio_util::sync::CancellationToken::new();
    let mut held = Vec::new();
    for _ in 0..4 {
        let access = served.socket.access("srv-a");
        held.push(
            remote::RemoteMemory::connect(access, stop.clone())
                .await
                .unwrap(),
        );
    }
    let access = served.socket.access("srv-a");
    let err = remote::RemoteMemory::connect(access, stop.clone())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at the hello"), "{err}");
    // Another server is not affected.
    connect(&served, "srv-b").await;
    stop.cancel();
    close(store, served);
}
