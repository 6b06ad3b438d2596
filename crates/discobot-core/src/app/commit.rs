//! Committing a session's work back to its workspace, and rebasing it onto the workspace's
//! new HEAD: the use cases that start the operation and the jobs that run it.
//!
//! Commit: the agent is told `/discobot-commit <base>` on the session's primary thread (it
//! commits what is pending on top of the base), the server takes the replay bundle of
//! `base..HEAD` from the agent and re-creates every commit in the host workspace, all or
//! nothing. Rebase: the agent is told `/discobot-rebase <host HEAD>` and the session's base
//! moves there. Status machine: `pending → committing → completed | failed` (error kept), an
//! event at each step.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use super::agent::{AgentTarget, success_json};
use super::{App, ProjectAccess};
use crate::error::{Error, ErrorKind, Result};
use crate::events::EventPayload;
use crate::ids::SessionId;
use crate::jobs::{Job, JobType};
use crate::model::{CommitStatus, Session, Workspace};
use crate::ports::{AgentMethod, CommitRefs, JobRun};
use crate::replay::{CommitsResponse, ReplayBundle};

/// How long the agent may take to commit or rebase before the operation fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// Which operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    Commit,
    Rebase,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Commit => "commit",
            Self::Rebase => "rebase",
        }
    }
}

impl App {
    /// `POST …/sessions/{id}/commit`: queues the commit of the session's work (409 while a
    /// commit or rebase is in progress).
    pub async fn commit_session(&self, access: &ProjectAccess, id: &SessionId) -> Result<()> {
        self.begin_operation(access, id, Operation::Commit).await
    }

    /// `POST …/sessions/{id}/rebase`: queues moving the session's work onto the workspace's
    /// current HEAD.
    pub async fn rebase_session(&self, access: &ProjectAccess, id: &SessionId) -> Result<()> {
        self.begin_operation(access, id, Operation::Rebase).await
    }

    async fn begin_operation(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        operation: Operation,
    ) -> Result<()> {
        let session = self.get_session(access, id).await?;
        if session.status.is_terminal() {
            return Err(Error::conflict("the session is being removed"));
        }
        let started = self
            .ports
            .sessions
            .begin_commit_operation(
                id,
                operation.as_str(),
                operation == Operation::Rebase,
                Utc::now(),
            )
            .await?;
        if !started {
            return Err(Error::conflict("Session operation already in progress"));
        }
        self.publish_commit_status(&session, Some(CommitStatus::Pending))
            .await;
        let job_type = match operation {
            Operation::Commit => JobType::SessionCommit,
            Operation::Rebase => JobType::SessionRebase,
        };
        // Commits of one workspace run one at a time: the job's resource is the workspace.
        let resource = match operation {
            Operation::Commit => session.workspace_id.as_str(),
            Operation::Rebase => session.id.as_str(),
        };
        let payload = json!({
            "projectId": session.project_id.as_str(),
            "sessionId": session.id.as_str(),
            "workspaceId": session.workspace_id.as_str(),
        });
        if let Err(error) = self.enqueue(job_type, resource, payload, None).await {
            self.finish_operation(&session, Err(error.message.clone()))
                .await;
            return Err(error);
        }
        Ok(())
    }

    /// Runs a `session_commit` or `session_rebase` job: never retried; the outcome is the
    /// session's commit status.
    pub(crate) async fn run_commit_job(&self, job: &Job, rebase: bool) -> Result<JobRun> {
        let id = SessionId::new(
            job.payload
                .get("sessionId")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::invalid("job payload lacks sessionId"))?,
        );
        let Some(session) = self.ports.sessions.get_session(&id).await? else {
            return Ok(JobRun::Done);
        };
        if session.status.is_terminal() {
            return Ok(JobRun::Done);
        }
        // Every way out of here ends the operation (`completed` or `failed`); a job cut off
        // by its timeout is ended by `job_finished`.
        let outcome = async {
            self.ports
                .sessions
                .set_commit_status(&id, Some(CommitStatus::Committing), None, Utc::now())
                .await?;
            self.publish_commit_status(&session, Some(CommitStatus::Committing))
                .await;
            let workspace = self.session_workspace(&session).await?;
            if rebase {
                self.rebase_work(&session, &workspace).await
            } else {
                self.commit_work(&session, &workspace).await
            }
        }
        .await;
        self.finish_operation(&session, outcome.map_err(|error| error.message))
            .await;
        Ok(JobRun::Done)
    }

    /// A commit or rebase job that ended without recording its outcome (timed out): the
    /// operation fails with the job's error, unless it already ended.
    pub(crate) async fn commit_job_failed(&self, job: &Job, error: &str) {
        let Some(id) = job.payload.get("sessionId").and_then(Value::as_str) else {
            return;
        };
        let Ok(Some(session)) = self.ports.sessions.get_session(&SessionId::new(id)).await else {
            return;
        };
        if matches!(
            session.commit_status,
            Some(CommitStatus::Pending | CommitStatus::Committing)
        ) {
            self.finish_operation(&session, Err(error.to_owned())).await;
        }
    }

    async fn session_workspace(&self, session: &Session) -> Result<Workspace> {
        self.ports
            .workspaces
            .get_workspace(&session.workspace_id)
            .await?
            .ok_or_else(|| Error::not_found("the session's workspace no longer exists"))
    }

    /// Has the agent commit, then replays its commits on the host; the session remembers the
    /// host's new HEAD and the sandbox commit its next work sits on.
    async fn commit_work(&self, session: &Session, workspace: &Workspace) -> Result<()> {
        let repo = workspace_repo(workspace)?;
        let parent = session
            .base_commit
            .clone()
            .or_else(|| session.workspace_commit.clone())
            .filter(|commit| !commit.is_empty())
            .ok_or_else(|| {
                Error::conflict("the session's base commit is unknown; rebase the session first")
            })?;
        let target = self.system_target(session).await?;
        self.run_agent_command(
            &target,
            session,
            "commit",
            &format!("/discobot-commit {parent}"),
        )
        .await?;
        let response = self
            .ports
            .agent
            .call(
                &target.endpoint,
                target.request(AgentMethod::Get, format!("/commits?parent={parent}"), None),
            )
            .await?;
        if response.status == 404 {
            return Err(Error::conflict("the session has no changes to commit"));
        }
        let body: CommitsResponse = serde_json::from_value(success_json(response)?)
            .map_err(|error| Error::bad_gateway(format!("unusable commits answer: {error}")))?;
        let bundle: ReplayBundle = serde_json::from_str(&body.replay_bundle)
            .map_err(|error| Error::bad_gateway(format!("unusable replay bundle: {error}")))?;
        let last_sandbox_commit = bundle.commits.last().map(|commit| commit.sha.clone());
        let outcome = self.ports.git.apply_replay(repo, &bundle).await?;
        self.ports
            .sessions
            .set_commit_refs(
                &session.id,
                &CommitRefs {
                    base_commit: last_sandbox_commit,
                    applied_commit: Some(outcome.head),
                    workspace_commit: None,
                },
                Utc::now(),
            )
            .await?;
        Ok(())
    }

    /// Has the agent rebase its work onto the host's HEAD; the session's base moves there.
    async fn rebase_work(&self, session: &Session, workspace: &Workspace) -> Result<()> {
        let repo = workspace_repo(workspace)?;
        let head = self.ports.git.git_status(repo).await?.commit;
        if head.is_empty() {
            return Err(Error::conflict(
                "the workspace has no commits to rebase onto",
            ));
        }
        let target = self.system_target(session).await?;
        self.run_agent_command(
            &target,
            session,
            "rebase",
            &format!("/discobot-rebase {head}"),
        )
        .await?;
        self.ports
            .sessions
            .set_commit_refs(
                &session.id,
                &CommitRefs {
                    base_commit: Some(head.clone()),
                    applied_commit: None,
                    workspace_commit: Some(head),
                },
                Utc::now(),
            )
            .await?;
        Ok(())
    }

    /// The agent of a session for a background job (no user is asking: the session's own
    /// project is the access).
    async fn system_target(&self, session: &Session) -> Result<AgentTarget> {
        let target = self
            .agent_target(&ProjectAccess::system(&session.project_id), &session.id)
            .await?;
        Ok(self.with_git_identity(target).await)
    }

    /// Sends `text` as a user message on the session's primary thread (after its current
    /// branch) and waits until the turn it starts has ended; an `error` or `abort` chunk of
    /// that turn is the command's failure.
    async fn run_agent_command(
        &self,
        target: &AgentTarget,
        session: &Session,
        kind: &str,
        text: &str,
    ) -> Result<()> {
        let thread = session.id.as_str();
        // The stream is open before the message is sent, so the turn cannot slip by.
        let mut stream = self
            .ports
            .agent
            .open_stream(
                &target.endpoint,
                target.request(
                    AgentMethod::Get,
                    format!("/threads/{thread}/chat/stream"),
                    None,
                ),
            )
            .await?;
        let history = self
            .ports
            .agent
            .call(
                &target.endpoint,
                target.request(
                    AgentMethod::Get,
                    format!("/threads/{thread}/messages"),
                    None,
                ),
            )
            .await?;
        let mut messages = match success_json(history) {
            Ok(Value::Object(mut body)) => match body.remove("messages") {
                Some(Value::Array(messages)) => messages,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        let message_id = format!("{thread}-{kind}-{}", uuid::Uuid::now_v7().simple());
        messages.push(json!({
            "id": message_id,
            "role": "user",
            "parts": [{"type": "text", "text": text}],
        }));
        let started = self
            .ports
            .agent
            .call(
                &target.endpoint,
                target.request(
                    AgentMethod::Post,
                    format!("/threads/{thread}/chat"),
                    Some(json!({"messages": messages})),
                ),
            )
            .await?;
        success_json(started)?;

        let deadline = Utc::now() + COMMAND_TIMEOUT;
        let mut completion: Option<String> = None;
        let mut failure: Option<String> = None;
        loop {
            if Utc::now() >= deadline {
                return Err(Error::bad_gateway(format!(
                    "the agent did not finish the {kind} in time"
                )));
            }
            // A stream that breaks off is tolerated: the turn goes on in the agent, whose
            // status says when it is over; what it did shows in `GET /commits`.
            let Some(Ok(frame)) = stream.next_frame().await else {
                drop(stream);
                return self.wait_until_idle(target, thread, kind, deadline).await;
            };
            if frame.event.as_deref() != Some("chunk") {
                continue;
            }
            let Ok(chunk) = serde_json::from_str::<Value>(&frame.data) else {
                continue;
            };
            let frame_completion = frame
                .id
                .as_deref()
                .and_then(|id| id.rsplit_once(':'))
                .map(|(completion, _)| completion.to_owned());
            match chunk["type"].as_str() {
                Some("data-user-message")
                    if chunk["data"]["message"]["id"] == message_id.as_str() =>
                {
                    completion = frame_completion;
                }
                Some("error") if completion.is_some() && frame_completion == completion => {
                    failure = Some(chunk["errorText"].as_str().unwrap_or("failed").to_owned());
                }
                Some("abort") if completion.is_some() && frame_completion == completion => {
                    failure = Some(format!("the {kind} was cancelled"));
                }
                Some("data-completion-status")
                    if completion.is_some()
                        && chunk["data"]["completionId"].as_str() == completion.as_deref()
                        && chunk["data"]["isRunning"] == false =>
                {
                    return match failure {
                        Some(message) => Err(Error::conflict(message)),
                        None => Ok(()),
                    };
                }
                _ => {}
            }
        }
    }

    /// Polls the thread's chat status until no turn runs.
    async fn wait_until_idle(
        &self,
        target: &AgentTarget,
        thread: &str,
        kind: &str,
        deadline: chrono::DateTime<Utc>,
    ) -> Result<()> {
        loop {
            let status = self
                .ports
                .agent
                .call(
                    &target.endpoint,
                    target.request(
                        AgentMethod::Get,
                        format!("/threads/{thread}/chat/status"),
                        None,
                    ),
                )
                .await
                .and_then(success_json);
            if let Ok(status) = status
                && status["isRunning"] == false
            {
                return Ok(());
            }
            if Utc::now() >= deadline {
                return Err(Error::bad_gateway(format!(
                    "the agent did not finish the {kind} in time"
                )));
            }
            self.ports.sleeper.sleep(Duration::from_millis(500)).await;
        }
    }

    /// Records the end of an operation: `completed`, or `failed` with the error.
    async fn finish_operation(&self, session: &Session, outcome: std::result::Result<(), String>) {
        let (status, error) = match &outcome {
            Ok(()) => (CommitStatus::Completed, None),
            Err(message) => (CommitStatus::Failed, Some(message.as_str())),
        };
        if let Err(store_error) = self
            .ports
            .sessions
            .set_commit_status(&session.id, Some(status), error, Utc::now())
            .await
        {
            tracing::error!(session.id = %session.id, %store_error, "failed to record a commit outcome");
        }
        if let Err(message) = &outcome {
            tracing::warn!(session.id = %session.id, error = %message, "session commit operation failed");
        }
        self.publish_commit_status(session, Some(status)).await;
    }

    async fn publish_commit_status(&self, session: &Session, status: Option<CommitStatus>) {
        self.publish(
            &session.project_id,
            EventPayload::SessionUpdated {
                session_id: session.id.clone(),
                status: String::new(),
                commit_status: status.map(|status| status.as_str().to_owned()),
            },
        )
        .await;
    }
}

/// The host repository of a workspace.
fn workspace_repo(workspace: &Workspace) -> Result<&Path> {
    workspace
        .work_dir
        .as_deref()
        .filter(|dir| !dir.is_empty())
        .map(Path::new)
        .ok_or_else(|| Error::new(ErrorKind::Conflict, "the workspace has no folder yet"))
}
