//! The harness sessions the journal knows: from hooks and from ingested
//! streams, with duration, tools, tokens, cost and gate blocks.

use agentops_protocol::hook::HookEvent;
use std::collections::BTreeMap;

use agentops_core::{Event, EventKind};
use agentops_llm::{PriceTable, Usage};
use agentops_protocol::EventBody;
use agentops_protocol::event::HookVerdict;
use agentops_store::{Journal, Query, StoreError};
use serde::Serialize;

/// One harness session.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Session {
    pub id: String,
    pub harness: String,
    /// First and last event (µs; RFC 3339 in JSON).
    #[serde(serialize_with = "agentops_core::time::serialize_us")]
    pub started: i64,
    #[serde(serialize_with = "agentops_core::time::serialize_us")]
    pub last: i64,
    pub duration_s: f64,
    pub prompts: usize,
    pub tools: usize,
    pub tool_errors: usize,
    pub llm_calls: usize,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
    pub model: Option<String>,
    /// Tool calls the policy denied.
    pub denied: usize,
    /// Stops the stop gates blocked.
    pub blocked: usize,
    pub escalated: bool,
    pub handoff: Option<String>,
    pub ended: bool,
}

const KINDS: [EventKind; 7] = [
    EventKind::HookReceived,
    EventKind::ToolCall,
    EventKind::LlmCall,
    EventKind::SessionStarted,
    EventKind::SessionEnded,
    EventKind::HookDecision,
    EventKind::HandoffWritten,
];

/// Sessions with activity since `since_ts` (µs), most recent first.
pub fn list(journal: &Journal, since_ts: Option<i64>) -> Result<Vec<Session>, StoreError> {
    let events = journal.read(&Query {
        kinds: KINDS.to_vec(),
        since_ts,
        ..Query::default()
    })?;
    let mut by: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for e in events {
        by.entry(e.run_id.as_str().to_owned()).or_default().push(e);
    }
    let prices = PriceTable::default();
    let mut out: Vec<Session> = by
        .into_iter()
        .filter_map(|(id, events)| summarise(id, &events, &prices))
        .collect();
    out.sort_by(|a, b| b.last.cmp(&a.last).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

/// One session's summary (`None` when the run is not a harness session).
pub fn summarise(id: String, events: &[Event], prices: &PriceTable) -> Option<Session> {
    let is_session = events
        .iter()
        .any(|e| matches!(e.kind, EventKind::HookReceived | EventKind::SessionStarted));
    if !is_session {
        return None;
    }
    let mut s = Session {
        id,
        started: events.iter().map(|e| e.ts).min().unwrap_or(0),
        last: events.iter().map(|e| e.ts).max().unwrap_or(0),
        ..Session::default()
    };
    let mut call_cost = 0.0;
    let mut call_cost_known = false;
    let mut reported: Option<f64> = None;
    let mut ended_usage: Option<Usage> = None;
    let mut reported_ms: Option<f64> = None;
    for e in events {
        let Ok(body) = EventBody::decode(e) else {
            continue;
        };
        let harness = match &body {
            EventBody::HookReceived(b) => Some(b.harness),
            EventBody::HookDecision(b) => Some(b.harness),
            EventBody::HandoffWritten(b) => Some(b.harness),
            EventBody::ToolCall(b) => b.harness,
            EventBody::SessionStarted(b) => b.harness,
            EventBody::SessionEnded(b) => b.harness,
            _ => None,
        };
        if s.harness.is_empty()
            && let Some(h) = harness
        {
            s.harness = h.as_str().to_owned();
        }
        match body {
            EventBody::HookReceived(h) => {
                match HookEvent::parse(&h.event) {
                    HookEvent::UserPromptSubmit => s.prompts += 1,
                    HookEvent::SessionEnd => s.ended = true,
                    _ => {}
                }
                if s.model.is_none() {
                    s.model = h.input["model"].as_str().map(str::to_owned);
                }
            }
            EventBody::ToolCall(t) => {
                s.tools += 1;
                if t.is_error {
                    s.tool_errors += 1;
                }
            }
            EventBody::LlmCall(c) => {
                s.llm_calls += 1;
                s.usage.add(&c.usage);
                if let Some(m) = &c.model {
                    s.model = Some(m.clone());
                }
                if let Some(cost) = c
                    .cost_usd
                    .or_else(|| c.model.as_deref().and_then(|m| prices.cost(m, &c.usage)))
                {
                    call_cost += cost;
                    call_cost_known = true;
                }
            }
            EventBody::SessionStarted(st) => {
                if let Some(m) = st.model {
                    s.model = Some(m);
                }
            }
            EventBody::SessionEnded(end) => {
                s.ended = true;
                reported = end.cost_usd.or(reported);
                ended_usage = Some(end.usage);
                reported_ms = end.duration_ms;
            }
            EventBody::HookDecision(d) => match d.decision {
                HookVerdict::Deny => s.denied += 1,
                HookVerdict::Block => s.blocked += 1,
                HookVerdict::Escalate => s.escalated = true,
            },
            EventBody::HandoffWritten(h) => s.handoff = Some(h.id),
            _ => {}
        }
    }
    // A harness's own totals beat our sum of calls (it sees calls we do not,
    // such as subagents').
    if let Some(u) = ended_usage.filter(|u| !u.is_zero()) {
        s.usage = u;
    }
    s.cost_usd = reported.or(call_cost_known.then_some(call_cost));
    s.duration_s = reported_ms
        .map(|ms| ms / 1000.0)
        .unwrap_or((s.last - s.started) as f64 / 1e6);
    Some(s)
}
