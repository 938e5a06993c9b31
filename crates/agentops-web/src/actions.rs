//! What a person can do from a run's page: approve or reject a pending
//! approval, resume, cancel, land — each the library call the CLI makes
//! (`agentops approve|reject|resume|cancel|land`). A resume runs the
//! workflow, which takes minutes: it starts `agentops resume` as a process
//! of its own, which outlives the page (and the dashboard).

use agentops_api::ApiError;
use agentops_core::RunId;

use crate::serve::{Request, Response, encode};
use crate::state::State;

pub fn route(state: &State, req: &Request) -> Response {
    let parts: Vec<&str> = req.path.trim_end_matches('/').split('/').skip(1).collect();
    let ["runs", id, action] = parts.as_slice() else {
        return Response::error(
            state,
            404,
            "Not found",
            &format!("nothing accepts a POST at {}", req.path),
        );
    };
    let back =
        |note: &str| Response::redirect(&format!("/runs/{}?note={}", encode(id), encode(note)));
    match act(state, req, id, action) {
        Ok(note) => back(&note),
        Err(e) => {
            let status = if e.kind == agentops_api::ErrorKind::Usage {
                400
            } else {
                409
            };
            Response::error(state, status, &format!("Cannot {action}"), &e.to_string())
        }
    }
}

fn act(state: &State, req: &Request, id: &str, action: &str) -> Result<String, ApiError> {
    let layout = &state.project.layout;
    let j = state.journal_write()?;
    let run = agentops_api::runs::resolve(&j, id)?;
    let fail = agentops_api::runs::run_error;
    match action {
        "approve" | "reject" => {
            let approved = action == "approve";
            let gate = req.form("gate").filter(|g| !g.is_empty());
            let by = agentops_api::actor(layout);
            let reason = req
                .form("reason")
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| format!("{action}d in agentops ui"));
            let decided = agentops_gates::approval::resolve(
                &j,
                &run,
                gate.as_deref(),
                approved,
                &by,
                &reason,
            )
            .map_err(ApiError::failed)?;
            if decided.is_empty() {
                return Err(ApiError::failed(format!(
                    "nothing is waiting for approval in {run}{}",
                    gate.map(|g| format!(" for gate `{g}`")).unwrap_or_default()
                )));
            }
            let verb = if approved { "approved" } else { "rejected" };
            if approved {
                resume(state, &run)?;
                Ok(format!(
                    "{verb} {} by {by}; the run is resuming",
                    decided.join(", ")
                ))
            } else {
                Ok(format!(
                    "{verb} {} by {by}; resume the run to let it act on the rejection",
                    decided.join(", ")
                ))
            }
        }
        "resume" => {
            resume(state, &run)?;
            Ok("the run is resuming".into())
        }
        "cancel" => agentops_runner::cancel(layout, &j, &run).map_err(fail),
        "land" => {
            let r = agentops_runner::land(layout, &j, &run).map_err(fail)?;
            Ok(format!(
                "landed into {} ({}) at {}",
                r.into,
                r.how,
                r.commit.get(..12).unwrap_or(&r.commit)
            ))
        }
        other => Err(ApiError::usage(format!(
            "`{other}` is not an action (approve, reject, resume, cancel, land)"
        ))),
    }
}

/// `agentops resume RUN` in a process of its own (its own process group,
/// so it outlives the dashboard), its output in
/// `<state>/ui/resume-<run>.log`.
fn resume(state: &State, run: &RunId) -> Result<(), ApiError> {
    use std::os::unix::process::CommandExt;
    let Some(exe) = state.opts.exe.clone() else {
        return Err(ApiError::failed(format!(
            "this dashboard cannot start processes: run `agentops resume {run}`"
        )));
    };
    let dir = state.project.layout.state_dir().join("ui");
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::failed(format!("{}: {e}", dir.display())))?;
    let log_path = dir.join(format!("resume-{run}.log"));
    let log = std::fs::File::create(&log_path)
        .map_err(|e| ApiError::failed(format!("{}: {e}", log_path.display())))?;
    let err = log
        .try_clone()
        .map_err(|e| ApiError::failed(format!("{}: {e}", log_path.display())))?;
    let mut child = std::process::Command::new(&exe)
        .args(["resume", run.as_str()])
        .current_dir(&state.project.layout.work_tree)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| ApiError::failed(format!("cannot start {}: {e}", exe.display())))?;
    // Reaped when it ends, so it never lingers as a zombie.
    let _ = std::thread::Builder::new()
        .name("agentops-ui-resume".into())
        .spawn(move || {
            let _ = child.wait();
        });
    Ok(())
}
