//! Timing helpers: whole-process runs and percentiles.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Sorted samples of one measurement.
pub struct Samples(pub Vec<Duration>);

impl Samples {
    pub fn new(mut v: Vec<Duration>) -> Self {
        v.sort();
        Self(v)
    }

    pub fn pct(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let idx = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[idx.min(self.0.len() - 1)]
    }

    pub fn median(&self) -> Duration {
        self.pct(0.5)
    }
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Runs `argv` `n` times in `dir` (after 3 warm-ups) and returns wall times.
/// Fails loudly if the command fails, so a broken command never looks fast.
pub fn time_process(argv: &[&str], dir: &Path, n: usize) -> Samples {
    let run = || {
        let t = Instant::now();
        let st = Command::new(argv[0])
            .args(&argv[1..])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("spawn");
        let d = t.elapsed();
        assert!(
            st.success() || st.code() == Some(1),
            "{argv:?} failed: {st}"
        );
        d
    };
    for _ in 0..3 {
        run();
    }
    Samples::new((0..n).map(|_| run()).collect())
}
