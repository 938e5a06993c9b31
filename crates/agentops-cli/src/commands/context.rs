//! `search`, `context`, `feedback`, `guard`, `eval retrieval`, `index`.

use std::collections::HashMap;
use std::path::Path;

use agentops_context::packet::{self, Decision, PacketRequest};
use agentops_context::tokens::TokenizerKind;
use agentops_context::{KnowledgeIndex, Refresh, SearchFilter};
use agentops_knowledge::EntryType;
use agentops_protocol::event::{self as body, new_event};
use agentops_store::{Durability, Journal};

use super::{Code, Failure, Flags};
use crate::cli::{ContextArgs, SourceArgs};
use crate::output::Output;
use crate::semantic::{self, Semantic};
use crate::shared::{
    journal, journal_read, knowledge_failure as fail, open, provenance, render_write,
};

/// Candidates taken from BM25 before re-ranking.
const CANDIDATES: usize = 50;

fn filter(kind: Option<String>, tags: Vec<String>) -> Result<SearchFilter, Failure> {
    Ok(SearchFilter {
        kind: kind
            .as_deref()
            .map(EntryType::parse)
            .transpose()
            .map_err(|e| Failure::usage(format!("--type: {e}")))?,
        tags: tags.into_iter().map(|t| t.to_ascii_lowercase()).collect(),
    })
}

fn report_refresh(r: &Refresh, out: &Output) {
    if let Some(why) = &r.rebuilt {
        out.warn(&format!(
            "rebuilt the search index ({why}): {}",
            agentops_core::counted(r.entries, "entry", "entries")
        ));
    }
    if r.read_only {
        out.warn("the state directory is read-only: searching the index as it is, without bringing it up to date");
    }
    if r.stale {
        out.warn("another agentops process is updating the search index; these results may miss its latest changes");
    }
    for w in &r.warnings {
        out.warn(&format!("{w} (skipped)"));
    }
}

/// Utility scores for ranking. A journal that cannot be read ranks as if
/// there were no feedback, and says so once (on stderr) instead of silently.
fn utility_of<'j>(
    j: &'j Journal,
    out: &'j Output,
) -> impl Fn(&[&str]) -> HashMap<String, f64> + 'j {
    let warned = std::cell::Cell::new(false);
    move |ids: &[&str]| match j.utility(ids) {
        Ok(m) => m.into_iter().map(|(k, v)| (k, v.value)).collect(),
        Err(e) => {
            if !warned.replace(true) {
                out.warn(&format!(
                    "ranking without feedback: the journal cannot be read ({e})"
                ));
            }
            HashMap::new()
        }
    }
}

/// The index and the journal; `write` when the command records something
/// (a packet's citations), else the journal is opened read-only.
fn open_index(
    flags: &Flags,
    out: &Output,
    write: bool,
) -> Result<
    (
        KnowledgeIndex,
        Journal,
        agentops_store::RepoLayout,
        agentops_core::config::Config,
    ),
    Failure,
> {
    let (layout, _, config) = open(flags)?;
    let (idx, refresh) =
        KnowledgeIndex::open(&layout, &config, false, false).map_err(Failure::failed)?;
    report_refresh(&refresh, out);
    let j = if write {
        journal(&layout, &config)?
    } else {
        journal_read(&layout, &config)?
    };
    Ok((idx, j, layout, config))
}

/// The search of a command: lexical, hybrid when `context.embeddings` is
/// set (entries lacking a vector embedded first, for a few seconds at most).
#[allow(clippy::too_many_arguments)]
fn ranked(
    idx: &KnowledgeIndex,
    j: &Journal,
    layout: &agentops_store::RepoLayout,
    config: &agentops_core::config::Config,
    query: &str,
    f: &SearchFilter,
    candidates: usize,
    out: &Output,
) -> Result<Vec<agentops_context::Hit>, agentops_context::IndexError> {
    let sem = Semantic::prepare(
        idx,
        config,
        Some(&layout.work_tree),
        Some(semantic::SEARCH_SYNC_BUDGET),
        out,
    );
    semantic::search(
        idx,
        sem.as_ref(),
        query,
        f,
        candidates,
        &utility_of(j, out),
        out,
    )
}

pub fn search(
    query: &str,
    kind: Option<String>,
    tags: Vec<String>,
    limit: usize,
    flags: &Flags,
    out: &Output,
) -> Result<Code, Failure> {
    let f = filter(kind, tags)?;
    let (idx, j, layout, config) = open_index(flags, out, false)?;
    let hits = ranked(
        &idx,
        &j,
        &layout,
        &config,
        query,
        &f,
        limit.max(CANDIDATES),
        out,
    )
    .map_err(Failure::failed)?;
    let mut hits: Vec<_> = hits.into_iter().take(limit).collect();
    idx.add_snippets(query, &mut hits)
        .map_err(Failure::failed)?;
    if out.json {
        let rows: Vec<serde_json::Value> = hits
            .iter()
            .map(|h| {
                serde_json::json!({
                    "id": h.entry.id, "type": h.entry.kind, "title": h.entry.title, "tags": h.entry.tags,
                    "maturity": h.entry.maturity, "path": h.entry.path, "score": h.score, "snippet": h.snippet,
                })
            })
            .collect();
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
    let f = filter(args.kind.clone(), args.tags.clone())?;
    let (idx, j, layout, config) = open_index(flags, out, true)?;
    let window = args.window.unwrap_or(config.context.window);
    let budget = args
        .budget
        .unwrap_or_else(|| packet::default_budget(config.context.packet_max, window, args.used));
    let hits = ranked(&idx, &j, &layout, &config, &args.task, &f, CANDIDATES, out)
        .map_err(Failure::failed)?;
    let p = packet::assemble(
        &hits,
        idx.fixed_tokens(),
        &PacketRequest {
            budget,
            full_entries: usize::try_from(config.context.full_entries).unwrap_or(5),
        },
    );
    let source = provenance(args.source);
    let run = source.journal_run();
    let count = |d: Decision| p.explain.iter().filter(|x| x.decision == d).count();
    j.append(
        new_event(
            run,
            body::ContextAssembled {
                task: args.task.clone(),
                budget: u64::from(budget),
                tokens: u64::from(p.tokens),
                cited: p.cited.clone(),
                full: Some(count(Decision::Full)),
                summary: Some(count(Decision::Summary)),
                title: Some(count(Decision::Title)),
                dropped: Some(count(Decision::Dropped)),
                agent: source.agent.clone(),
                ..body::ContextAssembled::default()
            },
        ),
        Durability::Configured,
    )
    .map_err(Failure::failed)?;
    if args.format == "json" || out.json {
        let mut v = serde_json::to_value(&p).map_err(Failure::failed)?;
        if !args.explain
            && let Some(o) = v.as_object_mut()
        {
            o.remove("explain");
        }
        out.json(&v);
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
    use agentops_knowledge::feedback::{self, Signal};
    let signal = Signal::parse(signal).map_err(Failure::usage)?;
    let (layout, k, config) = open(flags)?;
    let e = k.find(id).map_err(fail)?;
    let j = journal(&layout, &config)?;
    let source = provenance(source);
    let run = source.journal_run();
    let mut applied = feedback::apply(&k, &j, &e, signal, &source, &run).map_err(fail)?;
    if let Some(w) = applied.write.as_mut().filter(|w| w.changed) {
        crate::shared::index_after_write(&layout, &config, &mut w.warnings);
    }
    let u = applied.utility;
    if out.json {
        out.json(&serde_json::json!({
            "id": e.id, "signal": signal.as_str(), "utility": u.value, "events": u.events,
            "maturity": applied.moved.unwrap_or(e.maturity), "write": applied.write,
        }));
        return Ok(Code::Ok);
    }
    out.line(&format!(
        "{}: utility {:.3} after {}",
        e.id,
        u.value,
        agentops_core::counted(u.events, "event", "events")
    ));
    if let (Some(m), Some(w)) = (applied.moved, &applied.write) {
        render_write(w, out, &format!("{m} →"));
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
            let (idx, j, _, _) = open_index(flags, out, false)?;
            (idx, Some(j))
        }
    };
    let work_tree = layout.as_ref().map(|l| l.work_tree.clone());
    let sem = Semantic::prepare(&idx, &config, work_tree.as_deref(), None, out);
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
    let from_journal = j.as_ref().map(|j| utility_of(j, out));
    let util = |ids: &[&str]| from_journal.as_ref().map(|u| u(ids)).unwrap_or_default();
    let report = agentops_context::eval::evaluate(&set, &mut |q| {
        semantic::search(
            &idx,
            sem.as_ref(),
            q,
            &SearchFilter::default(),
            CANDIDATES,
            &util,
            out,
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
    let (layout, _, config) = open(flags)?;
    let (idx, r) =
        KnowledgeIndex::open(&layout, &config, true, rebuild).map_err(Failure::failed)?;
    for w in &r.warnings {
        out.warn(&format!("{w} (skipped)"));
    }
    // Every entry gets its vector here (searches embed for a few seconds at most).
    let sem = Semantic::prepare(&idx, &config, Some(&layout.work_tree), None, out);
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
