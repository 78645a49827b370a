//! The goose users of a phase: what they share while it runs ([`PhaseRun`]), each one's own
//! servers, connections, sessions and random stream ([`UserState`]), and their transactions:
//! open connections and sessions on start, one MCP call per iteration (paced, timed, recorded),
//! sessions deleted on stop.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use goose::goose::{GooseUser, TransactionResult};
use tokio_util::sync::CancellationToken;

use crate::{
    lock::lock,
    mcp::{ErrorClass, Sent},
    measure::Target,
    recorder::Recorder,
    transport::client::Client,
};

use super::phase::{Pacing, Phase};

/// How long before a request's due time its user wakes. Tokio's timer rounds a deadline up to
/// its next millisecond tick and sleeps in whole milliseconds, so a wake lands up to about 2 ms
/// after the deadline asked for (measured: with 1 ms, 40 % of sends at 1k req/s were still late).
const EARLY_WAKE: Duration = Duration::from_millis(2);

/// How often a user that is past the end of the phase looks again whether goose stopped it.
const IDLE: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    pub(super) start: Instant,
    /// When all users have been started: the open model's timetable begins here.
    pub(super) ramped: Instant,
    /// Requests started before this are warm-up and not recorded.
    pub(super) measure_from: Instant,
    /// No request is started at or after this.
    pub(super) deadline: Instant,
}

/// What every user of a phase shares.
pub(super) struct PhaseRun {
    pub(super) phase: Phase,
    pub(super) clock: Clock,
    pub(super) stop: CancellationToken,
    /// Open model: the number of the next request to send.
    pub(super) next: AtomicU64,
    pub(super) completed: AtomicU64,
    pub(super) users: Vec<Mutex<UserState>>,
    pub(super) shards: Vec<Mutex<Recorder>>,
}

/// One user's own state: its servers, its line to each, its random stream.
pub(super) struct UserState {
    pub(super) servers: Vec<usize>,
    /// This user's client of each of its servers: connection and session (taken out while a
    /// call uses it). Boxed: a call's future holds its client, and goose moves that future
    /// into a box per call; a client inline (~2 KB) made that copy that much larger.
    pub(super) clients: Vec<Option<Box<Client>>>,
    pub(super) random: fastrand::Rng,
    pub(super) sent: u64,
    /// Per-user pacing: when the next request is due.
    pub(super) due: Option<Instant>,
}

/// The call a user makes next: where in its round of servers it is (`slot`, an index into its
/// own lists, and `server`, into the phase's targets), the draw that picks the call from the
/// mix, its JSON-RPC id, and the slot's client, taken out for the call and given back after
/// it.
struct NextCall {
    slot: usize,
    server: usize,
    pick: u64,
    id: u64,
    client: Option<Box<Client>>,
}

impl UserState {
    /// Takes the next slot of this user's round of servers for a call.
    fn next_call(&mut self) -> NextCall {
        let slot = (self.sent % self.servers.len() as u64) as usize;
        self.sent += 1;
        NextCall {
            slot,
            server: self.servers[slot],
            pick: self.random.u64(..),
            id: self.sent,
            client: self.clients[slot].take(),
        }
    }
}

/// The servers user `user` of `users` cycles through: a share of every server when there are
/// more servers than users, else one server, so the whole run holds about max(users, servers)
/// connections and every server gets traffic.
pub fn assigned(user: usize, users: usize, servers: usize) -> Vec<usize> {
    if users >= servers {
        vec![user % servers]
    } else {
        (user..servers).step_by(users).collect()
    }
}

/// On start: a client of each of this user's servers, opened now (connection, and session
/// for the session versions), so the connections are held from the user's start. A session
/// that fails to open is retried by the first call to that server, whose latency and outcome
/// then include it.
pub(super) async fn on_start(phase_run: Arc<PhaseRun>, user: &mut GooseUser) -> TransactionResult {
    let Some(me) = phase_run.users.get(user.weighted_users_index) else {
        return Ok(());
    };
    let servers = lock(me).servers.clone();
    for (slot, server) in servers.into_iter().enumerate() {
        let Ok(mut client) = phase_run.client(server) else {
            continue;
        };
        // A failure here is retried, and counted, by the first call.
        let _ = client.open().await;
        lock(me).clients[slot] = Some(Box::new(client));
    }
    Ok(())
}

/// On stop: end every session, as a well-behaved client does.
pub(super) async fn on_stop(phase_run: Arc<PhaseRun>, user: &mut GooseUser) -> TransactionResult {
    let Some(me) = phase_run.users.get(user.weighted_users_index) else {
        return Ok(());
    };
    let open: Vec<Box<Client>> = lock(me)
        .clients
        .iter_mut()
        .filter_map(Option::take)
        .collect();
    for mut client in open {
        client.close().await;
    }
    Ok(())
}

/// One MCP call: wait until it is due (open models), pick a server and a call, send it on this
/// user's client of that server and read the answer, record it, and hand the outcome to goose
/// as well.
pub(super) async fn call(phase_run: Arc<PhaseRun>, user: &mut GooseUser) -> TransactionResult {
    let index = user.weighted_users_index;
    let Some(me) = phase_run.users.get(index) else {
        return Ok(());
    };
    let due = phase_run.due(&mut lock(me));
    if due >= phase_run.clock.deadline || phase_run.stop.is_cancelled() {
        // Past the end: idle until goose stops this user (it looks between transactions).
        tokio::time::sleep(IDLE).await;
        return Ok(());
    }
    // A request woken at its due time would go out late (see EARLY_WAKE) and carry that into
    // its corrected latency. Woken early, it goes out a little before it is due instead, and
    // its latency is its service time (never less); the rate over time is unchanged.
    if phase_run.phase.pacing != Pacing::Closed
        && let Some(wake) = due.checked_sub(EARLY_WAKE)
        && wake > Instant::now()
    {
        tokio::select! {
            biased;
            () = phase_run.stop.cancelled() => return Ok(()),
            () = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    let next = lock(me).next_call();
    let target = &phase_run.phase.targets[next.server];
    let mcp_call = target.mix.pick(next.pick);
    let start = Instant::now();
    let sent = match next
        .client
        .map_or_else(|| phase_run.client(next.server).map(Box::new), Ok)
    {
        Err(class) => Sent::failed(start.elapsed(), class),
        Ok(mut client) => {
            // A session opened here (the first was refused, or the last expired) delays this
            // call: the client counts it in the call's time.
            let sent = client.call(mcp_call, next.id).await;
            lock(me).clients[next.slot] = Some(client);
            sent
        }
    };
    phase_run.record(index, due, sent, mcp_call.label(), target);
    tell_goose(user, mcp_call.label(), sent).await
}

/// Records the call in goose's own metrics (timed to the whole response, as ours), so goose's
/// request counts cross-check ours.
async fn tell_goose(user: &mut GooseUser, label: &str, sent: Sent) -> TransactionResult {
    let error = sent.outcome.err().map(ErrorClass::name);
    // Goose's answer is the transaction's failure when the call failed; the call is recorded
    // either way, and our own counts carry the verdict.
    let _ = user
        .record_custom_request_duration(
            "POST",
            label,
            sent.elapsed,
            sent.outcome.is_ok(),
            sent.status,
            error,
        )
        .await;
    Ok(())
}

impl PhaseRun {
    /// A new client of server `server`, in the version the sweep found.
    fn client(&self, server: usize) -> Result<Client, ErrorClass> {
        let target = &self.phase.targets[server];
        Client::new(
            &target.url,
            &target.transport,
            target.version,
            &self.phase.settings,
        )
    }

    /// When this user's next request is due: now (closed loop), the next slot of the shared
    /// timetable (open model), or the user's own next slot (per-user rate).
    pub(super) fn due(&self, state: &mut UserState) -> Instant {
        match self.phase.pacing {
            Pacing::Closed => Instant::now(),
            Pacing::Open { rate } => {
                let k = self.next.fetch_add(1, Ordering::Relaxed);
                self.clock.ramped
                    + self.phase.open_offset
                    + Duration::from_secs_f64(k as f64 / rate)
            }
            Pacing::PerUser { rate } => {
                let interval = Duration::from_secs_f64(1.0 / rate);
                let due = match state.due {
                    Some(due) => due,
                    // A random phase within the first interval, so users do not send in step.
                    None => {
                        let fraction = state.random.u64(..1_000_000) as f64 / 1e6;
                        self.clock.start.max(Instant::now()) + interval.mul_f64(fraction)
                    }
                };
                state.due = Some(due + interval);
                due
            }
        }
    }

    /// Records a finished call that was due at `due`. Latency counts from `due` in the open
    /// models (a stall delays every request scheduled behind it) and from the send otherwise.
    pub(super) fn record(
        &self,
        user: usize,
        due: Instant,
        sent: Sent,
        label: &str,
        target: &Target,
    ) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        let Some(since) = due.checked_duration_since(self.clock.measure_from) else {
            return;
        };
        let latency = match self.phase.pacing {
            Pacing::Closed => sent.elapsed,
            Pacing::Open { .. } | Pacing::PerUser { .. } => due.elapsed().max(sent.elapsed),
        };
        let mut recorder = lock(&self.shards[user % self.shards.len()]);
        recorder.record_open(
            since.as_secs() as usize,
            latency,
            sent.elapsed,
            sent.outcome,
        );
        recorder.record_call(label, latency, sent.outcome);
        recorder.record_group(&target.group, latency, sent.outcome);
        recorder.record_server(&target.id, latency, sent.outcome);
        recorder.asides.add(&sent.asides);
        if let (Ok(()), Some(ttfb)) = (sent.outcome, sent.ttfb) {
            recorder.record_ttfb(ttfb);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn every_server_is_assigned_and_every_user_has_one() {
        for (users, servers) in [(64, 500), (4, 10), (10, 10), (64, 10), (1, 3)] {
            let mut seen = vec![false; servers];
            for w in 0..users {
                let mine = assigned(w, users, servers);
                assert!(!mine.is_empty());
                for s in mine {
                    seen[s] = true;
                }
            }
            assert!(seen.iter().all(|s| *s), "{users} users, {servers} servers");
        }
        assert_eq!(
            assigned(3, 64, 500),
            vec![3, 67, 131, 195, 259, 323, 387, 451]
        );
    }
}
