//! Rendering: text for people, JSON for programs, and the verbosity flags.

use serde::Serialize;

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
            Ok(s) => println!("{s}"),
            Err(e) => self.error(&format!("cannot render JSON: {e}")),
        }
    }

    /// Prints a line of ordinary text, unless `--quiet`.
    pub fn line(&self, text: &str) {
        if !self.quiet {
            println!("{text}");
        }
    }

    /// Prints a line even with `--quiet` (warnings and failures).
    pub fn important(&self, text: &str) {
        println!("{text}");
    }

    /// Prints text exactly as given on stdout (a packet), even with `--quiet`.
    pub fn raw(&self, text: &str) {
        print!("{text}");
    }

    /// Prints an informational line on stderr (explanations beside a packet).
    pub fn warn_block(&self, line: &str) {
        eprintln!("{line}");
    }

    /// Prints a warning on stderr (also with `--json`, so stdout stays JSON).
    pub fn warn(&self, message: &str) {
        eprintln!("warning: {message}");
    }

    /// Prints an error on stderr: as JSON with `--json`, else as `error: …`.
    pub fn error(&self, message: &str) {
        if self.json {
            eprintln!("{}", serde_json::json!({ "error": message }));
        } else {
            eprintln!("error: {message}");
        }
    }
}
