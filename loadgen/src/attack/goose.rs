//! Goose's part of a phase: a goose attack of one scenario whose transactions are the users'
//! own (open sessions, call, close sessions), configured to launch, run and stop them and to
//! keep quiet otherwise.

use std::{future::Future, pin::Pin, sync::Arc};

use goose::{
    config::GooseConfiguration,
    goose::{GooseUser, Scenario, Transaction, TransactionResult},
    prelude::{GooseAttack, GooseDefault, GooseDefaultType as _},
};

use super::users::{PhaseRun, call, on_start, on_stop};

/// The goose release series loadgen is built against (the requirement in Cargo.toml).
pub(super) const GOOSE_SERIES: &str = "0.19";

type TransactionFuture<'r> = Pin<Box<dyn Future<Output = TransactionResult> + Send + 'r>>;

/// A goose transaction that runs `f` with the running phase ([`PhaseRun`]).
fn transaction(
    phase_run: &Arc<PhaseRun>,
    f: for<'r> fn(Arc<PhaseRun>, &'r mut GooseUser) -> TransactionFuture<'r>,
) -> Transaction {
    let phase_run = phase_run.clone();
    Transaction::new(Arc::new(move |user| f(phase_run.clone(), user)))
}

pub(super) fn build_attack(phase_run: &Arc<PhaseRun>, host: &str) -> anyhow::Result<GooseAttack> {
    let phase = &phase_run.phase;
    let scenario = Scenario::new(&phase.name)
        .register_transaction(
            transaction(phase_run, |phase_run, user| {
                Box::pin(on_start(phase_run, user))
            })
            .set_name("open sessions")
            .set_on_start(),
        )
        .register_transaction(
            transaction(phase_run, |phase_run, user| Box::pin(call(phase_run, user)))
                .set_name("call"),
        )
        .register_transaction(
            transaction(phase_run, |phase_run, user| {
                Box::pin(on_stop(phase_run, user))
            })
            .set_name("close sessions")
            .set_on_stop(),
        );
    // All users at once when there is no ramp-up (goose's default is one per second).
    let increase_rate = if phase.ramp_up.is_zero() {
        1_000_000.0
    } else {
        phase.users as f64 / phase.ramp_up.as_secs_f64()
    };
    let run_time = (phase.warmup + phase.duration)
        .as_secs_f64()
        .ceil()
        .max(1.0) as usize;
    // Calls go over our own connections, so goose's users need no client of their own: one
    // shared client spares building one per user (each loads the platform's TLS roots).
    let attack = GooseAttack::initialize_with_config(GooseConfiguration::default())
        .and_then(|a| {
            a.set_client_builder_without_cookies(
                goose::client::GooseClientBuilder::new().without_cookies(),
            )
        })
        .map_err(|e| anyhow::anyhow!("goose: {e:?}"))?
        .register_scenario(scenario);
    let configure = || -> Result<Box<GooseAttack>, goose::GooseError> {
        attack
            .set_default(GooseDefault::Host, host)?
            .set_default(GooseDefault::Users, phase.users)?
            .set_default(
                GooseDefault::IncreaseRate,
                format!("{increase_rate:.6}").as_str(),
            )?
            .set_default(GooseDefault::RunTime, run_time)?
            .set_default(
                GooseDefault::Timeout,
                format!("{}", phase.settings.timeout.as_secs_f64()).as_str(),
            )?
            // Goose's own log to warnings only; our progress line says what runs.
            .set_default(GooseDefault::Quiet, 1)?
            .set_default(GooseDefault::NoPrintMetrics, true)?
            .set_default(GooseDefault::NoErrorSummary, true)?
            .set_default(GooseDefault::NoResetMetrics, true)?
            .set_default(GooseDefault::NoTransactionMetrics, true)?
            .set_default(GooseDefault::NoScenarioMetrics, true)?
            .set_default(GooseDefault::NoPercentilesOverTime, true)?
            .set_default(GooseDefault::NoTelnet, true)?
            .set_default(GooseDefault::NoGzip, true)
    };
    configure()
        .map(|a| *a)
        .map_err(|e| anyhow::anyhow!("goose configuration: {e:?}"))
}
