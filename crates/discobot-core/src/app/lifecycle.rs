//! Keeping sessions and their sandboxes in step: reconciliation at boot, idle stops, and
//! on-demand restarts of stopped sandboxes.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use super::{App, ProjectAccess};
use crate::error::{Error, Result};
use crate::ids::SessionId;
use crate::jobs::JobType;
use crate::model::{Session, SessionStatus};
use crate::ports::SandboxState;

/// Statuses in which a session's sandbox is expected to exist or be on its way.
const LIVE_STATUSES: &[SessionStatus] = &[
    SessionStatus::Ready,
    SessionStatus::Initializing,
    SessionStatus::Reinitializing,
    SessionStatus::Cloning,
    SessionStatus::PullingImage,
    SessionStatus::CreatingSandbox,
];

impl App {
    /// Aligns stored session states with what the sandbox provider reports, after a restart
    /// (or a crash): running → `ready`, stopped or missing → `stopped`, failed → `error`.
    /// Sessions still initialising keep their state: their init job resumes.
    /// Returns how many sessions changed.
    pub async fn reconcile_sessions(&self) -> Result<usize> {
        let sessions = self
            .ports
            .sessions
            .list_sessions_with_status(LIVE_STATUSES)
            .await?;
        let mut n_changed = 0;
        for session in sessions {
            let sandbox = self.ports.sandbox.get(&session.id).await?;
            let initialising = session.status != SessionStatus::Ready;
            let (status, error) = match sandbox {
                Some(info) => match info.state {
                    SandboxState::Running => (SessionStatus::Ready, None),
                    SandboxState::Failed => (
                        SessionStatus::Error,
                        Some(format!(
                            "Sandbox failed: {}",
                            info.error.unwrap_or_default()
                        )),
                    ),
                    SandboxState::Stopped | SandboxState::Created if initialising => continue,
                    SandboxState::Stopped | SandboxState::Created => (SessionStatus::Stopped, None),
                },
                None if initialising => continue,
                None => (SessionStatus::Stopped, None),
            };
            if status == session.status {
                continue;
            }
            if self
                .ports
                .sessions
                .set_session_status(&session.id, status, error.as_deref(), false, Utc::now())
                .await?
            {
                self.publish_session_status(&session.project_id, &session.id, status)
                    .await;
                n_changed += 1;
            }
        }
        Ok(n_changed)
    }

    /// Stops the sandboxes of `ready` sessions with no activity for `idle_timeout`.
    /// Returns the sessions stopped.
    /// Whether the session's primary thread has a turn running (as upstream asks); an agent
    /// that does not answer is not busy.
    async fn agent_is_busy(&self, id: &SessionId) -> bool {
        let Ok(endpoint) = self.ports.sandbox.agent_endpoint(id).await else {
            return false;
        };
        let request = crate::ports::AgentRequest {
            method: Some(crate::ports::AgentMethod::Get),
            path: format!("/threads/{}/chat/status", id.as_str()),
            ..Default::default()
        };
        matches!(
            self.ports.agent.call(&endpoint, request).await,
            Ok(response) if response.status == 200 && response.body["isRunning"] == true
        )
    }

    pub async fn stop_idle_sessions(&self, idle_timeout: Duration) -> Result<Vec<SessionId>> {
        let cutoff = Utc::now()
            - chrono::Duration::from_std(idle_timeout)
                .map_err(|_| Error::invalid("idle timeout out of range"))?;
        let sessions = self
            .ports
            .sessions
            .list_sessions_with_status(&[SessionStatus::Ready])
            .await?;
        let mut stopped = Vec::new();
        for session in sessions {
            if self.last_activity(&session) > cutoff {
                continue;
            }
            // A turn still running (nobody watching it) is activity: the agent is working.
            if self.agent_is_busy(&session.id).await {
                self.touch_session(&session.id);
                continue;
            }
            self.ports
                .sandbox
                .stop(&session.id, Duration::from_secs(10))
                .await?;
            if self
                .ports
                .sessions
                .set_session_status(&session.id, SessionStatus::Stopped, None, false, Utc::now())
                .await?
            {
                self.publish_session_status(
                    &session.project_id,
                    &session.id,
                    SessionStatus::Stopped,
                )
                .await;
            }
            tracing::info!(session.id = %session.id, "stopped idle sandbox");
            stopped.push(session.id);
        }
        Ok(stopped)
    }

    /// Records that something used the session's sandbox now (keeps it from idling out).
    pub fn touch_session(&self, session: &SessionId) {
        self.activity().insert(session.clone(), Utc::now());
    }

    fn last_activity(&self, session: &Session) -> chrono::DateTime<Utc> {
        let recorded = self.activity().get(&session.id).copied();
        recorded.map_or(session.updated_at, |at| at.max(session.updated_at))
    }

    fn activity(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<SessionId, chrono::DateTime<Utc>>>
    {
        // Plain timestamps: a panic elsewhere cannot leave the map inconsistent.
        self.activity
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// For requests that need the sandbox: the session when its sandbox runs; otherwise a
    /// stopped or failed sandbox is restarted through the init job and the caller gets a
    /// 503 "starting" to retry (the `session_updated` events say when it is ready).
    pub async fn require_sandbox(&self, access: &ProjectAccess, id: &SessionId) -> Result<Session> {
        let session = self.get_session(access, id).await?;
        let running = matches!(
            self.ports.sandbox.get(id).await?,
            Some(info) if info.state == SandboxState::Running
        );
        if session.status == SessionStatus::Ready && running {
            self.touch_session(id);
            return Ok(session);
        }
        if session.status.is_terminal() {
            return Err(Error::conflict("the session is being removed"));
        }
        if !session_is_starting(session.status) {
            self.ports
                .sessions
                .set_session_status(id, SessionStatus::Reinitializing, None, false, Utc::now())
                .await?;
            self.publish_session_status(&session.project_id, id, SessionStatus::Reinitializing)
                .await;
            self.enqueue(
                JobType::SessionInit,
                id.as_str(),
                json!({
                    "projectId": session.project_id.as_str(),
                    "sessionId": id.as_str(),
                    "workspaceId": session.workspace_id.as_str(),
                }),
                None,
            )
            .await?;
        }
        Err(Error::unavailable(
            "the session's sandbox is starting; try again shortly",
        ))
    }
}

fn session_is_starting(status: SessionStatus) -> bool {
    matches!(
        status,
        SessionStatus::Initializing
            | SessionStatus::Reinitializing
            | SessionStatus::Cloning
            | SessionStatus::PullingImage
            | SessionStatus::CreatingSandbox
    )
}

/// Smallest terminal the sandbox shell gets, as upstream clamps it.
const MIN_ROWS: u16 = 20;
const MIN_COLS: u16 = 80;

impl App {
    /// Attaches to the session's persistent terminal (one per session and user), starting
    /// the sandbox first when it is stopped. `root` asks for a root shell; otherwise the
    /// sandbox's default user.
    pub async fn open_terminal(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        rows: u16,
        cols: u16,
        root: bool,
    ) -> Result<crate::ports::TerminalAttachment> {
        self.require_sandbox(access, id).await?;
        let hub = self
            .ports
            .sandbox
            .terminals()
            .ok_or_else(|| Error::unavailable("sandbox provider not available"))?;
        let user = root.then(|| "root".to_owned());
        let key = format!("{id}:{}", user.as_deref().unwrap_or("default"));
        // Credentials the user made visible to the agent (or the console) are in the shell's
        // environment; the others never reach the sandbox's processes.
        let env = self
            .agent_credentials(id)
            .await?
            .into_iter()
            .filter(|credential| credential.visibility.tools || credential.visibility.console)
            .map(|credential| (credential.env_var, credential.value.expose().to_owned()))
            .collect();
        let request = crate::ports::PtyRequest {
            rows: rows.max(MIN_ROWS),
            cols: cols.max(MIN_COLS),
            user,
            env,
        };
        self.touch_session(id);
        hub.attach(id, &key, request).await
    }

    /// The state of the session's sandbox for `GET …/terminal/status`.
    pub async fn sandbox_info(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
    ) -> Result<Option<crate::ports::SandboxInfo>> {
        self.get_session(access, id).await?;
        self.ports.sandbox.get(id).await
    }

    pub async fn cache_volumes(&self, access: &ProjectAccess) -> Result<serde_json::Value> {
        self.ports.sandbox.cache_volumes(&access.project_id).await
    }

    pub async fn delete_cache_volume(&self, access: &ProjectAccess) -> Result<()> {
        if !access.role.is_admin() {
            return Err(Error::forbidden("Admin access required"));
        }
        self.ports
            .sandbox
            .delete_cache_volume(&access.project_id)
            .await
    }
}

impl App {
    /// Applies what the provider noticed by itself. A sandbox that stopped or vanished makes
    /// a `ready` session `stopped`; one that failed makes it `error`; one that runs again
    /// makes a `stopped` or `error` session `ready`. Sessions in the middle of starting are
    /// left to their init job, and removal is never undone. Image progress becomes a
    /// `startup_task_updated` event on project `local`.
    pub async fn apply_sandbox_event(&self, event: crate::ports::SandboxEvent) -> Result<()> {
        match event {
            crate::ports::SandboxEvent::Image { state, message } => {
                self.publish(
                    &crate::ids::ProjectId::local(),
                    crate::events::EventPayload::StartupTask {
                        id: "sandbox-image".into(),
                        name: "Sandbox image".into(),
                        state,
                        message,
                    },
                )
                .await;
                Ok(())
            }
            crate::ports::SandboxEvent::Sandbox {
                session_id,
                state,
                error,
            } => {
                let Some(session) = self.ports.sessions.get_session(&session_id).await? else {
                    return Ok(());
                };
                let next = match (state, session.status) {
                    (_, status) if status.is_terminal() => None,
                    (
                        Some(SandboxState::Running),
                        SessionStatus::Stopped | SessionStatus::Error,
                    ) => Some((SessionStatus::Ready, None)),
                    (Some(SandboxState::Stopped) | None, SessionStatus::Ready) => {
                        Some((SessionStatus::Stopped, None))
                    }
                    (Some(SandboxState::Failed), status) if status != SessionStatus::Error => {
                        Some((
                            SessionStatus::Error,
                            Some(format!("Sandbox failed: {}", error.unwrap_or_default())),
                        ))
                    }
                    _ => None,
                };
                let Some((status, error)) = next else {
                    return Ok(());
                };
                // Events can arrive late (a stop that a restart already undid): act only when
                // the sandbox is still in the state the event reported.
                let current = self
                    .ports
                    .sandbox
                    .get(&session_id)
                    .await?
                    .map(|info| info.state);
                let still_true = match state {
                    None | Some(SandboxState::Stopped) => {
                        !matches!(current, Some(SandboxState::Running))
                    }
                    Some(reported) => current == Some(reported),
                };
                if !still_true {
                    return Ok(());
                }
                if self
                    .ports
                    .sessions
                    .set_session_status(&session_id, status, error.as_deref(), false, Utc::now())
                    .await?
                {
                    self.publish_session_status(&session.project_id, &session_id, status)
                        .await;
                }
                Ok(())
            }
        }
    }
}
