//! Rendering: text for people, JSON for programs, and the verbosity flags.
//!
//! Every write goes through [`write_out`] / [`write_err`]: when the reader of
//! stdout has gone (`agentops search … | head`), the command stops quietly
//! instead of panicking on the broken pipe.

use std::io::Write;

use serde::Serialize;

/// Writes to stdout; exits quietly (status 0) if stdout was closed.
pub(crate) fn write_out(text: &str) {
    let mut so = std::io::stdout().lock();
    if so
        .write_all(text.as_bytes())
        .and_then(|()| so.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// Writes to stderr; a closed stderr is ignored.
pub(crate) fn write_err(text: &str) {
    let mut se = std::io::stderr().lock();
    let _ = se.write_all(text.as_bytes());
}

/// Where and how a command's results are printed.
pub struct Output {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
}

impl Output {
    pub fn new(json: bool, quiet: bool, verbose: u8) -> Self {
        Self {
            json,
            quiet,
            verbose,
        }
    }

    /// Prints a value as pretty JSON on stdout.
    pub fn json<T: Serialize>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(s) => write_out(&format!("{s}\n")),
            Err(e) => self.error(&format!("cannot render JSON: {e}")),
        }
    }

    /// Prints a line of ordinary text, unless `--quiet`.
    pub fn line(&self, text: &str) {
        if !self.quiet {
            write_out(&format!("{text}\n"));
        }
    }

    /// Prints a line even with `--quiet` (warnings and failures).
    pub fn important(&self, text: &str) {
        write_out(&format!("{text}\n"));
    }

    /// Prints text exactly as given on stdout (a packet), even with `--quiet`.
    pub fn raw(&self, text: &str) {
        write_out(text);
    }

    /// Prints an informational line on stderr (explanations beside a packet).
    pub fn warn_block(&self, line: &str) {
        write_err(&format!("{line}\n"));
    }

    /// Prints a warning on stderr (also with `--json`, so stdout stays JSON).
    pub fn warn(&self, message: &str) {
        write_err(&format!("warning: {message}\n"));
    }

    /// Prints an error on stderr: as JSON with `--json`, else as `error: …`.
    pub fn error(&self, message: &str) {
        if self.json {
            write_err(&format!("{}\n", serde_json::json!({ "error": message })));
        } else {
            write_err(&format!("error: {message}\n"));
        }
    }
}
