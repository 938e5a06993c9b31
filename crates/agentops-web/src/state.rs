//! What a running dashboard holds: the project, its options, the CSRF token
//! of its pages, the journal folds and the search index kept warm.

use std::net::SocketAddr;
use std::sync::Mutex;

use agentops_api::{ApiError, Project};
use agentops_context::KnowledgeIndex;
use agentops_store::Journal;

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
}

impl State {
    pub fn new(project: Project, opts: UiOptions, addr: SocketAddr, csrf: String) -> Self {
        Self {
            project,
            opts,
            addr,
            csrf,
            folds: Mutex::new(Folds::default()),
            index: Mutex::new(None),
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
