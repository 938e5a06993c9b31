//! A real PostgreSQL server for tests: the one `.ci/postgres start` started
//! (`AGENTOPS_PG_URL`, `AGENTOPS_PG_PASSWORD`), a fresh database per case,
//! dropped afterwards. Without a server the tests say SKIPPED and pass —
//! unless `AGENTOPS_REQUIRE_POSTGRES=1` (CI), when they fail.

#![allow(clippy::print_stderr)]

use agentops_store::pg::{PgOptions, PgStore, Target};

/// The server the environment names.
#[derive(Debug, Clone)]
pub struct PgServer {
    pub url: String,
    pub password: String,
}

impl PgServer {
    /// The server, or `None` after printing why `test` is skipped; panics
    /// when CI requires Postgres and none is configured.
    pub fn from_env(test: &str) -> Option<Self> {
        let url = std::env::var("AGENTOPS_PG_URL")
            .ok()
            .filter(|s| !s.is_empty());
        match url {
            Some(url) => Some(Self {
                url,
                password: std::env::var("AGENTOPS_PG_PASSWORD").unwrap_or_default(),
            }),
            None => {
                assert!(
                    std::env::var("AGENTOPS_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                    "AGENTOPS_REQUIRE_POSTGRES=1 but AGENTOPS_PG_URL is not set (eval \"$(.ci/postgres start)\")"
                );
                eprintln!(
                    "SKIPPED {test}: no PostgreSQL (set AGENTOPS_PG_URL, e.g. eval \"$(.ci/postgres start)\")"
                );
                None
            }
        }
    }

    /// The environment a client of this server sees: its password only.
    pub fn env(&self) -> impl Fn(&str) -> Option<String> + use<> {
        let pw = self.password.clone();
        move |k| (k == "PGPASSWORD" && !pw.is_empty()).then(|| pw.clone())
    }

    /// Environment variables for a child process (the binary under test).
    pub fn child_env(&self, db: &TestDb) -> Vec<(&'static str, String)> {
        vec![
            ("PGPASSWORD", self.password.clone()),
            ("AGENTOPS_STORE_URL", db.url.clone()),
        ]
    }

    fn admin(&self) -> Result<postgres::Client, String> {
        let t = Target::resolve(&self.url, &self.env()).map_err(|e| e.to_string())?;
        t.config()
            .connect(postgres::NoTls)
            .map_err(|e| e.to_string())
    }

    /// A new empty database on the server, dropped with the value.
    pub fn fresh_db(&self) -> Result<TestDb, String> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = format!(
            "agentops_t_{}_{}_{}",
            std::process::id(),
            agentops_core::time::now_micros(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut c = self.admin()?;
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
        let url = match self.url.rsplit_once('/') {
            Some((head, _)) => format!("{head}/{name}"),
            None => format!("{}/{name}", self.url),
        };
        Ok(TestDb {
            server: self.clone(),
            name,
            url,
        })
    }
}

/// A database made for one test.
#[derive(Debug)]
pub struct TestDb {
    server: PgServer,
    pub name: String,
    /// Its URL (no password).
    pub url: String,
}

impl TestDb {
    /// Its target, with the server's password.
    pub fn target(&self) -> Target {
        Target::resolve(&self.url, &self.server.env()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A store on it, migrated.
    pub fn store(&self) -> PgStore {
        PgStore::open(self.target(), PgOptions { migrate: true }).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A plain client on it, for what a test checks behind the store's back.
    pub fn client(&self) -> postgres::Client {
        self.target()
            .config()
            .connect(postgres::NoTls)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = self.server.admin() {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}
