//! `search`, `context`, `feedback`, `guard`, `eval retrieval`, `index`.

use std::path::Path;

use agentops_api::knowledge::{self as api, CANDIDATES, ContextRequest};
use agentops_api::semantic::{self, Semantic};
use agentops_context::packet::Decision;
use agentops_context::tokens::TokenizerKind;
use agentops_context::{KnowledgeIndex, SearchFilter};
use agentops_knowledge::EntryType;
use agentops_store::Journal;

use super::{Code, Failure, Flags};
use crate::cli::{ContextArgs, SourceArgs};
use crate::output::Output;
use crate::shared::{project, provenance, render_write};

/// The index and the journal; `write` when the command records something
/// (a packet's citations), else the journal is opened read-only.
fn open_index(
    flags: &Flags,
    out: &Output,
    write: bool,
) -> Result<(KnowledgeIndex, Journal, agentops_api::Project), Failure> {
    let p = project(flags)?;
    p.knowledge()?;
    let (idx, refresh) = api::open_index(&p)?;
    for w in api::refresh_warnings(&refresh) {
        out.warn(&w);
    }
    let j = if write {
        p.journal()?
    } else {
        p.journal_read()?
    };
    Ok((idx, j, p))
}

pub fn search(
    query: &str,
    kind: Option<String>,
    tags: Vec<String>,
    limit: usize,
    flags: &Flags,
    out: &Output,
) -> Result<Code, Failure> {
    let f = api::filter(kind.as_deref(), &tags, "--type")?;
    let (idx, j, p) = open_index(flags, out, false)?;
    let warn = |w: &str| out.warn(w);
    let sem = api::prepare_semantic(&idx, &p, &warn);
    let hits = api::search(&idx, &j, sem.as_ref(), query, &f, limit, &warn)?;
    if out.json {
        let rows: Vec<serde_json::Value> = hits.iter().map(api::hit_json).collect();
        out.json(&rows);
        return Ok(Code::Ok);
    }
    if hits.is_empty() {
        out.line("no matches");
    }
    for (i, h) in hits.iter().enumerate() {
        let warn = if h.entry.kind == EntryType::AntiPattern {
            "  ⚠ anti-pattern"
        } else {
            ""
        };
        out.line(&format!(
            "{:>2}. {}  ({}, {})  score {:.2}{warn}",
            i + 1,
            h.entry.id,
            h.entry.kind,
            h.entry.maturity,
            h.score.total
        ));
        out.line(&format!("    {}", h.entry.title));
        if !h.snippet.is_empty() {
            out.line(&format!("    {}", h.snippet));
        }
    }
    Ok(Code::Ok)
}

pub fn context(args: ContextArgs, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let f = api::filter(args.kind.as_deref(), &args.tags, "--type")?;
    let (idx, j, pr) = open_index(flags, out, true)?;
    let warn = |w: &str| out.warn(w);
    let sem = api::prepare_semantic(&idx, &pr, &warn);
    let req = ContextRequest {
        task: args.task.clone(),
        filter: f,
        budget: args.budget,
        window: args.window,
        used: args.used,
        source: provenance(args.source),
    };
    let p = api::context(&idx, &j, sem.as_ref(), &pr, &req, &warn)?;
    let budget = p.budget;
    let count = |d: Decision| p.explain.iter().filter(|x| x.decision == d).count();
    if args.format == "json" || out.json {
        out.json(&api::packet_json(&p, args.explain)?);
        return Ok(Code::Ok);
    }
    out.raw(&p.text);
    if args.explain {
        out.warn_block(&format!(
            "packet: {} of {budget} tokens; {} full, {} summaries, {} titles, {} dropped",
            p.tokens,
            count(Decision::Full),
            count(Decision::Summary),
            count(Decision::Title),
            count(Decision::Dropped)
        ));
        out.warn_block(
            "rank  decision  score = relevance × freshness × utility × maturity   tokens  id — why",
        );
        for x in &p.explain {
            let d = match x.decision {
                Decision::Full => "full",
                Decision::Summary => "summary",
                Decision::Title => "title",
                Decision::Dropped => "dropped",
            };
            out.warn_block(&format!(
                "{:>4}  {d:<8}  {:>6.3} = {:.3} × {:.2} × {:.2} × {:.1}   {:>6}  {} — {}",
                x.rank,
                x.score.total,
                x.score.relevance,
                x.score.freshness,
                x.score.utility,
                x.score.maturity,
                x.tokens,
                x.id,
                x.reason
            ));
        }
    }
    Ok(Code::Ok)
}

pub fn feedback(
    id: &str,
    signal: &str,
    source: SourceArgs,
    flags: &Flags,
    out: &Output,
) -> Result<Code, Failure> {
    let p = project(flags)?;
    let v = api::feedback(&p, id, signal, &provenance(source))?;
    if out.json {
        out.json(&v);
        return Ok(Code::Ok);
    }
    out.line(&format!(
        "{}: utility {:.3} after {}",
        v.id,
        v.utility,
        agentops_core::counted(v.events, "event", "events")
    ));
    if let Some(w) = &v.write {
        render_write(w, out, &format!("{} →", v.maturity));
    }
    Ok(Code::Ok)
}

pub fn guard(
    transcript: &Path,
    window: Option<u64>,
    flags: &Flags,
    out: &Output,
) -> Result<Code, Failure> {
    let layout = agentops_store::RepoLayout::discover(&super::cwd()?).ok();
    let config = agentops_store::project::load_config(layout.as_ref(), flags.to_vec())
        .map_err(Failure::usage)?;
    let r = agentops_context::guard::guard(transcript, window, &config.context)
        .map_err(Failure::failed)?;
    if out.json {
        out.json(&r);
        return Ok(Code::Ok);
    }
    let advice = match r.band {
        agentops_context::guard::Band::Green => "plenty of room",
        agentops_context::guard::Band::Amber => {
            "at most 40% of the window: keep the remaining work focused"
        }
        agentops_context::guard::Band::Red => {
            "past 40%: wrap up, write a handoff, continue in a fresh session"
        }
        agentops_context::guard::Band::Critical => "past 60%: stop, write a handoff now",
    };
    out.line(&format!(
        "{}: {} of {} tokens ({}%){} — {advice}",
        r.band.as_str(),
        r.used,
        r.window,
        r.percent,
        r.model
            .as_deref()
            .map(|m| format!(", {m}"))
            .unwrap_or_default()
    ));
    Ok(Code::Ok)
}

pub fn eval(
    file: &Path,
    corpus: Option<&Path>,
    lexical: bool,
    flags: &Flags,
    out: &Output,
) -> Result<Code, Failure> {
    let set = agentops_context::eval::read_labelled(file).map_err(Failure::usage)?;
    if set.is_empty() {
        return Err(Failure::usage(format!(
            "{}: no queries (one JSON object a line: {{\"query\": \"…\", \"expected\": [\"entry-id\"]}})",
            file.display()
        )));
    }
    let layout = agentops_store::RepoLayout::discover(&super::cwd()?).ok();
    let mut config = agentops_store::project::load_config(layout.as_ref(), flags.to_vec())
        .map_err(Failure::usage)?;
    if lexical {
        config.context.embeddings.clear();
    }
    let (idx, j) = match corpus {
        Some(dir) => {
            let entries = read_corpus(dir)?;
            let mut idx = KnowledgeIndex::in_memory(&entries, TokenizerKind::O200k, 90.0)
                .map_err(Failure::failed)?;
            idx.set_expansion(config.context.expansion);
            (idx, None)
        }
        None => {
            let (idx, j, _) = open_index(flags, out, false)?;
            (idx, Some(j))
        }
    };
    let work_tree = layout.as_ref().map(|l| l.work_tree.clone());
    let warn = |w: &str| out.warn(w);
    let sem = Semantic::prepare(&idx, &config, work_tree.as_deref(), None, &warn);
    let ranking = format!(
        "ranking: lexical{}{}",
        if config.context.expansion {
            " + expansion"
        } else {
            ""
        },
        match &sem {
            Some(s) => format!(
                " + vectors ({}, {})",
                config.context.embeddings,
                agentops_core::counted(s.len() as u64, "entry", "entries")
            ),
            None => String::new(),
        }
    );
    let from_journal = j.as_ref().map(|j| agentops_api::utility_of(j, &warn));
    let util = |ids: &[&str]| from_journal.as_ref().map(|u| u(ids)).unwrap_or_default();
    let report = agentops_context::eval::evaluate(&set, &mut |q| {
        semantic::search(
            &idx,
            sem.as_ref(),
            q,
            &SearchFilter::default(),
            CANDIDATES,
            &util,
            &warn,
        )
        .map(|h| h.into_iter().map(|h| h.entry.id.to_string()).collect())
        .unwrap_or_default()
    });
    if out.json {
        let mut v = serde_json::to_value(&report).map_err(Failure::failed)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("ranking".into(), serde_json::Value::String(ranking));
        }
        out.json(&v);
        return Ok(Code::Ok);
    }
    out.line(&ranking);
    if out.verbose > 0 {
        for q in &report.per_query {
            out.line(&format!(
                "{:<10}  hit@5 {}  P@5 {:.2}  R@10 {:.2}  RR {:.2}  {}",
                q.subset,
                if q.hit_at_5 { "yes" } else { "no " },
                q.precision_at_5,
                q.recall_at_10,
                q.reciprocal_rank,
                q.query
            ));
        }
    }
    let line = |name: &str, n: usize, hit: f64, p5: f64, r10: f64, mrr: f64| {
        format!(
            "{name:<10}  {n:>3} queries  Hit@5 {hit:.3}  MRR {mrr:.3}  Recall@10 {r10:.3}  P@5 {p5:.3}"
        )
    };
    if report.subsets.len() > 1 {
        for s in &report.subsets {
            out.line(&line(
                &s.subset,
                s.queries,
                s.hit_at_5,
                s.precision_at_5,
                s.recall_at_10,
                s.mrr,
            ));
        }
    }
    out.line(&line(
        "all",
        report.queries,
        report.hit_at_5,
        report.precision_at_5,
        report.recall_at_10,
        report.mrr,
    ));
    Ok(Code::Ok)
}

/// Every entry under `dir` (any depth), for evaluating a checked-in corpus.
fn read_corpus(dir: &Path) -> Result<Vec<agentops_knowledge::Entry>, Failure> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d)
            .map_err(|e| Failure::usage(format!("--corpus {}: {e}", d.display())))?;
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&p)
                    .map_err(|e| Failure::usage(format!("{}: {e}", p.display())))?;
                let entry = agentops_knowledge::entry::parse(&format!(".agents/{rel}"), &text)
                    .map_err(Failure::usage)?;
                out.push(entry);
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

pub fn index(rebuild: bool, flags: &Flags, out: &Output) -> Result<Code, Failure> {
    let p = project(flags)?;
    p.knowledge()?;
    let (layout, config) = (p.layout, p.config);
    let (idx, r) =
        KnowledgeIndex::open(&layout, &config, true, rebuild).map_err(Failure::failed)?;
    for w in &r.warnings {
        out.warn(&format!("{w} (skipped)"));
    }
    // Every entry gets its vector here (searches embed for a few seconds at most).
    let warn = |w: &str| out.warn(w);
    let sem = Semantic::prepare(&idx, &config, Some(&layout.work_tree), None, &warn);
    // Entries left without a vector (the endpoint failed): exit 1, the
    // lexical index is still current.
    let code = match &sem {
        Some(s) if s.sync.missing > 0 => Code::Failure,
        _ => Code::Ok,
    };
    if out.json {
        let mut v = serde_json::to_value(&r).map_err(Failure::failed)?;
        if let (Some(o), Some(s)) = (v.as_object_mut(), &sem) {
            o.insert(
                "vectors".into(),
                serde_json::to_value(&s.sync).map_err(Failure::failed)?,
            );
        }
        out.json(&v);
        return Ok(code);
    }
    let how = match &r.rebuilt {
        Some(why) => format!("rebuilt ({why})"),
        None => "checked every file".into(),
    };
    out.line(&format!(
        "{how}: {}; {} added, {} updated, {} removed, {} skipped; {:.1} ms",
        agentops_core::counted(r.entries, "entry", "entries"),
        r.added,
        r.updated,
        r.removed,
        r.warnings.len(),
        r.elapsed_ms
    ));
    if let Some(s) = &sem {
        let rate = if s.sync.embed_ms > 0.0 {
            format!(
                " ({:.0} entries/s)",
                s.sync.embedded as f64 / (s.sync.embed_ms / 1000.0)
            )
        } else {
            String::new()
        };
        out.line(&format!(
            "vectors ({}): {} with one, {} embedded now in {:.0} ms{rate}, {} without",
            config.context.embeddings,
            agentops_core::counted(s.sync.entries as u64, "entry", "entries"),
            s.sync.embedded,
            s.sync.embed_ms,
            s.sync.missing
        ));
    }
    Ok(code)
}
