//! Following the store from elsewhere: log followers up to the durable mark, and a server
//! process's memory over the real socket, resyncing or taking a snapshot when it fell behind.

use std::time::Duration;

use super::support::*;
use crate::memory::*;

/// A follower reads the log up to the owner's durable mark: from a follow point, across WAL
/// segments, to exactly the owner's state.
#[tokio::test]
async fn followers_read_the_log_up_to_the_durable_mark() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        wal_segment_bytes: 300,
        ..lazy()
    };
    let store = Store::open(dir.path(), options).unwrap();
    let h = store.handle();
    h.write("srv-1", 0, create(&["a"])).await.unwrap();
    let point = h.follow_point();
    let point: FollowPoint = serde_json::from_str(&serde_json::to_string(&point).unwrap()).unwrap();
    let remote = View::from_snapshot(point.snapshot.clone()).unwrap();
    let mut tail = wal::Tail::open(&point.wal_dir, point.position, 1).unwrap();
    let marks = mark::MarkReader::open(&point.mark_path).unwrap();
    let mut last = 0;
    for i in 0..20 {
        last = h
            .write("srv-2", i, create(&[&format!("e{i}")]))
            .await
            .unwrap()
            .version;
    }
    let m = marks.read().unwrap();
    assert_eq!(m.version, last, "the mark is published before the ack");
    assert!(
        m.position.segment > point.position.segment,
        "the writes crossed segments"
    );
    let records = tail.read_to(m.position, m.version).unwrap();
    assert_eq!(records.len(), 20);
    remote.apply_batch_at(&records, m.at_us).unwrap();
    assert_eq!(remote.read_graph(), h.view().read_graph());
    assert_eq!(remote.visible_at(last), Some(m.at_us));
    // Nothing new: nothing read.
    assert!(tail.read_to(m.position, m.version).unwrap().is_empty());
    store.close().unwrap();
}

/// A store served on an abstract socket (as `fleet up` does in process mode) and a server
/// process's memory connected to it.
async fn remote_store(
    options: StoreOptions,
) -> (
    tempfile::TempDir,
    Store,
    tokio_util::sync::CancellationToken,
    remote::RemoteMemory,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let name = remote::socket_name();
    let listener = remote::listen(&name).unwrap();
    tokio::spawn(remote::serve(store.handle(), listener, stop.clone()));
    let r = remote::RemoteMemory::connect(&name, stop.clone())
        .await
        .unwrap();
    (dir, store, stop, r)
}

/// A server process's memory over the real socket: reads see every durable write without
/// anything pushed, a `minVersion` ahead of the log waits for the write that reaches it, and a
/// follower whose log segment was trimmed while idle starts again from a fresh follow point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_memory_follows_the_log_and_resyncs_when_its_segment_is_gone() {
    let (dir, store, stop, r) = remote_store(StoreOptions {
        wal_segment_bytes: 300,
        ..quick()
    })
    .await;
    let h = store.handle();
    let mem = Memory::Remote(r.clone());

    // A write made elsewhere is in the next read here, with no wait asked for.
    let v1 = h.write("srv-1", 0, create(&["a"])).await.unwrap().version;
    assert_eq!(mem.fresh_view().await.version(), v1);
    assert!(mem.fresh_view().await.entity("a").is_some());
    // A write made here is readable here when it returns.
    let v2 = mem.write("srv-2", create(&["b"])).await.unwrap().version;
    assert!(r.view().entity("b").is_some() && r.view().version() >= v2);

    // A minVersion not yet durable waits for the write that reaches it.
    let wanted = v2 + 1;
    let waiter = {
        let mem = mem.clone();
        tokio::spawn(async move { mem.wait_for(wanted, WAIT).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished(), "nothing reached {wanted} yet");
    h.write("srv-1", v2, create(&["c"])).await.unwrap();
    waiter.await.unwrap().unwrap();
    assert!(r.view().entity("c").is_some());
    let err = mem
        .wait_for(wanted + 100, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(err.wanted, wanted + 100);

    // Idle while many writes go by, are committed and their segments trimmed: the next read
    // finds its segment gone, takes a fresh follow point and still sees everything.
    let before = wal::segments(&dir.path().join("mcpfleet/wal")).unwrap();
    let mut last = 0;
    for i in 0..60 {
        last = h
            .write("srv-1", 0, create(&[&format!("x{i}")]))
            .await
            .unwrap()
            .version;
    }
    h.wait_committed(last, WAIT).await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while wal::segments(&dir.path().join("mcpfleet/wal"))
        .unwrap()
        .first()
        == before.first()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "segments never trimmed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let view = mem.fresh_view().await;
    assert_eq!(r.follow_points(), 2, "this read took a fresh follow point");
    assert_eq!(view.version(), last);
    assert_eq!(view.read_graph(), h.view().read_graph());
    stop.cancel();
    store.close().unwrap();
}

/// A server process that fell further behind than replaying is worth starts again from a
/// snapshot, and still misses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_memory_far_behind_takes_a_snapshot_instead_of_replaying() {
    let (_dir, store, stop, r) = remote_store(quick()).await;
    let h = store.handle();
    let mem = Memory::Remote(r.clone());
    h.write("srv-1", 0, create(&["first"])).await.unwrap();
    assert!(mem.fresh_view().await.entity("first").is_some());
    let points = r.follow_points();
    // More records than the small graph's replay limit (10,000), in a few group commits.
    let writes: Vec<_> = (0..10_050)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move {
                h.write("srv-1", 0, observe("first", &format!("o{i}")))
                    .await
            })
        })
        .collect();
    for w in writes {
        w.await.unwrap().unwrap();
    }
    let view = mem.fresh_view().await;
    assert!(r.follow_points() > points, "started again from a snapshot");
    assert_eq!(view.version(), h.view().version());
    assert_eq!(view.read_graph(), h.view().read_graph());
    stop.cancel();
    store.close().unwrap();
}

/// What a process sees of the memory socket `name`: `served` if the owner sends it anything
/// (its first frame), `closed` if the owner drops it. Run as `uid` when given.
async fn peek_socket(name: &str, uid: Option<u32>) -> String {
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let mut command = tokio::process::Command::new(python);
    command.arg("-c").arg(
        "import socket, sys\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
         s.connect('\\0' + sys.argv[1])\n\
         s.settimeout(5)\n\
         try:\n    data = s.recv(4)\n\
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
    let stop = tokio_util::sync::CancellationToken::new();
    let name = remote::socket_name();
    let listener = remote::listen(&name).unwrap();
    tokio::spawn(remote::serve(store.handle(), listener, stop.clone()));
    assert_eq!(peek_socket(&name, None).await, "served");
    assert_eq!(peek_socket(&name, Some(65534)).await, "closed");
    stop.cancel();
    store.close().unwrap();
}
