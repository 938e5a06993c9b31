//! `learn` and `knowledge …`.

use std::io::{IsTerminal, Read};

use agentops_knowledge::entry::{self, EntryType, Maturity};
use agentops_knowledge::{Filter, NewEntry};

use super::{Code, Failure, Flags};
use crate::cli::{KnowledgeCommand, LearnArgs, SourceArgs};
use crate::output::Output;
use crate::shared::{
    index_after_write, journal, knowledge_failure as fail, open, parse_since, provenance,
    render_write,
};

fn read_body(args: &LearnArgs) -> Result<String, Failure> {
    let extra = if args.edit {
        from_editor(&args.title)?
    } else if let Some(b) = &args.body {
        b.clone()
    } else if let Some(f) = &args.file {
        if f.as_os_str() == "-" {
            read_stdin()?
        } else {
            std::fs::read_to_string(f)
                .map_err(|e| Failure::usage(format!("--file {}: {e}", f.display())))?
        }
    } else if args.context.is_some()
        || args.solution.is_some()
        || args.learning.is_some()
        || args.impact.is_some()
    {
        String::new()
    } else if !std::io::stdin().is_terminal() {
        read_stdin()?
    } else {
        from_editor(&args.title)?
    };
    let sections = [&args.context, &args.solution, &args.learning, &args.impact];
    if extra.trim().is_empty()
        && sections
            .iter()
            .all(|s| s.as_deref().is_none_or(|t| t.trim().is_empty()))
    {
        return Err(Failure::usage(
            "the body is empty (nothing on standard input, or an empty --body/--file/sections); nothing written: give the learning a body",
        ));
    }
    Ok(entry::body_from_sections(
        &args.title,
        &[
            ("Context", args.context.as_deref()),
            ("Solution", args.solution.as_deref()),
            ("Learning", args.learning.as_deref()),
            ("Impact", args.impact.as_deref()),
        ],
        &extra,
    ))
}

fn read_stdin() -> Result<String, Failure> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| Failure::usage(format!("cannot read the body from standard input: {e}")))?;
    Ok(s)
}

fn from_editor(title: &str) -> Result<String, Failure> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .map_err(|_| {
            Failure::usage("no body given: use --body, --file, standard input, or set $EDITOR")
        })?;
    let template = format!(
        "## Context\n\n\n## Solution\n\n\n## Learning\n\n\n## Impact\n\n\n<!-- Body of \"{title}\". Empty sections are dropped; an empty body aborts. -->\n"
    );
    let dir = std::env::temp_dir();
    let path = dir.join(format!("agentops-learn-{}.md", std::process::id()));
    std::fs::write(&path, &template)
        .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status()
        .map_err(|e| Failure::failed(format!("cannot start $EDITOR ({editor}): {e}")))?;
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    if !status.success() {
        return Err(Failure::failed(format!(
            "$EDITOR ({editor}) exited with {status}; nothing written"
        )));
    }
    let cleaned = strip_empty_sections(&text);
    if cleaned.trim().is_empty() {
        return Err(Failure::failed("the body is empty; nothing written"));
    }
    Ok(cleaned)
}

/// Drops the template's HTML comment and sections left empty, and
/// normalises the spacing between the sections that remain.
fn strip_empty_sections(text: &str) -> String {
    let mut preamble: Vec<&str> = Vec::new();
    let mut sections: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("<!--")) {
        if line.starts_with("## ") {
            sections.push((line, Vec::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            body.push(line);
        } else {
            preamble.push(line);
        }
    }
    let mut parts = Vec::new();
    let pre = preamble.join("\n").trim().to_owned();
    if !pre.is_empty() {
        parts.push(pre);
    }
    for (heading, body) in sections {
        let b = body.join("\n").trim().to_owned();
        if !b.is_empty() {
            parts.push(format!("{heading}\n\n{b}"));
        }
    }
    parts.join("\n\n")
}

pub fn learn(args: LearnArgs, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let kind = EntryType::parse(&args.kind).map_err(|e| Failure::usage(format!("--type: {e}")))?;
    let body = read_body(&args)?;
    let p = crate::shared::project(flags)?;
    let new = NewEntry {
        kind: Some(kind),
        title: args.title.clone(),
        body,
        tags: args.tags.clone(),
        supersedes: args.supersedes.clone(),
        source: provenance(args.source),
    };
    let o = agentops_api::knowledge::learn(&p, new)?;
    render_write(&o, out, "learned");
    Ok(Code::Ok)
}

/// `agentops sync`
pub fn sync(
    remote: Option<String>,
    keep: Option<&str>,
    flags: &Flags,
    out: &Output,
) -> Result<Code, Failure> {
    use agentops_knowledge::sync::{self, Keep, SyncError, SyncOptions};
    let p = crate::shared::project(flags)?;
    let opts = SyncOptions {
        remote,
        keep: match keep {
            Some("ours") => Some(Keep::Ours),
            Some("theirs") => Some(Keep::Theirs),
            _ => None,
        },
    };
    let rep = match sync::sync(&p.layout, &p.config, &opts) {
        Ok(r) => r,
        Err(e @ SyncError::Conflicts(_)) if out.json => {
            if let SyncError::Conflicts(c) = &e {
                out.json(&serde_json::json!({"error": e.to_string(), "conflicts": c}));
            }
            return Ok(Code::Failure);
        }
        Err(e) => return Err(Failure::failed(e)),
    };
    let mut warnings = Vec::new();
    if rep.received > 0 || !rep.renamed.is_empty() || !rep.settled.is_empty() {
        index_after_write(&p.layout, &p.config, &mut warnings);
    }
    for w in &warnings {
        out.warn(w);
    }
    if out.json {
        out.json(&rep);
        return Ok(Code::Ok);
    }
    for (old, new) in &rep.renamed {
        out.line(&format!(
            "renamed {old} → {new}: {}/{} already has an entry with that id",
            rep.remote, rep.branch
        ));
    }
    for c in &rep.settled {
        out.line(&format!(
            "{}: edited here and there; kept {}",
            c.id,
            if c.kept == Some(Keep::Ours) {
                "this machine's edit"
            } else {
                "the remote's edit"
            }
        ));
    }
    if rep.received == 0 && rep.published == 0 {
        out.line(&format!(
            "{} is up to date with {}/{}",
            rep.branch, rep.remote, rep.branch
        ));
    } else {
        out.line(&format!(
            "synced {} with {}/{}: {} received, {} published{}",
            rep.branch,
            rep.remote,
            rep.branch,
            agentops_core::counted(rep.received as u64, "commit", "commits"),
            agentops_core::counted(rep.published as u64, "memory commit", "memory commits"),
            if rep.rebased > 0 {
                format!(" ({} replayed on the remote's tip)", rep.rebased)
            } else {
                String::new()
            }
        ));
    }
    Ok(Code::Ok)
}

pub fn run(cmd: KnowledgeCommand, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    match cmd {
        KnowledgeCommand::List {
            kind,
            tags,
            maturity,
            since,
        } => {
            let filter = Filter {
                kind: kind
                    .as_deref()
                    .map(EntryType::parse)
                    .transpose()
                    .map_err(|e| Failure::usage(format!("--type: {e}")))?,
                tags,
                maturity: maturity
                    .as_deref()
                    .map(Maturity::parse)
                    .transpose()
                    .map_err(|e| Failure::usage(format!("--maturity: {e}")))?,
                since: since.as_deref().map(parse_since).transpose()?,
            };
            let (_, k, _) = open(flags)?;
            let mut listing = k.list(&filter).map_err(fail)?;
            listing.entries = listing
                .entries
                .into_iter()
                .map(|e| k.for_display(e))
                .collect();
            for w in &listing.warnings {
                out.warn(&format!("{w} (skipped)"));
            }
            if out.json {
                out.json(&listing);
                return Ok(Code::Ok);
            }
            if listing.entries.is_empty() {
                out.line("no entries");
            }
            for e in &listing.entries {
                let date = e
                    .created
                    .map(agentops_core::time::rfc3339)
                    .map_or_else(|| "-".to_owned(), |d| d[..10].to_owned());
                let tags = if e.tags.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", e.tags.join(", "))
                };
                out.line(&format!(
                    "{:<12} {:<11} {date}  {}  {}{tags}",
                    e.kind, e.maturity, e.id, e.title
                ));
            }
            Ok(Code::Ok)
        }
        KnowledgeCommand::Show { id } => {
            let (_, k, _) = open(flags)?;
            let e = k.for_display(k.find(&id).map_err(fail)?);
            if out.json {
                out.json(&e);
            } else {
                out.line(&format!("{}  ({}, {})", e.id, e.kind, e.maturity));
                out.line(&format!("file: {}", e.path));
                if !e.tags.is_empty() {
                    out.line(&format!("tags: {}", e.tags.join(", ")));
                }
                if let Some(c) = e.created {
                    out.line(&format!("created: {}", agentops_core::time::rfc3339(c)));
                }
                for (k, v) in [
                    ("run", &e.source.run),
                    ("session", &e.source.session),
                    ("agent", &e.source.agent),
                ] {
                    if let Some(v) = v {
                        out.line(&format!("{k}: {v}"));
                    }
                }
                if !e.supersedes.is_empty() {
                    let ids: Vec<&str> = e.supersedes.iter().map(|s| s.as_str()).collect();
                    out.line(&format!("supersedes: {}", ids.join(", ")));
                }
                out.line("");
                out.line(e.body.trim_end());
            }
            Ok(Code::Ok)
        }
        KnowledgeCommand::History { id, limit } => {
            let (_, k, _) = open(flags)?;
            let items = k.history(id.as_deref(), limit).map_err(fail)?;
            if out.json {
                out.json(&items);
                return Ok(Code::Ok);
            }
            if items.is_empty() {
                out.line("no commits");
            }
            for c in &items {
                let when = agentops_core::time::rfc3339(c.time.saturating_mul(1_000_000));
                out.line(&format!(
                    "{}  {when}  {}  {}",
                    &c.id[..c.id.len().min(12)],
                    c.author,
                    c.summary
                ));
                for (key, v) in &c.trailers {
                    out.line(&format!("    {key}: {v}"));
                }
            }
            Ok(Code::Ok)
        }
        KnowledgeCommand::Promote { id, source } => {
            maturity(&id, Maturity::Established, source, flags, out)
        }
        KnowledgeCommand::Deprecate { id, source } => {
            maturity(&id, Maturity::Deprecated, source, flags, out)
        }
    }
}

fn maturity(
    id: &str,
    m: Maturity,
    source: SourceArgs,
    flags: &Flags,
    out: &Output,
) -> Result<Code, Failure> {
    let (layout, k, config) = open(flags)?;
    let j = journal(&layout, &config)?;
    let mut o = k
        .set_maturity(id, m, &provenance(source), Some(&j))
        .map_err(fail)?;
    if o.changed {
        index_after_write(&layout, &config, &mut o.warnings);
    }
    if !o.changed {
        if out.json {
            out.json(&o);
        } else {
            out.line(&format!("{} is already {m}; nothing changed", o.id));
        }
        return Ok(Code::Ok);
    }
    let verb = match m {
        Maturity::Established => "promoted to established:",
        Maturity::Deprecated => "deprecated:",
        Maturity::Provisional => "reset to provisional:",
    };
    render_write(&o, out, verb);
    Ok(Code::Ok)
}

/// `agentops harvest [SESSION] [--since D] [--apply]`.
pub fn harvest(
    session: Option<&str>,
    since: &str,
    apply: bool,
    flags: &Flags,
    out: &Output,
) -> Result<Code, Failure> {
    use agentops_harness::harvest;
    let (layout, k, config) = open(flags)?;
    let j = journal(&layout, &config)?;
    let sessions: Vec<agentops_core::RunId> = match session {
        Some(s) => vec![
            agentops_core::RunId::parse(s).map_err(|e| Failure::usage(format!("SESSION: {e}")))?,
        ],
        None => {
            let since = parse_since(since)?;
            agentops_harness::sessions::list(&j, Some(since))
                .map_err(Failure::failed)?
                .into_iter()
                .filter_map(|s| agentops_core::RunId::parse(&s.id).ok())
                .collect()
        }
    };
    let mut found = harvest::harvest(&layout, &config, &j, &sessions).map_err(Failure::failed)?;
    if let Some(backend) = &config.harvest.backend {
        harvest::rewrite_with_model(&layout, &config, backend, &mut found)
            .map_err(Failure::usage)?;
    }
    let mut writes = Vec::new();
    if apply {
        for c in &found {
            let mut o = k
                .learn(
                    NewEntry {
                        kind: Some(EntryType::Learning),
                        title: c.title.clone(),
                        body: c.body.clone(),
                        tags: c
                            .tags
                            .iter()
                            .cloned()
                            .chain(["harvested".to_owned()])
                            .collect(),
                        supersedes: Vec::new(),
                        source: agentops_knowledge::Provenance {
                            run: None,
                            session: Some(c.session.clone()),
                            agent: Some("harvest".into()),
                        },
                    },
                    Some(&j),
                )
                .map_err(fail)?;
            index_after_write(&layout, &config, &mut o.warnings);
            writes.push(o);
        }
    }
    if out.json {
        out.json(&serde_json::json!({
            "sessions": sessions.len(), "candidates": found, "applied": apply, "writes": writes,
        }));
        return Ok(Code::Ok);
    }
    if found.is_empty() {
        out.line(&format!(
            "no candidates in {} (nothing denied then done otherwise, no gate fixed, no error then success, no open question — or each is already known)",
            agentops_core::counted(u64::try_from(sessions.len()).unwrap_or(0), "session", "sessions")
        ));
        return Ok(Code::Ok);
    }
    for (i, c) in found.iter().enumerate() {
        out.line(&format!("## {}. {}", i + 1, c.title));
        out.line(&format!(
            "session {} · {:?}{}",
            c.session,
            c.source,
            if c.by_model {
                " · written by the model"
            } else {
                ""
            }
        ));
        out.line("");
        out.raw(&c.body);
        out.line("");
    }
    if apply {
        for w in &writes {
            render_write(w, out, "learned");
        }
    } else {
        out.line("Record them with `agentops harvest --apply` (each a provisional learning, a memory write).");
    }
    Ok(Code::Ok)
}
