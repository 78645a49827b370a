//! The store served to server processes over its socket: every call one round trip answered
//! from the owner's view (read-your-writes and `minVersion` across servers, deletes that remove
//! what was durable when the owner took them), many calls in flight from one process, a
//! reconnection after the owner's socket went away, and other users refused.

use std::time::Duration;

use super::support::*;
use crate::memory::*;

/// The owner's side served on a fresh abstract socket until `stop`.
fn serve(store: &Store) -> (String, tokio_util::sync::CancellationToken) {
    let stop = tokio_util::sync::CancellationToken::new();
    let name = remote::socket_name();
    let listener = remote::listen(&name).unwrap();
    tokio::spawn(remote::serve(store.handle(), listener, stop.clone()));
    (name, stop)
}

async fn connect(name: &str) -> Memory {
    let stop = tokio_util::sync::CancellationToken::new();
    Memory::Remote(remote::RemoteMemory::connect(name, stop).await.unwrap())
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
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), quick()).unwrap();
    let (name, stop) = serve(&store);
    let a = connect(&name).await;
    let b = connect(&name).await;

    let v1 = a.write("srv-a", create(&["x"])).await.unwrap().version;
    let read = b.read(Query::Open(vec!["x".into()]), None).await.unwrap();
    assert_eq!((names(&read), read.version), (vec!["x"], v1));
    assert_eq!(b.version().await.unwrap(), v1);

    let wanted = v1 + 1;
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move {
            b.read(Query::Search("y".into()), Some((wanted, WAIT)))
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
            Some((wanted + 100, Duration::from_millis(100))),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ReadError::Timeout(t) if t.wanted == wanted + 100),
        "{err}"
    );
    let all = a.read(Query::ReadGraph, None).await.unwrap();
    assert_eq!(names(&all), vec!["x", "y"]);
    stop.cancel();
    store.close().unwrap();
}

/// A server process's delete removes everything durable when the owner took it: the owner
/// stamps what the writer has seen, so a delete right after another server's create removes
/// it (were `seen` left at 0, add-wins would keep it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_delete_removes_what_was_durable_when_it_arrived() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), quick()).unwrap();
    let (name, stop) = serve(&store);
    let a = connect(&name).await;
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
    stop.cancel();
    store.close().unwrap();
}

/// One process with far more calls in flight than the owner works on at once for it: every
/// one is answered, and right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_calls_in_flight_from_one_process_are_all_answered() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), quick()).unwrap();
    let (name, stop) = serve(&store);
    let a = connect(&name).await;
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
                a.read(Query::ReadGraph, Some((100, WAIT))).await.unwrap();
            }
        });
    }
    while let Some(done) = calls.join_next().await {
        done.unwrap();
    }
    assert_eq!(a.version().await.unwrap(), 250);
    stop.cancel();
    store.close().unwrap();
}

/// The owner's socket goes away (its serving task stopped) and comes back under the same
/// name: calls fail while it is gone, saying so, and work again once it is back, with nothing
/// acknowledged lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_process_reconnects_when_the_owner_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), quick()).unwrap();
    let (name, stop) = serve(&store);
    let a = connect(&name).await;
    let v1 = a.write("srv-a", create(&["before"])).await.unwrap().version;
    stop.cancel();
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
    // The name is free once the stopped task has dropped its listener.
    let listener = loop {
        match remote::listen(&name) {
            Ok(listener) => break listener,
            Err(e) => assert!(std::time::Instant::now() < deadline, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    tokio::spawn(remote::serve(store.handle(), listener, back.clone()));
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

/// What a process gets from the memory socket `name` when it asks for the version: `served`
/// if the owner answers, `closed` if it drops the connection. Run as `uid` when given.
async fn ask_socket(name: &str, uid: Option<u32>) -> String {
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let mut command = tokio::process::Command::new(python);
    command.arg("-c").arg(
        "import socket, struct, sys\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
         s.connect('\\0' + sys.argv[1])\n\
         s.settimeout(5)\n\
         ask = b'{\"Version\":{\"id\":1}}'\n\
         try:\n    s.sendall(struct.pack('>I', len(ask)) + ask)\n    data = s.recv(4)\n\
         except OSError:\n    data = b''\n\
         print('served' if data else 'closed')\n",
    );
    command.arg(name);
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

/// The socket's name is visible to every local user (`/proc/net/unix`): a process of another
/// user (`nobody`) is dropped before it reads anything, while the fleet's own user is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_process_is_refused_the_memory_socket() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: running a process as another user needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), quick()).unwrap();
    let (name, stop) = serve(&store);
    assert_eq!(ask_socket(&name, None).await, "served");
    assert_eq!(ask_socket(&name, Some(65534)).await, "closed");
    stop.cancel();
    store.close().unwrap();
}
