//! Timing helpers: whole-process runs and percentiles.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Sorted samples of one measurement.
#[derive(Debug)]
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
    time_process_input(argv, dir, None, n)
}

/// [`time_process`] with `input` written to the command's stdin (a hook).
pub fn time_process_input(argv: &[&str], dir: &Path, input: Option<&[u8]>, n: usize) -> Samples {
    time_process_inputs(argv, dir, &|_| input.map(<[u8]>::to_vec), n)
}

/// One run of `argv` in `dir` with `input` on its stdin: its wall time.
fn run_once(argv: &[&str], dir: &Path, input: Option<Vec<u8>>) -> Duration {
    let t = Instant::now();
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .current_dir(dir)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        let _ = stdin.write_all(&bytes);
    }
    let st = child.wait().expect("wait");
    let d = t.elapsed();
    assert!(
        st.success() || st.code() == Some(1),
        "{argv:?} failed: {st}"
    );
    d
}

/// Like [`time_process_input`], with the input of the `i`-th run (warm-ups
/// are runs 0–2) made by `input`.
pub fn time_process_inputs(
    argv: &[&str],
    dir: &Path,
    input: &dyn Fn(usize) -> Option<Vec<u8>>,
    n: usize,
) -> Samples {
    for i in 0..3 {
        run_once(argv, dir, input(i));
    }
    Samples::new((3..n + 3).map(|i| run_once(argv, dir, input(i))).collect())
}

/// A command, the directory it runs in, and its stdin.
pub type Timed<'a> = (&'a [&'a str], &'a Path, Option<&'a [u8]>);

/// Several commands timed in turn, one run of each per round, so that a
/// machine whose speed drifts (a shared VM) moves them all alike and a
/// command is compared with its floor in the same instants.
pub fn time_interleaved(cmds: &[Timed<'_>], n: usize) -> Vec<Samples> {
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); cmds.len()];
    for round in 0..n + 3 {
        for (k, (argv, dir, input)) in cmds.iter().enumerate() {
            let d = run_once(argv, dir, input.map(<[u8]>::to_vec));
            if round >= 3 {
                times[k].push(d);
            }
        }
    }
    times.into_iter().map(Samples::new).collect()
}
