use std::path::PathBuf;

/// Why the journal could not be opened, read or written. Every message names
/// the file and says what to do; none of these ever leads agentops to delete or
/// overwrite the journal.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{path}: the journal is not a readable SQLite database (it may be corrupt or truncated: {detail}). \
agentops has not modified it. Move it aside (`mv {path} {path}.broken`) and run `agentops init` to start a new journal; \
keep the old file to recover events from it (`sqlite3 {path}.broken .recover`)."
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "{path}: the journal has schema version {found}, newer than this agentops supports ({supported}). \
Upgrade agentops (`agentops version` shows this one), or point `store.url` at another file. The journal was not modified."
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "{path}: this SQLite database is not an agentops journal (it has other tables and no agentops marker). \
It was not modified. Point `store.url` at another file, or move this one away."
    )]
    NotJournal { path: PathBuf },
    #[error(
        "{path}: cannot open the journal: {reason}. Check the file's and its directory's permissions."
    )]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path}: no space left on device ({detail}); free some space and try again")]
    DiskFull { path: PathBuf, detail: String },
    #[error("{path}: no journal here yet; run `agentops init` to create it")]
    Missing { path: PathBuf },
    #[error(
        "{path}: other processes held the journal's write lock for {waited_ms} ms; nothing was written. \
Try again, or raise `store.busy_timeout_ms`."
    )]
    Busy { path: PathBuf, waited_ms: u64 },
    #[error("{path}: journal error: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: event {seq} is malformed in the journal: {reason}")]
    BadRow {
        path: PathBuf,
        seq: i64,
        reason: String,
    },
    #[error(
        "{path}: cannot keep a hook's events in the journal's spool: {reason}. Check the directory's permissions and free space."
    )]
    Spool { path: PathBuf, reason: String },
    #[error("{target}: {detail}")]
    Postgres { target: String, detail: String },
    #[error(
        "{target}: the team store has schema version {found}, newer than this agentops supports ({supported}). \
Upgrade agentops on this machine (`agentops version` shows this one); the database was not modified."
    )]
    PostgresNewerSchema {
        target: String,
        found: i64,
        supported: i64,
    },
    #[error("configuration: {0}")]
    Config(String),
    #[error("internal journal error: {0}")]
    Internal(String),
}
