//! What a running dashboard holds: the project, its options, the CSRF token
//! of its pages, the journal folds and the search index kept warm.

use std::net::SocketAddr;
use std::sync::Mutex;

use agentops_api::{ApiError, Project};
use agentops_context::KnowledgeIndex;
use agentops_core::RunId;
use agentops_store::{Journal, Query};
use agentops_telemetry::span::{Builder, Span};
use std::collections::HashMap;

use crate::data::Folds;
use crate::serve::UiOptions;

pub struct State {
    pub project: Project,
    pub opts: UiOptions,
    pub addr: SocketAddr,
    /// The token every form carries (the pages are readable only with the
    /// session token, so another site cannot learn it).
    pub csrf: String,
    folds: Mutex<Folds>,
    index: Mutex<Option<KnowledgeIndex>>,
    /// Span builders of the runs and sessions shown lately, each fed the
    /// events after its position (a long run's trace is not rebuilt from
    /// its ten thousand events on every page).
    traces: Mutex<HashMap<String, Builder>>,
}

/// Span builders kept at most.
const TRACES: usize = 8;

impl State {
    pub fn new(project: Project, opts: UiOptions, addr: SocketAddr, csrf: String) -> Self {
        Self {
            project,
            opts,
            addr,
            csrf,
            folds: Mutex::new(Folds::default()),
            index: Mutex::new(None),
            traces: Mutex::new(HashMap::new()),
        }
    }

    /// Folds the journal once before the first page asks.
    pub fn warm(&self) {
        if let Ok(j) = self.journal() {
            let _ = self.with_folds(&j, |_| Ok(()));
        }
    }

    /// The journal, read-only (pages).
    pub fn journal(&self) -> Result<Journal, ApiError> {
        self.project.journal_read()
    }

    /// The journal for writing (actions).
    pub fn journal_write(&self) -> Result<Journal, ApiError> {
        self.project.journal()
    }

    /// `f` over the folds, brought up to the journal's end first.
    pub fn with_folds<T>(
        &self,
        j: &Journal,
        f: impl FnOnce(&mut Folds) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut g = self
            .folds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.catch_up(j).map_err(ApiError::failed)?;
        f(&mut g)
    }

    /// The spans of run or session `run`, its builder brought up to the
    /// journal's end (built afresh, parsed in full, when an event is
    /// malformed: that path names it).
    pub fn spans(&self, j: &Journal, run: &RunId) -> Result<Vec<Span>, ApiError> {
        let mut g = self
            .traces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !g.contains_key(run.as_str()) && g.len() >= TRACES {
            g.clear();
        }
        let b = g
            .entry(run.as_str().to_owned())
            .or_insert_with(|| Builder::new(run.as_str()));
        let mut ok = true;
        j.scan(
            &Query {
                run_id: Some(run.clone()),
                after_seq: Some(b.last_seq()),
                ..Query::default()
            },
            &mut |r| ok = ok && b.push_raw(r),
        )
        .map_err(ApiError::failed)?;
        if !ok {
            g.remove(run.as_str());
            return agentops_telemetry::span::read(j, run).map_err(ApiError::failed);
        }
        Ok(b.spans())
    }

    /// `f` over the search index, caught up with `.agents/` first.
    pub fn with_index<T>(
        &self,
        f: impl FnOnce(&KnowledgeIndex) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut g = self
            .index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match g.as_mut() {
            Some(idx) => {
                idx.catch_up(&self.project.layout)
                    .map_err(ApiError::failed)?;
            }
            None => {
                let (idx, _) = agentops_api::knowledge::open_index(&self.project)?;
                *g = Some(idx);
            }
        }
        match g.as_ref() {
            Some(idx) => f(idx),
            None => Err(ApiError::failed("the search index could not be opened")),
        }
    }
}
