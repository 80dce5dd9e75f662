//! Resource use of a process from `/proc` (Linux): peak RSS (`VmHWM`),
//! current RSS and CPU time (`utime + stime`).

use std::time::Duration;

/// A reading of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcSample {
    /// Peak resident set size, bytes (`VmHWM`).
    pub peak_rss: u64,
    /// Resident set size now, bytes (`VmRSS`).
    pub rss: u64,
    /// User plus system CPU time.
    pub cpu: Duration,
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`,
/// else the usual 100).
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t: &u64| t > 0)
        .unwrap_or(100)
}

/// A `kB` field of `/proc/<pid>/status`, in bytes.
pub fn status_kb(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kb * 1024)
    })
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line, in ticks.
pub fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: count
    // fields after its closing parenthesis, where field 3 starts.
    let after = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Reads process `pid`.
pub fn sample(pid: u32, ticks_per_sec: u64) -> std::io::Result<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "unexpected /proc format");
    let ticks = stat_cpu_ticks(&stat).ok_or_else(bad)?;
    Ok(ProcSample {
        peak_rss: status_kb(&status, "VmHWM").ok_or_else(bad)?,
        rss: status_kb(&status, "VmRSS").ok_or_else(bad)?,
        cpu: Duration::from_secs_f64(ticks as f64 / ticks_per_sec.max(1) as f64),
    })
}

/// Resets the peak RSS of `pid` to its current RSS (writes `5` to
/// `/proc/<pid>/clear_refs`; needs Linux 4.0+ and the right to write there).
pub fn reset_peak(pid: u32) -> std::io::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_formats() {
        let status = "Name:\tllm\nVmPeak:\t  100 kB\nVmHWM:\t   2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(status_kb(status, "VmHWM"), Some(2048 * 1024));
        assert_eq!(status_kb(status, "VmRSS"), Some(1024 * 1024));
        assert_eq!(status_kb(status, "VmSwap"), None);
        let stat = "4242 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 3";
        assert_eq!(stat_cpu_ticks(stat), Some(300));
        assert_eq!(stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        let s = sample(std::process::id(), clock_ticks()).unwrap();
        assert!(s.peak_rss >= s.rss && s.rss > 0);
    }
}
