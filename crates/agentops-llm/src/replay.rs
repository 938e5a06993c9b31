//! The replay backend: answers from a recorded run (`agentops show RUN
//! --recording > calls.jsonl`), by request key first, else in order.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::Backend;
use crate::error::{ErrorKind, LlmError};
use crate::types::{Request, Response};

/// One recorded call: a line of a recording.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recorded {
    /// [`Request::key`] of the request answered.
    #[serde(default)]
    pub key: String,
    pub response: Response,
}

/// Which recorded calls are used, and where each key's calls are.
type ReplayState = (Vec<bool>, HashMap<String, Vec<usize>>);

/// Answers requests from a recording.
#[derive(Debug)]
pub struct ReplayBackend {
    calls: Vec<Recorded>,
    state: Mutex<ReplayState>,
}

impl ReplayBackend {
    /// Reads a JSON-lines recording; a bad line is an error naming it.
    pub fn open(path: &Path) -> Result<Self, LlmError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            LlmError::new(
                ErrorKind::Config,
                format!("{}: cannot read the recording: {e}", path.display()),
            )
        })?;
        let mut calls = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let r: Recorded = serde_json::from_str(line).map_err(|e| {
                LlmError::new(
                    ErrorKind::Config,
                    format!("{}:{}: not a recorded call ({e}); expected {{\"key\": …, \"response\": …}}", path.display(), i + 1),
                )
            })?;
            calls.push(r);
        }
        Ok(Self::new(calls))
    }

    pub fn new(calls: Vec<Recorded>) -> Self {
        let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, c) in calls.iter().enumerate() {
            if !c.key.is_empty() {
                by_key.entry(c.key.clone()).or_default().push(i);
            }
        }
        let used = vec![false; calls.len()];
        Self {
            calls,
            state: Mutex::new((used, by_key)),
        }
    }
}

impl Backend for ReplayBackend {
    fn provider(&self) -> &str {
        "replay"
    }

    fn offers_tools(&self) -> bool {
        true
    }

    fn complete(&self, req: &Request, on_text: &mut dyn FnMut(&str)) -> Result<Response, LlmError> {
        let mut st = self
            .state
            .lock()
            .map_err(|_| LlmError::new(ErrorKind::Config, "replay state poisoned"))?;
        let key = req.key();
        let (used, by_key) = &mut *st;
        let pick = by_key
            .get(&key)
            .and_then(|v| v.iter().copied().find(|&i| !used[i]))
            .or_else(|| (0..used.len()).find(|&i| !used[i]));
        let Some(i) = pick else {
            return Err(LlmError::new(
                ErrorKind::Config,
                format!(
                    "the recording has no answer left for this request ({} recorded, all used)",
                    self.calls.len()
                ),
            ));
        };
        used[i] = true;
        let r = self.calls[i].response.clone();
        let t = r.text();
        if !t.is_empty() {
            on_text(&t);
        }
        Ok(r)
    }
}
