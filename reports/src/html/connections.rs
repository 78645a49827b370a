//! The held-connections section: how many connections were asked for and the fewest held on
//! either side during the measured window, then the latency under them as a phase section.

use std::fmt::Write as _;

use super::phase;
use crate::run::ConnectionsResult;

/// The counts of connections held, then the load phase they carried.
pub(super) fn section(h: &mut String, c: &ConnectionsResult) {
    let _ = write!(
        h,
        "<section id=\"connections\">\n<h2>Held connections</h2>\n<p>{} connections asked \
         for, each sending {} req/s. Fewest established during the measured window: {} on \
         the client side (sockets in <code>/proc</code>), {} as the servers counted them \
         ({} samples).</p>\n</section>\n",
        c.asked,
        c.per_connection_rps,
        c.held_min_client
            .map_or("unknown".into(), |n| n.to_string()),
        c.held_min_server
            .map_or("not reported".into(), |n| n.to_string()),
        c.samples,
    );
    phase::section(
        h,
        "connections-latency",
        "Latency while the connections were held",
        &c.results,
    );
}
