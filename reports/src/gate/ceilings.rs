//! The third layer: loose absolute bounds on every judged run, to catch a collapse when there
//! is no baseline to compare with.

use super::{
    check::Checks,
    config::{Bound, Ceilings},
};
use crate::run::RunFile;

/// Every ceiling of one run that the config sets.
pub(super) fn check(ceilings: &Ceilings, run: &RunFile, c: &mut Checks) {
    for (key, bound, unit, value, read) in ceilings.rules() {
        let Some(limit) = value else { continue };
        match read(run) {
            Err(why) => c.skip(key, why),
            Ok(measured) => {
                let (ok, sign, word) = match bound {
                    Bound::AtMost => (measured <= limit, "≤", "above"),
                    Bound::AtLeast => (measured >= limit, "≥", "below"),
                };
                // Not `fmt_micros`: the figure stays in the key's unit (ms, req/s), as its limit.
                c.judge(
                    key,
                    ok,
                    format!("{measured:.2} {unit}"),
                    format!("{sign} {limit} {unit}"),
                    if ok {
                        "within the bound".into()
                    } else {
                        format!("{measured:.2} {unit} is {word} the bound of {limit} {unit}")
                    },
                );
            }
        }
    }
}
