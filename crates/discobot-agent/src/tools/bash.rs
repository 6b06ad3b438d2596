//! `Bash`: runs `bash -c` in the thread's working directory, which persists across calls
//! (a trailing `pwd` marker tells where the command ended), with the tool-visible credentials
//! added to the environment; its process group is killed on timeout or cancel.

use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::{ToolContext, ToolResult, parse};

const DEFAULT_TIMEOUT_MS: u64 = 120_000;
const MAX_TIMEOUT_MS: u64 = 600_000;
/// Output kept in memory; the rest is dropped (and said so), so a runaway command cannot
/// exhaust the agent's memory.
const MAX_CAPTURE_BYTES: usize = 32 << 20;
/// How long to wait for the output pipe to close after the shell exited: a background
/// process (`server &`) may keep it open forever.
const DRAIN_GRACE: Duration = Duration::from_millis(300);

#[derive(Deserialize)]
struct BashInput {
    command: String,
    #[serde(default)]
    timeout: Option<f64>,
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "shown to the user in the tool call; the agent ignores it"
    )]
    description: Option<String>,
}

/// Runs the command; `Ok` with the output and exit code, `Err` on timeout or cancel.
pub(crate) async fn run(context: &ToolContext<'_>, input: Value) -> ToolResult {
    let input: BashInput = parse("Bash", input)?;
    context.check_plan_mode("Bash", None)?;
    let timeout_ms = match input.timeout {
        Some(ms) if ms >= 1.0 => (ms as u64).min(MAX_TIMEOUT_MS),
        _ => DEFAULT_TIMEOUT_MS,
    };
    let cwd = context.tools.cwd(context.work_dir);
    let marker = format!("__DISCOBOT_CWD_{}__", uuid::Uuid::new_v4().simple());
    // The command is `$1` and runs through `eval`, so a syntax error in it is an error like
    // any other and the marker line still follows. `exec 2>&1` interleaves stderr with
    // stdout in one pipe, in the order they were written.
    let script = format!(
        "exec 2>&1 </dev/null\n__discobot_command=$1\nshift\neval \"$__discobot_command\"\n\
         __discobot_status=$?\nprintf '\\n{marker}%s\\n' \"$(pwd)\"\nexit $__discobot_status\n"
    );
    let mut command = tokio::process::Command::new("bash");
    command
        .arg("-c")
        .arg(script)
        .arg("bash")
        .arg(&input.command)
        .current_dir(&cwd)
        .envs(context.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group, so a timeout or cancel kills everything it started.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|err| format!("Could not start bash: {err}"))?;
    let group = GroupGuard(child.id().and_then(|pid| i32::try_from(pid).ok()));

    let captured = Arc::new(Mutex::new(Capture::default()));
    let mut stdout = child.stdout.take();
    let reader = {
        let captured = captured.clone();
        tokio::spawn(async move {
            let Some(stdout) = stdout.as_mut() else {
                return;
            };
            let mut buffer = vec![0; 16 << 10];
            while let Ok(n) = stdout.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                captured
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(&buffer[..n]);
            }
        })
    };

    let end = tokio::select! {
        status = child.wait() => End::Exited(status),
        () = tokio::time::sleep(Duration::from_millis(timeout_ms)) => End::TimedOut,
        () = context.cancel.cancelled() => End::Cancelled,
    };
    if !matches!(end, End::Exited(_)) {
        group.kill();
        let _ = child.wait().await;
    }
    // After a normal exit the group lives on: the user may have started a server on purpose.
    std::mem::forget(group);
    let _ = tokio::time::timeout(DRAIN_GRACE, reader).await;
    let capture = std::mem::take(&mut *captured.lock().unwrap_or_else(PoisonError::into_inner));
    let mut output = String::from_utf8_lossy(&capture.bytes).into_owned();
    if let Some(at) = output.rfind(&format!("\n{marker}")) {
        let rest = &output[at + 1 + marker.len()..];
        let dir = std::path::PathBuf::from(rest.lines().next().unwrap_or_default());
        if dir.is_dir() {
            context.tools.set_cwd(dir);
        }
        output.truncate(at);
    }
    output.truncate(output.trim_end_matches('\n').len());
    if capture.dropped > 0 {
        output.push_str(&format!(
            "\n[{} more bytes of output were discarded]",
            capture.dropped
        ));
    }
    match end {
        End::Exited(Ok(status)) => {
            let code = status.code().map_or_else(
                || "none (killed by a signal)".to_owned(),
                |code| code.to_string(),
            );
            if output.trim().is_empty() {
                Ok(format!("(no output)\n\nExit code: {code}"))
            } else {
                Ok(format!("{output}\n\nExit code: {code}"))
            }
        }
        End::Exited(Err(err)) => Err(format!("{output}\nWaiting for bash failed: {err}")),
        End::TimedOut => Err(format!(
            "{output}\nCommand timed out after {timeout_ms} ms and was killed"
        )),
        End::Cancelled => Err(format!("{output}\nCommand was cancelled by the user")),
    }
}

enum End {
    Exited(std::io::Result<std::process::ExitStatus>),
    TimedOut,
    Cancelled,
}

#[derive(Default)]
struct Capture {
    bytes: Vec<u8>,
    dropped: usize,
}

impl Capture {
    fn push(&mut self, data: &[u8]) {
        let room = MAX_CAPTURE_BYTES.saturating_sub(self.bytes.len());
        let kept = data.len().min(room);
        self.bytes.extend_from_slice(&data[..kept]);
        self.dropped += data.len() - kept;
    }
}

/// Kills the command's process group when dropped: a tool future dropped mid-run (the turn
/// was cancelled or the thread deleted) leaves nothing running.
struct GroupGuard(Option<i32>);

impl GroupGuard {
    fn kill(&self) {
        if let Some(pid) = self.0 {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
