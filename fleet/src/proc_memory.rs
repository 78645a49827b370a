//! Resident memory of processes, read from `/proc` (Linux): a process's RSS (`VmRSS` of
//! `/proc/<pid>/status`) and its proportional set size (`Pss` of `/proc/<pid>/smaps_rollup`:
//! pages shared with other processes divided among them, so a sum over many processes counts
//! them once). Here for the fleet's neighbours: loadgen samples stdio servers and the embedded
//! fleet with it, benches a fleet's processes. `None` where the process is gone or the kernel
//! does not tell.

/// Resident set size of process `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kb_field(&status, "VmRSS:").map(|kb| kb * 1024)
}

/// Proportional set size of process `pid`, in bytes.
pub fn pss_bytes(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    kb_field(&rollup, "Pss:").map(|kb| kb * 1024)
}

/// The value of a `Key:   123 kB` line.
fn kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn this_process_has_memory() {
        let me = std::process::id();
        let rss = rss_bytes(me).unwrap();
        assert!(rss > 1024 * 1024, "{rss}");
        // PSS never exceeds RSS.
        assert!(pss_bytes(me).unwrap() <= rss_bytes(me).unwrap() + 1024 * 1024);
        assert_eq!(rss_bytes(u32::MAX), None);
        assert_eq!(kb_field("Pss:   12 kB\n", "Pss:"), Some(12));
    }
}
