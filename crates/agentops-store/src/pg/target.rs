//! Where the team store is: a `postgres://` URL (or libpq key=value string)
//! completed from the standard `PG*` environment variables and the password
//! file, the way `psql` does — so one setting serves both.
//!
//! The password is never taken from `store.url` (it would sit in a config
//! file or a shell history): from `PGPASSWORD` or `~/.pgpass`
//! (`PGPASSFILE`) only. Everything shown — errors, `store status`, logs —
//! is [`Target::shown`], which has no password in it.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::StoreError;

/// True when `url` names a Postgres server rather than a SQLite file.
pub fn is_postgres_url(url: &str) -> bool {
    let u = url.trim_start();
    u.starts_with("postgres://") || u.starts_with("postgresql://")
}

/// Why a `store.url` naming Postgres cannot be used, without the key (the
/// configuration check names it): a password in it, or a URL that does
/// not parse.
pub fn check_url(url: &str) -> Result<(), String> {
    if agentops_core::config::url_has_password(url) {
        return Err(
            "has a password in it, which agentops never reads from its configuration; \
remove it and set PGPASSWORD or add it to ~/.pgpass (PGPASSFILE)"
                .into(),
        );
    }
    let (rest, mode, _) = split_tls_params(url);
    if let Some(m) = mode
        && !matches!(
            m.as_str(),
            "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full"
        )
    {
        return Err(format!(
            "has sslmode `{m}`, which is not one of disable, require, verify-ca, verify-full"
        ));
    }
    postgres::Config::from_str(&rest)
        .map(|_| ())
        .map_err(|e| format!("is not a valid Postgres URL: {e}"))
}

/// One environment lookup, so tests can pass their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, empty values as unset.
pub fn process_env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

/// A resolved connection target.
#[derive(Clone)]
pub struct Target {
    pub(crate) config: postgres::Config,
    shown: String,
    /// TLS (`sslmode=require|verify-ca|verify-full`): the client
    /// configuration, its roots loaded; `None` connects in plain text.
    pub(crate) tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// Where the trusted roots came from (shown by `store status`).
    tls_roots: Option<String>,
}

/// `sslmode` and `sslrootcert` taken out of a URL or key=value string
/// (tokio-postgres knows neither `verify-ca` nor `verify-full`, nor root
/// certificates): the rest, and the two values.
fn split_tls_params(url: &str) -> (String, Option<String>, Option<String>) {
    let mut mode = None;
    let mut root = None;
    let mut take = |k: &str, v: &str| match k {
        "sslmode" => {
            mode = Some(v.to_owned());
            true
        }
        "sslrootcert" => {
            root = Some(v.to_owned());
            true
        }
        _ => false,
    };
    let t = url.trim();
    if is_postgres_url(t) {
        let Some((head, query)) = t.split_once('?') else {
            return (t.to_owned(), None, None);
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                !take(k, &percent_decode(v))
            })
            .collect();
        let rest = if kept.is_empty() {
            head.to_owned()
        } else {
            format!("{head}?{}", kept.join("&"))
        };
        (rest, mode, root)
    } else {
        let kept: Vec<&str> = t
            .split_whitespace()
            .filter(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                !take(k.trim(), v.trim_matches('\''))
            })
            .collect();
        (kept.join(" "), mode, root)
    }
}

fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(x) = u8::from_str_radix(&v[i + 1..i + 3], 16)
        {
            out.push(x);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The client TLS configuration for `sslmode` (`None`: plain text), its
/// roots from `sslrootcert`, `PGSSLROOTCERT`, `~/.postgresql/root.crt`, or
/// the Mozilla roots (`system`, or none of those).
fn tls_config(
    mode: Option<&str>,
    root: Option<&str>,
    env: Env<'_>,
) -> Result<Option<(rustls::ClientConfig, String)>, StoreError> {
    let mode = mode.map(str::to_owned).or_else(|| env("PGSSLMODE"));
    match mode.as_deref().map(str::trim) {
        None | Some("" | "disable" | "allow" | "prefer") => return Ok(None),
        Some("require" | "verify-ca" | "verify-full") => {}
        Some(other) => {
            return Err(StoreError::Config(format!(
                "store.url: sslmode `{other}` is not one of disable, require, verify-ca, verify-full (agentops verifies every TLS connection: require is verify-full)"
            )));
        }
    }
    let root = root.map(str::to_owned).or_else(|| env("PGSSLROOTCERT"));
    let default_file = env("HOME").map(|h| PathBuf::from(h).join(".postgresql/root.crt"));
    let file = match root.as_deref() {
        Some("system") => None,
        Some(p) => Some(PathBuf::from(p)),
        None => default_file.filter(|p| p.is_file()),
    };
    let mut roots = rustls::RootCertStore::empty();
    let from = match &file {
        Some(path) => {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    StoreError::Config(format!(
                        "sslrootcert {}: cannot read PEM certificates: {e}",
                        path.display()
                    ))
                })?;
            if certs.is_empty() {
                return Err(StoreError::Config(format!(
                    "sslrootcert {}: no certificate in it",
                    path.display()
                )));
            }
            for c in certs {
                roots.add(c).map_err(|e| {
                    StoreError::Config(format!("sslrootcert {}: {e}", path.display()))
                })?;
            }
            path.display().to_string()
        }
        None => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            "the Mozilla root store".to_owned()
        }
    };
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some((config, from)))
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("shown", &self.shown)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Parses `url` and fills in what it leaves out from `PGHOST`,
    /// `PGPORT`, `PGUSER`, `PGDATABASE`, `PGCONNECT_TIMEOUT`, then the
    /// password from `PGPASSWORD` or the password file.
    pub fn resolve(url: &str, env: Env<'_>) -> Result<Self, StoreError> {
        check_url(url).map_err(|why| StoreError::Config(format!("store.url {why}")))?;
        let (rest, mode, root) = split_tls_params(url);
        let mut c = postgres::Config::from_str(&rest).map_err(|e| {
            StoreError::Config(format!("store.url is not a valid Postgres URL: {e}"))
        })?;
        let tls = tls_config(mode.as_deref(), root.as_deref(), env)?;
        c.ssl_mode(if tls.is_some() {
            postgres::config::SslMode::Require
        } else {
            postgres::config::SslMode::Disable
        });
        if c.get_hosts().is_empty() {
            match env("PGHOST") {
                Some(hosts) => {
                    for h in hosts.split(',') {
                        c.host(h.trim());
                    }
                }
                None => {
                    c.host("localhost");
                }
            }
        }
        if c.get_ports().is_empty()
            && let Some(p) = env("PGPORT")
        {
            let port: u16 = p.trim().parse().map_err(|_| {
                StoreError::Config(format!("PGPORT `{p}` is not a port number (1 to 65535)"))
            })?;
            c.port(port);
        }
        if c.get_user().is_none() {
            let user = env("PGUSER")
                .or_else(|| env("USER"))
                .or_else(|| env("LOGNAME"))
                .unwrap_or_else(|| "postgres".into());
            c.user(&user);
        }
        if c.get_dbname().is_none()
            && let Some(db) = env("PGDATABASE")
        {
            c.dbname(&db);
        }
        if c.get_connect_timeout().is_none() {
            let secs = env("PGCONNECT_TIMEOUT")
                .and_then(|s| s.trim().parse::<u64>().ok())
                .filter(|s| *s > 0)
                .unwrap_or(5);
            c.connect_timeout(Duration::from_secs(secs));
        }
        if c.get_application_name().is_none() {
            c.application_name("agentops");
        }
        let user = c.get_user().unwrap_or("postgres").to_owned();
        let db = c
            .get_dbname()
            .map(str::to_owned)
            .unwrap_or_else(|| user.clone());
        let host = host_text(&c);
        let port = c.get_ports().first().copied().unwrap_or(5432);
        if let Some(pw) = env("PGPASSWORD") {
            c.password(pw);
        } else if let Some(pw) = pgpass(env, &host, port, &db, &user) {
            c.password(pw);
        }
        let shown = format!("postgres://{user}@{host}:{port}/{db}");
        let (tls, tls_roots) = match tls {
            Some((cfg, from)) => (Some(std::sync::Arc::new(cfg)), Some(from)),
            None => (None, None),
        };
        Ok(Self {
            config: c,
            shown,
            tls,
            tls_roots,
        })
    }

    /// The target as shown everywhere: `postgres://user@host:port/db`,
    /// never a password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Where the roots a TLS connection is verified against come from;
    /// `None` for a plain-text connection.
    pub fn tls_roots(&self) -> Option<&str> {
        self.tls_roots.as_deref()
    }

    /// The client configuration (password included: never print it).
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// The user connected as.
    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or("postgres")
    }

    /// The database.
    pub fn dbname(&self) -> String {
        self.config
            .get_dbname()
            .map(str::to_owned)
            .unwrap_or_else(|| self.user().to_owned())
    }

    /// The same server and user, another database (tests create one per
    /// case; `store migrate` may create the database).
    pub fn with_dbname(&self, db: &str) -> Self {
        let mut c = self.config.clone();
        c.dbname(db);
        let shown = match self.shown.rsplit_once('/') {
            Some((head, _)) => format!("{head}/{db}"),
            None => self.shown.clone(),
        };
        Self {
            config: c,
            shown,
            tls: self.tls.clone(),
            tls_roots: self.tls_roots.clone(),
        }
    }
}

fn host_text(c: &postgres::Config) -> String {
    match c.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    }
}

/// The password for (host, port, db, user) from the password file, the way
/// libpq reads it: `host:port:db:user:password` lines, `*` matching
/// anything, `\:` and `\\` escaped; ignored when others can read it.
fn pgpass(env: Env<'_>, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let path = match env("PGPASSFILE") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env("HOME")?).join(".pgpass"),
    };
    let meta = std::fs::metadata(&path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return None;
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = std::fs::read_to_string(&path).ok()?;
    let port = port.to_string();
    // A Unix-socket host matches `localhost` in the file, as in libpq.
    let host = if host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f = pgpass_fields(line);
        if f.len() < 5 {
            continue;
        }
        let ok = |field: &str, want: &str| field == "*" || field == want;
        if ok(&f[0], host) && ok(&f[1], &port) && ok(&f[2], db) && ok(&f[3], user) {
            return Some(f[4].clone());
        }
    }
    None
}

fn pgpass_fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => {
                if let Some(n) = chars.next()
                    && let Some(last) = out.last_mut()
                {
                    last.push(n);
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            c => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn a_password_in_the_url_is_refused_and_never_echoed() {
        for url in [
            "postgres://app:s3cret@db:5432/team",
            "postgresql://app:s3cret@db/team?sslmode=disable",
            "host=db user=app password=s3cret dbname=team",
        ] {
            let e = check_url(url).err().unwrap_or_default();
            assert!(e.contains("PGPASSWORD"), "{url}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert!(check_url("postgres://app@db:5432/team").is_ok());
        assert!(check_url("postgres://db/team").is_ok());
        // An `@` in the path or the query is not a password.
        assert!(check_url("postgres://db/team?application_name=a@b").is_ok());
    }

    #[test]
    fn the_environment_fills_in_what_the_url_leaves_out() -> Result<(), StoreError> {
        let env = env_of(&[
            ("PGHOST", "127.0.0.1"),
            ("PGPORT", "55432"),
            ("PGUSER", "alice"),
            ("PGDATABASE", "team"),
            ("PGPASSWORD", "pw-from-env"),
        ]);
        let t = Target::resolve("postgres://", &env)?;
        assert_eq!(t.shown(), "postgres://alice@127.0.0.1:55432/team");
        assert_eq!(t.config.get_password(), Some(&b"pw-from-env"[..]));
        // The URL wins over the environment.
        let t = Target::resolve("postgres://bob@db:5433/other", &env)?;
        assert_eq!(t.shown(), "postgres://bob@db:5433/other");
        assert!(!format!("{t:?}").contains("pw-from-env"));
        let e = Target::resolve("postgres://", &env_of(&[("PGPORT", "x")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("PGPORT `x`"), "{e}");
        Ok(())
    }

    #[test]
    fn the_password_file_is_read_like_libpq() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let f = dir.path().join("pgpass");
        std::fs::write(
            &f,
            "# comment\nother:*:*:*:nope\n127.0.0.1:55432:team:alice:p\\:w\\\\d\n*:*:*:*:fallback\n",
        )?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600))?;
        }
        let p = f.display().to_string();
        let env = env_of(&[("PGPASSFILE", &p)]);
        let t = Target::resolve("postgres://alice@127.0.0.1:55432/team", &env)?;
        assert_eq!(t.config.get_password(), Some(&b"p:w\\d"[..]));
        let t = Target::resolve("postgres://bob@127.0.0.1:55432/team", &env)?;
        assert_eq!(t.config.get_password(), Some(&b"fallback"[..]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644))?;
            let t = Target::resolve("postgres://alice@127.0.0.1:55432/team", &env)?;
            assert_eq!(
                t.config.get_password(),
                None,
                "a world-readable file is ignored"
            );
        }
        Ok(())
    }
}
