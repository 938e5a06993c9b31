//! The flag that makes a hook's time limit wait for a memory write that is
//! committing.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set while a memory write is committing: the time limit then waits for it,
/// so a hook never leaves a half-made commit or a stale `index.lock`.
pub static COMMITTING: AtomicBool = AtomicBool::new(false);

/// Marks a memory write in progress (see [`COMMITTING`]).
pub struct CommitGuard;

impl CommitGuard {
    pub fn enter() -> Self {
        COMMITTING.store(true, Ordering::SeqCst);
        Self
    }
}

impl Drop for CommitGuard {
    fn drop(&mut self) {
        COMMITTING.store(false, Ordering::SeqCst);
    }
}
