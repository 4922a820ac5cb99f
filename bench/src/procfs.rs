//! What `/proc` says about the server under load: its resident memory, and
//! CPU time (its own, ours, and the whole machine's, to tell how noisy the
//! machine was during a run).

use anyhow::Context as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size now (VmRSS).
    pub rss_kib: u64,
    /// The largest resident set size so far (VmHWM).
    pub peak_kib: u64,
    /// Of `rss_kib`: anonymous memory (heap, stacks) and file pages (binary, mapped files).
    pub anon_kib: u64,
    pub file_kib: u64,
}

pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}; is process {pid} running?"))?;
    parse_status(&status).with_context(|| format!("{path} lacks the VmRSS/VmHWM/RssAnon/RssFile lines"))
}

fn parse_status(status: &str) -> Option<Memory> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
        anon_kib: field("RssAnon:")?,
        file_kib: field("RssFile:")?,
    })
}

/// CPU clock ticks: of one process (user + system), and of the machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ticks {
    pub process: u64,
    pub self_process: u64,
    pub machine_busy: u64,
    pub machine_total: u64,
    pub cpus: u64,
}

pub fn ticks(pid: Option<u32>) -> anyhow::Result<Ticks> {
    let process = match pid {
        Some(pid) => process_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)
            .context("unreadable /proc/PID/stat")?,
        None => 0,
    };
    let self_process =
        process_ticks(&std::fs::read_to_string("/proc/self/stat")?).context("unreadable /proc/self/stat")?;
    let (machine_busy, machine_total, cpus) =
        machine_ticks(&std::fs::read_to_string("/proc/stat")?).context("unreadable /proc/stat")?;
    Ok(Ticks { process, self_process, machine_busy, machine_total, cpus })
}

/// utime + stime: fields 14 and 15, counted after the `)` that ends the command name.
fn process_ticks(stat: &str) -> Option<u64> {
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    Some(fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?)
}

/// Busy and total ticks over all CPUs (idle and iowait count as not busy), and the CPU count.
fn machine_ticks(stat: &str) -> Option<(u64, u64, u64)> {
    let mut lines = stat.lines();
    let values: Vec<u64> =
        lines.next()?.strip_prefix("cpu ")?.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    let cpus = lines.filter(|l| l.starts_with("cpu")).count() as u64;
    Some((total - idle, total, cpus.max(1)))
}

/// CPU use between two readings, in percent of one core, so a process busy
/// on both cores of a two-core machine shows 200.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuUse {
    pub server_pct: f64,
    pub bench_pct: f64,
    /// Everything running, out of `100 x cpus`.
    pub machine_pct: f64,
    /// The machine's capacity in the same unit.
    pub capacity_pct: f64,
}

impl CpuUse {
    pub fn between(before: Ticks, after: Ticks) -> Option<Self> {
        let total = after.machine_total.checked_sub(before.machine_total).filter(|t| *t > 0)? as f64;
        let per_core = |ticks: u64| 100.0 * after.cpus as f64 * ticks as f64 / total;
        Some(Self {
            server_pct: per_core(after.process.saturating_sub(before.process)),
            bench_pct: per_core(after.self_process.saturating_sub(before.self_process)),
            machine_pct: per_core(after.machine_busy.saturating_sub(before.machine_busy)),
            capacity_pct: 100.0 * after.cpus as f64,
        })
    }

    /// What ran besides the server and the benchmark (PostgreSQL, other jobs).
    pub fn others_pct(&self) -> f64 {
        (self.machine_pct - self.server_pct - self.bench_pct).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_lines() {
        let status =
            "Name:\tcertctl\nVmHWM:\t  123456 kB\nVmRSS:\t   98765 kB\nRssAnon:\t 60000 kB\nRssFile:\t 38765 kB\n";
        assert_eq!(
            parse_status(status),
            Some(Memory { rss_kib: 98765, peak_kib: 123456, anon_kib: 60000, file_kib: 38765 })
        );
        assert_eq!(parse_status("Name:\tkthreadd\n"), None);
    }

    #[test]
    fn reads_cpu_ticks() {
        // A command name with spaces and a parenthesis must not shift the fields.
        let stat = "42 (tokio (x) y) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 9 0 1000 0 0";
        assert_eq!(process_ticks(stat), Some(300));
        let machine =
            "cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\ncpu1 50 3 25 400 10 2 1 0 0 0\nintr 1\n";
        assert_eq!(machine_ticks(machine), Some((160, 980, 2)));
    }

    #[test]
    fn cpu_use_is_in_percent_of_one_core() {
        let before = Ticks { process: 0, self_process: 0, machine_busy: 0, machine_total: 0, cpus: 2 };
        let after = Ticks { process: 100, self_process: 20, machine_busy: 150, machine_total: 200, cpus: 2 };
        let u = CpuUse::between(before, after).unwrap();
        assert_eq!((u.server_pct, u.bench_pct, u.machine_pct, u.capacity_pct), (100.0, 20.0, 150.0, 200.0));
        assert_eq!(u.others_pct(), 30.0);
        assert_eq!(CpuUse::between(after, after), None);
    }

    #[test]
    fn reads_this_process() {
        let m = memory(std::process::id()).unwrap();
        assert!(m.rss_kib > 0 && m.peak_kib >= m.rss_kib && m.anon_kib + m.file_kib <= m.rss_kib, "{m:?}");
        let t = ticks(Some(std::process::id())).unwrap();
        assert!(t.machine_total > t.machine_busy && t.cpus >= 1, "{t:?}");
    }
}
