//! The sync scenario's charts: the write-to-visible lag as a histogram, lag, baseline read and
//! ack as CDFs, and ack and lag p99 per second.

use super::figure::{figure, per_second};
use crate::{
    chart::{self, PALETTE, Series, YAxis},
    run::{SyncFigures, decode_histogram},
};

/// The sync scenario's distributions: the write-to-visible lag as a histogram and, with the
/// baseline read and the ack, as CDFs; then ack and lag per second.
pub(super) fn charts(h: &mut String, f: &SyncFigures) {
    let lag = decode_histogram(&f.histograms.lag.data);
    let server_lag = f
        .histograms
        .server_lag
        .as_ref()
        .map(|h| decode_histogram(&h.data));
    let ack = decode_histogram(&f.histograms.ack.data);
    let baseline = decode_histogram(&f.histograms.baseline_read.data);
    if let Ok(lag) = &lag {
        h.push_str("<h3>Write-to-visible lag</h3>\n");
        figure(
            h,
            "How many writes became visible on the other server after each lag (log-spaced \
             buckets)",
            chart::latency_histogram(
                "write-to-visible lag",
                &chart::log_buckets(lag, 40),
                PALETTE[0],
            ),
        );
    }
    let mut series = Vec::new();
    for (name, color, h) in [
        ("lag", PALETTE[0], &lag),
        ("baseline read", PALETTE[6], &baseline),
        ("ack", PALETTE[1], &ack),
    ] {
        if let Ok(h) = h {
            series.push(Series::new(name, color, chart::cdf_points(h)));
        }
    }
    if let Some(Ok(h)) = &server_lag {
        series.push(Series::new(
            "lag, servers' clocks",
            PALETTE[2],
            chart::cdf_points(h),
        ));
    }
    figure(
        h,
        "Share of writes at or below each latency: the lag against a plain read of the same \
         server (the part of the lag that is the read itself) and the write's ack",
        chart::cdf("sync latencies, cumulative", &series),
    );
    figure(
        h,
        "Ack and lag p99 of each second (by the write's intended send time)",
        chart::lines(
            "sync p99 per second",
            "second of the measured window",
            "latency",
            YAxis::MicrosLog,
            &[
                Series::new(
                    "lag p99",
                    PALETTE[0],
                    per_second(&f.per_second, |s| s.lag_p99_us as f64),
                ),
                Series::new(
                    "ack p99",
                    PALETTE[1],
                    per_second(&f.per_second, |s| s.ack_p99_us as f64),
                ),
            ],
        ),
    );
}
