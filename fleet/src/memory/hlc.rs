//! Hybrid logical clock stamps on records: wall-clock milliseconds in the high 48 bits, a
//! counter in the low 16. The owner stamps every op it orders with a value above both the
//! previous stamp and the wall clock, so stamps follow the version order on one node even when
//! the clock steps back, stay close to real time (the lag of a write seen on another node is
//! `now - wall part`), and order ops of different nodes the same way everywhere (ties broken by
//! node id), which is what last-writer-wins registers across nodes need.

/// Bits of the counter below the milliseconds.
const COUNTER_BITS: u32 = 16;

/// The stamp after `last` at wall-clock `wall_ms`: the wall clock with a zero counter if it is
/// ahead, else one more than `last` (the counter carries into the milliseconds when full, so
/// stamps never repeat).
pub fn next(last: u64, wall_ms: u64) -> u64 {
    let wall = wall_ms.min(u64::MAX >> COUNTER_BITS) << COUNTER_BITS;
    wall.max(last.saturating_add(1))
}

/// The wall clock in milliseconds since the Unix epoch (0 before it): what records, commits
/// and peer status are timed by.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The wall-clock milliseconds of a stamp.
pub fn wall_ms(stamp: u64) -> u64 {
    stamp >> COUNTER_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_clock_and_never_goes_back() {
        let a = next(0, 1_000);
        assert_eq!(wall_ms(a), 1_000);
        let b = next(a, 1_000);
        assert_eq!(
            (wall_ms(b), b - a),
            (1_000, 1),
            "same millisecond: the counter"
        );
        let c = next(b, 900);
        assert!(c > b, "clock stepped back: still after the last stamp");
        assert_eq!(wall_ms(c), 1_000);
        let d = next(c, 2_000);
        assert_eq!(d, 2_000 << 16, "clock ahead: it wins, counter reset");
    }

    #[test]
    fn a_full_counter_carries_into_the_milliseconds() {
        let full = (5u64 << 16) | 0xffff;
        let n = next(full, 5);
        assert_eq!((wall_ms(n), n & 0xffff), (6, 0));
        assert_eq!(next(u64::MAX - 1, u64::MAX), u64::MAX);
    }
}
