//! How far this machine's clock is from the servers': shards on several machines line their
//! seconds up by their own clocks, so a shard whose clock is off puts its load in the wrong
//! seconds of the merged run. Measured against the first target's HTTP `Date` header (one
//! second of resolution): calls spaced [`SPACING`] apart until the date turns to the next
//! second, which happened on the server between the previous call's send and this call's
//! answer; the middle of that span, against the new second, is the offset, and half the span
//! its error. Every shard measures the same servers, so their offsets compare even where the
//! servers' own clock is off.

use std::time::{Duration, SystemTime};

use crate::{
    measure::Target,
    runfile::ClockOffset,
    transport::{
        client::Transport,
        http::{HttpCall, HttpClient},
        settings::HttpSettings,
    },
};

/// Time between the calls.
const SPACING: Duration = Duration::from_millis(20);
/// Calls at most: a little over a second of them, so one second boundary falls among them.
const MAX_CALLS: u32 = 70;

/// The offset of this machine's clock from the first HTTP target's, or why there is none.
pub async fn estimate(
    target: &Target,
    settings: &std::sync::Arc<HttpSettings>,
) -> Result<ClockOffset, String> {
    if !matches!(target.transport, Transport::StreamableHttp) {
        return Err("the first target is not an HTTP server".into());
    }
    let mut client = HttpClient::new(&target.url, settings, target.version)
        .map_err(|e| format!("no client for {}: {}", target.url, e.name()))?;
    let found = watch_the_second_turn(&mut client, &target.url).await;
    // A session the calls opened is ended, as the load's are.
    client.close().await;
    found
}

async fn watch_the_second_turn(
    client: &mut HttpClient,
    url: &reqwest::Url,
) -> Result<ClockOffset, String> {
    let mut before: Option<(SystemTime, u64)> = None;
    for id in 1..=u64::from(MAX_CALLS) {
        let sent = SystemTime::now();
        let answer = client
            .request(&HttpCall::tools_list(), id)
            .await
            .map_err(|e| format!("a call to {url} failed ({})", e.name()))?;
        let received = SystemTime::now();
        let date = answer
            .headers
            .get(http::header::DATE)
            .ok_or_else(|| format!("{url} sends no Date header"))?;
        let second = date
            .to_str()
            .ok()
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .ok_or_else(|| format!("{url} sends a Date header that is no HTTP date"))?
            .as_secs();
        if let Some((sent_before, second_before)) = before
            && second > second_before
        {
            return Ok(offset(sent_before, received, second));
        }
        before = Some((sent, second));
        tokio::time::sleep(SPACING).await;
    }
    Err(format!(
        "{url}'s Date header did not turn to the next second within {MAX_CALLS} calls"
    ))
}

/// The offset when the server's clock turned to `second` between `from` and `to` (our clock).
fn offset(from: SystemTime, to: SystemTime, second: u64) -> ClockOffset {
    let ms = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let (from, to) = (ms(from), ms(to));
    ClockOffset {
        offset_ms: (from + to) / 2.0 - second as f64 * 1000.0,
        error_ms: (to - from) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_turn_of_the_second_gives_the_offset() {
        let at = |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
        // The server turned to second 100 between our 100.240 and 100.280: we are 260 ms ahead,
        // give or take 20.
        let o = offset(at(100_240), at(100_280), 100);
        assert!((o.offset_ms - 260.0).abs() < 1e-6 && (o.error_ms - 20.0).abs() < 1e-6);
        // Between our 99.900 and 99.940: 80 ms behind.
        let o = offset(at(99_900), at(99_940), 100);
        assert!((o.offset_ms + 80.0).abs() < 1e-6);
    }
}
