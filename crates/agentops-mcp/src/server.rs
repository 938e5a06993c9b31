//! The MCP handler: tools, resources and prompts over [`State`], each tool
//! call journaled as a span of the calling session.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use agentops_knowledge::Provenance;
use agentops_protocol::event::{self as body, new_event};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, InitializeRequestParams, InitializeResult,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    RequestMetaObject, ServerConfig, SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};

use crate::state::State;
use crate::{content, tools};

/// The longest tool output kept in the journal span.
const JOURNAL_OUTPUT: usize = 1_000;

/// One client connection's handler (the HTTP transport makes one per
/// session; stdio has one).
#[derive(Clone)]
pub struct Handler {
    state: Arc<State>,
    /// This connection's number for notifications, once initialized.
    client: Arc<OnceLock<u64>>,
    /// The session calls are journaled under when the client names none.
    fallback_session: Arc<str>,
}

impl Handler {
    pub fn new(state: Arc<State>) -> Self {
        // The harness's session when it tells its servers (Claude Code sets
        // CLAUDE_CODE_SESSION_ID for what it starts), so the calls are spans
        // of the same session as its hooks' events.
        let fallback = [
            "AGENTOPS_SESSION_ID",
            "CLAUDE_CODE_SESSION_ID",
            "CODEX_SESSION_ID",
        ]
        .iter()
        .find_map(|k| std::env::var(k).ok())
        .filter(|s| agentops_core::RunId::parse(s).is_ok())
        .unwrap_or_else(|| format!("mcp-{}", agentops_core::RunId::generate()));
        Self {
            state,
            client: Arc::new(OnceLock::new()),
            fallback_session: fallback.into(),
        }
    }

    /// The calling session: `_meta` of the request (`agentops/session`,
    /// `sessionId` or `session_id`), else this connection's.
    fn session(&self, meta: Option<&RequestMetaObject>) -> Provenance {
        let from_meta = meta.and_then(|m| {
            ["agentops/session", "sessionId", "session_id"]
                .iter()
                .find_map(|k| m.0.0.get(*k).and_then(Value::as_str))
                .filter(|s| agentops_core::RunId::parse(s).is_ok())
                .map(str::to_owned)
        });
        Provenance {
            run: None,
            session: Some(from_meta.unwrap_or_else(|| self.fallback_session.to_string())),
            agent: Some("mcp".into()),
        }
    }

    fn register(&self, ctx: &RequestContext<RoleServer>) {
        if self.client.get().is_none() {
            let n = self.state.connect(ctx.peer.clone());
            let _ = self.client.set(n);
        }
    }
}

fn from_json<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, McpError> {
    serde_json::from_value(v).map_err(|e| McpError::internal_error(e.to_string(), None))
}

/// Runs `f` on the blocking pool (the library calls do file and database
/// I/O); a task that panicked is an internal error.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, McpError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| McpError::internal_error(format!("the call stopped: {e}"), None))
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Tells every client what changed (after a memory write here, and from
/// the watcher for writes by other processes).
pub async fn notify(state: &Arc<State>) {
    let s = state.clone();
    let Ok(changes) = tokio::task::spawn_blocking(move || {
        let st = s.clone();
        s.changes(&move |uri| content::read(&st, uri).ok().map(|(text, _)| text))
    })
    .await
    else {
        return;
    };
    if changes.list_changed {
        for p in &changes.peers {
            let _ = p.notify_resource_list_changed().await;
        }
    }
    for (p, uri) in changes.updated {
        let _ = p
            .notify_resource_updated(rmcp::model::ResourceUpdatedNotificationParam::new(uri))
            .await;
    }
}

impl ServerHandler for Handler {
    fn get_info(&self) -> ServerConfig {
        let caps = serde_json::from_value(json!({
            "tools": {"listChanged": false},
            "resources": {"subscribe": true, "listChanged": true},
            "prompts": {"listChanged": false},
        }))
        .unwrap_or_default();
        let mut info = InitializeResult::new(caps);
        info.server_info = rmcp::model::Implementation::new("agentops", env!("CARGO_PKG_VERSION"));
        info.server_info.title = Some("agentops: operational discipline for AI agents".into());
        info.instructions = Some(
            "agentops holds this repository's knowledge (learnings, decisions, patterns, handoffs), its gates and its run journal. \
             Before a task: `context` (a packet within a token budget) or `search`; expand an entry with `get`. \
             When you learn something worth keeping: `learn`. Before finishing: `gate_run`. \
             At the end of a session: `handoff_write`."
                .into(),
        );
        info
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        context.peer.set_peer_info(request.clone());
        self.register(&context);
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        from_json(json!({"tools": tools::list()}))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.register(&context);
        let name = request.name.to_string();
        if !tools::exists(&name) {
            return Err(McpError::invalid_params(
                format!(
                    "no tool `{name}` (tools: {})",
                    tools::list()
                        .iter()
                        .filter_map(|t| t["name"].as_str().map(str::to_owned))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Some(json!({"field": "name"})),
            ));
        }
        let session = self.session(request.meta.as_ref());
        let state = self.state.clone();
        let started = Instant::now();
        let args = request.arguments.clone();
        let (tool, sess) = (name.clone(), session.clone());
        let result = if tools::reads_only(&name) {
            // A read answers in about a millisecond: on this worker, which
            // hands its other tasks to another meanwhile, rather than on a
            // blocking-pool thread woken for it and the answer woken back.
            // A panic is an internal error, as on the blocking pool.
            tokio::task::block_in_place(move || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    tools::call(&state, &sess, &tool, args)
                }))
            })
            .map_err(|_| McpError::internal_error("the call stopped: it panicked", None))?
        } else {
            blocking(move || tools::call(&state, &sess, &tool, args)).await?
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let (out, is_error) = match result {
            Ok(v) => {
                // Compact: the text is what a model reads, token by token.
                let text = serde_json::to_string(&v).unwrap_or_default();
                let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
                r.structured_content = Some(v);
                (r, false)
            }
            Err(e) => {
                // The field at fault in `_meta` (structured content must
                // match the output schema, which describes a success).
                let mut r = CallToolResult::error(vec![ContentBlock::text(e.message.clone())]);
                if let Some(f) = e.field {
                    r.meta = serde_json::from_value(json!({"agentops/field": f})).ok();
                }
                (r, true)
            }
        };
        // The span of the calling session (redacted by the journal).
        let state = self.state.clone();
        let input = Value::Object(request.arguments.unwrap_or_default());
        let output = out
            .content
            .first()
            .and_then(|c| c.as_text())
            .map(|t| clip(&t.text, JOURNAL_OUTPUT));
        let written = matches!(name.as_str(), "learn" | "feedback" | "handoff_write") && !is_error;
        let used = (name == "get" && !is_error)
            .then(|| input.get("id").and_then(Value::as_str).map(str::to_owned))
            .flatten();
        if let Some(id) = &used {
            state.record_used(id, session.journal_run());
        }
        state.record_span(new_event(
            session.journal_run(),
            body::ToolCall {
                source: Some("mcp".into()),
                agent: session.agent.clone(),
                name: format!("mcp:agentops/{name}"),
                input,
                output,
                is_error,
                duration_ms: Some(ms),
                ..body::ToolCall::default()
            },
        ));
        if written {
            let state = self.state.clone();
            tokio::spawn(async move { notify(&state).await });
        }
        Ok(out.into())
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        self.register(&context);
        let cursor = request.and_then(|r| r.cursor);
        let state = self.state.clone();
        let page = blocking(move || content::list(&state, cursor.as_deref())).await??;
        from_json(page)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        from_json(json!({"resourceTemplates": content::templates()}))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        self.register(&context);
        let uri = request.uri.clone();
        let state = self.state.clone();
        let session = self.session(request.meta.as_ref());
        let (text, mime) = blocking(move || {
            let r = content::read(&state, &uri);
            // Reading an entry is using it, as `get` is.
            if r.is_ok()
                && let Some(id) = uri.strip_prefix(content::ENTRY)
            {
                state.record_used(id, session.journal_run());
            }
            r
        })
        .await??;
        let r: ReadResourceResult = from_json(json!({
            "contents": [{"uri": request.uri, "mimeType": mime, "text": text}]
        }))?;
        Ok(r.into())
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.register(&context);
        let state = self.state.clone();
        let uri = request.uri.clone();
        // A resource may be subscribed to before it exists (the first handoff).
        let now = blocking(move || content::read(&state, &uri).ok())
            .await?
            .map(|(text, _)| text)
            .unwrap_or_default();
        if let Some(n) = self.client.get() {
            self.state.subscribe(*n, &request.uri, Some(&now));
        }
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if let Some(n) = self.client.get() {
            self.state.subscribe(*n, &request.uri, None);
        }
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        from_json(json!({"prompts": content::prompts()}))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        self.register(&context);
        let state = self.state.clone();
        let session = self.session(request.meta.as_ref());
        let v = blocking(move || {
            content::prompt(&state, &session, &request.name, request.arguments.as_ref())
        })
        .await??;
        let r: GetPromptResult = from_json(v)?;
        Ok(r.into())
    }
}
