//! Reaching a session's agent: wait for its sandbox (restarting a stopped one), build the
//! request with the credentials header, and turn the agent's error answers into domain
//! errors. Also the checks of client-supplied paths and ids before they are forwarded.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value};

use super::{App, ProjectAccess};
use crate::credentials::encode_credentials_header;
use crate::error::{Error, ErrorKind, Result};
use crate::ids::SessionId;
use crate::model::{Session, SessionStatus};
use crate::ports::{AgentEndpoint, AgentMethod, AgentRequest, AgentResponse, SandboxState};
use crate::secrets::Secret;

/// How long a request waits for a restarted sandbox.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How often it looks while waiting.
const READY_POLL: Duration = Duration::from_millis(250);

/// A session whose agent answers, and how to reach it.
pub(crate) struct AgentTarget {
    pub session: Session,
    pub endpoint: AgentEndpoint,
    credentials: Option<Secret>,
    /// The host's git identity for the workspace, so the agent's commits carry it; looked up
    /// only for requests that can lead to commits (see `App::with_git_identity`).
    git_user: Option<(String, String)>,
}

impl AgentTarget {
    /// A request to the agent with the session's credentials header.
    pub fn request(&self, method: AgentMethod, path: String, body: Option<Value>) -> AgentRequest {
        AgentRequest {
            method: Some(method),
            path,
            body,
            credentials_header: self.credentials.clone(),
            git_user_name: self.git_user.as_ref().map(|(name, _)| name.clone()),
            git_user_email: self.git_user.as_ref().map(|(_, email)| email.clone()),
            last_event_id: None,
        }
    }
}

impl App {
    /// The session (of this project) with its sandbox running: a stopped, failed or
    /// reinitialising sandbox is (re)started through the init job and waited for, up to
    /// two minutes.
    pub(crate) async fn agent_target(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
    ) -> Result<AgentTarget> {
        let deadline = Utc::now() + READY_TIMEOUT;
        let mut restarted = false;
        let session = loop {
            let session = self.get_session(access, id).await?;
            let running = session.status == SessionStatus::Ready
                && matches!(
                    self.ports.sandbox.get(id).await?,
                    Some(info) if info.state == SandboxState::Running
                );
            if running {
                self.touch_session(id);
                break session;
            }
            if restarted
                && matches!(
                    session.status,
                    SessionStatus::Error | SessionStatus::Stopped
                )
            {
                return Err(Error::bad_gateway(
                    session
                        .error_message
                        .unwrap_or_else(|| "the session's sandbox failed to start".into()),
                ));
            }
            if !restarted {
                // Triggers the restart when needed; "starting" is what we wait out.
                match self.require_sandbox(access, id).await {
                    Ok(session) => break session,
                    Err(error) if error.kind == ErrorKind::Unavailable => restarted = true,
                    Err(error) => return Err(error),
                }
            }
            if Utc::now() >= deadline {
                return Err(Error::unavailable(
                    "the session's sandbox did not become ready in time",
                ));
            }
            self.ports.sleeper.sleep(READY_POLL).await;
        };
        let endpoint = self.ports.sandbox.agent_endpoint(id).await?;
        let entries = self.agent_credentials(id).await?;
        let credentials =
            (!entries.is_empty()).then(|| Secret::new(encode_credentials_header(&entries)));
        Ok(AgentTarget {
            session,
            endpoint,
            credentials,
            git_user: None,
        })
    }

    /// `target` with the git identity of its session's workspace, for the requests that can
    /// lead to commits (chat, commit, rebase): the agent keeps it in its working copy, so
    /// reads and streams need not pay for opening the host repository.
    pub(crate) async fn with_git_identity(&self, mut target: AgentTarget) -> AgentTarget {
        target.git_user = self.workspace_identity(&target.session).await;
        target
    }

    /// The git identity configured for the session's workspace; `None` when unset or
    /// unreadable (the agent then keeps its default).
    async fn workspace_identity(&self, session: &Session) -> Option<(String, String)> {
        let workspace = self
            .ports
            .workspaces
            .get_workspace(&session.workspace_id)
            .await
            .ok()??;
        let dir = workspace.work_dir.filter(|dir| !dir.is_empty())?;
        self.ports
            .git
            .user_identity(std::path::Path::new(&dir))
            .await
            .ok()
            .flatten()
    }

    /// Sends one request to the session's agent and returns its JSON on a 2xx; any other
    /// answer becomes the matching domain error with the agent's error text.
    pub(crate) async fn agent_json(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        method: AgentMethod,
        path: String,
        body: Option<Value>,
    ) -> Result<Value> {
        let target = self.agent_target(access, id).await?;
        let response = self
            .ports
            .agent
            .call(&target.endpoint, target.request(method, path, body))
            .await?;
        success_json(response)
    }
}

/// The body of a 2xx answer, else its error.
pub(crate) fn success_json(response: AgentResponse) -> Result<Value> {
    if (200..300).contains(&response.status) {
        Ok(response.body)
    } else {
        Err(agent_error(&response))
    }
}

/// The agent's error text: the `error` field of a JSON body, else the body as text.
pub(crate) fn agent_error_text(body: &Value) -> String {
    match body {
        Value::Object(map) => match map.get("error") {
            Some(Value::String(text)) => text.clone(),
            _ => body.to_string(),
        },
        Value::String(text) => text.trim().to_owned(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// An agent's 4xx is the same 4xx for the client with the agent's text (a 409 keeps the
/// agent's other fields, e.g. a write conflict's `currentContent`); a 401 means our secret
/// is wrong and anything else failed on the agent's side: both are 502.
pub(crate) fn agent_error(response: &AgentResponse) -> Error {
    let text = agent_error_text(&response.body);
    let text = if text.is_empty() {
        format!("sandbox returned status {}", response.status)
    } else {
        text
    };
    match response.status {
        400 => Error::invalid(text),
        403 => Error::forbidden(text),
        404 => Error::not_found(text),
        409 => {
            let mut details = Map::new();
            if let Value::Object(map) = &response.body {
                details.extend(
                    map.iter()
                        .filter(|(key, _)| key.as_str() != "error")
                        .map(|(key, value)| (key.clone(), value.clone())),
                );
            }
            Error::conflict(text).with_details(details)
        }
        413 => Error::new(ErrorKind::PayloadTooLarge, text),
        401 => Error::bad_gateway(format!("sandbox returned status 401: {text}")),
        status if (400..500).contains(&status) => Error::invalid(text),
        status => Error::bad_gateway(format!("sandbox returned status {status}: {text}")),
    }
}

/// Checks a path a client wants read or written in the session's workspace: relative,
/// without NUL, never climbing above the root. The agent checks symlinks on top.
pub(crate) fn check_relative_path(path: &str) -> Result<()> {
    let invalid = || Error::invalid("Invalid path");
    if path.contains('\0') || path.starts_with('/') || path.starts_with('\\') {
        return Err(invalid());
    }
    let bytes = path.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return Err(invalid());
    }
    let mut depth: usize = 0;
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => depth = depth.checked_sub(1).ok_or_else(invalid)?,
            _ => depth += 1,
        }
    }
    Ok(())
}

/// Checks a thread, question or queue id taken from the URL: 1 to 256 characters, no
/// control characters (it becomes one path segment of the agent's URL).
pub(crate) fn check_segment(value: &str, what: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(format!("{what} is required")));
    }
    // `.` and `..` would be resolved away in the agent's URL and reach another route.
    if value.chars().count() > 256
        || value.chars().any(char::is_control)
        || matches!(value, "." | "..")
    {
        return Err(Error::invalid(format!("invalid {what}")));
    }
    Ok(())
}

/// Percent-encodes one URL path segment or query value (RFC 3986 unreserved kept).
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_in_agent_urls_are_single_plain_segments() {
        for ok in ["main", "a.b", "x y", "...", "caf\u{e9}"] {
            assert!(check_segment(ok, "threadId").is_ok(), "{ok}");
        }
        for bad in ["", " ", ".", "..", "a\nb", &"x".repeat(257)] {
            let error = check_segment(bad, "threadId").unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn paths_stay_inside_the_workspace() {
        for ok in [".", "src/main.rs", "a/../b", "./x", "dir/", "a/b/../../c"] {
            assert!(check_relative_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/etc/passwd",
            "..",
            "../x",
            "a/../../x",
            "a\0b",
            "\\\\server\\share",
            "C:\\x",
            "a/..\\..\\x",
        ] {
            let error = check_relative_path(bad).unwrap_err();
            assert_eq!(
                (error.kind, error.message.as_str()),
                (ErrorKind::InvalidInput, "Invalid path"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn agent_errors_keep_status_and_text() {
        let answer = |status, body| AgentResponse { status, body };
        let error = agent_error(&answer(404, json!({"error": "File not found"})));
        assert_eq!(
            (error.kind, error.message.as_str()),
            (ErrorKind::NotFound, "File not found")
        );
        let error = agent_error(&answer(
            409,
            json!({"error": "conflict", "currentContent": "x"}),
        ));
        assert_eq!(error.kind, ErrorKind::Conflict);
        assert_eq!(error.details.unwrap()["currentContent"], "x");
        let error = agent_error(&answer(400, json!("Invalid path\n")));
        assert_eq!(
            (error.kind, error.message.as_str()),
            (ErrorKind::InvalidInput, "Invalid path")
        );
        let error = agent_error(&answer(401, json!({"error": "Unauthorized"})));
        assert_eq!(error.kind, ErrorKind::BadGateway);
        let error = agent_error(&answer(413, json!({"error": "File too large"})));
        assert_eq!(error.kind, ErrorKind::PayloadTooLarge);
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(encode("th-1_x.y~"), "th-1_x.y~");
        assert_eq!(encode("é"), "%C3%A9");
    }
}
