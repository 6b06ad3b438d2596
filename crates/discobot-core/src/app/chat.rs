//! Chat, threads, files, diff and models of a session: the use cases behind the routes
//! that the server forwards to the session's agent (one method per route).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::agent::{agent_error_text, check_relative_path, check_segment, encode};
use super::{App, ProjectAccess};
use crate::credentials::{CREDENTIAL_TYPES, PROVIDERS};
use crate::error::{Error, ErrorKind, Result};
use crate::events::EventPayload;
use crate::ids::SessionId;
use crate::jobs::{Job, JobType};
use crate::model::{ChatSettings, CommitStatus, PromptSubmission, Session, SubmissionStatus};
use crate::ports::{AgentEventStream, AgentMethod, JobRun, SseFrame};
use sha2::{Digest, Sha256};

/// Longest session name taken from a first message.
const MAX_NAME_CHARS: usize = 100;

/// A chat message as the browser sent it.
#[derive(Clone, Debug, Default)]
pub struct ChatInput {
    /// UI messages, raw JSON.
    pub messages: Vec<Value>,
    pub model: Option<String>,
    pub reasoning: Option<String>,
    pub mode: Option<String>,
    /// The workspace of a session created by this message.
    pub workspace_id: Option<String>,
}

/// What `chat` did.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatStarted {
    pub workspace_id: String,
    pub session_id: String,
    pub thread_id: String,
    /// The recorded prompt (see `PromptSubmission`).
    pub submission_id: Option<String>,
    pub message_id: Option<String>,
    pub completion_id: Option<String>,
    /// `started` or `queued`; `None` when there was nothing to send.
    pub status: Option<String>,
    pub queued_prompt_id: Option<String>,
}

/// A file read for the client.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionFileRead {
    /// The agent's answer `{path, content, encoding, size}`.
    Agent(Value),
    /// Bytes from the host workspace at the session's base commit.
    Base(Vec<u8>),
}

/// One item of a relayed chat stream.
#[derive(Clone, Debug, PartialEq)]
pub enum ChatStreamItem {
    Frame(SseFrame),
    /// Reading the agent's stream failed; the text of the final error frame. The stream is
    /// over after it.
    Failed(String),
}

/// A session thread's live chat stream from its agent, filtered (no `done` markers) and
/// observed (thread renames become `thread_updated`, reading keeps the sandbox from idling).
pub struct ChatStream {
    app: Arc<App>,
    inner: Box<dyn AgentEventStream>,
    session: Session,
    last_touch: DateTime<Utc>,
    done: bool,
    /// Whether `data-thread-update` chunks publish `thread_updated` (the SSE relay does, the
    /// `/ws` relay does not, as upstream).
    publish_thread_updates: bool,
}

impl ChatStream {
    /// The stream without `thread_updated` events (for the `/ws` relay).
    pub fn without_thread_events(mut self) -> Self {
        self.publish_thread_updates = false;
        self
    }

    /// The next frame to relay; `None` once the agent closed the stream.
    pub async fn next(&mut self) -> Option<ChatStreamItem> {
        loop {
            if self.done {
                return None;
            }
            let frame = match self.inner.next_frame().await {
                None => {
                    self.done = true;
                    return None;
                }
                Some(Err(error)) => {
                    self.done = true;
                    return Some(ChatStreamItem::Failed(format!(
                        "failed to read chat stream: {}",
                        error.message
                    )));
                }
                Some(Ok(frame)) => frame,
            };
            let now = Utc::now();
            if now - self.last_touch >= chrono::Duration::seconds(1) {
                self.app.touch_session(&self.session.id);
                self.last_touch = now;
            }
            if frame.event.as_deref() == Some("done") || frame.data == "[DONE]" {
                continue;
            }
            if self.publish_thread_updates
                && frame.event.as_deref() == Some("chunk")
                && frame.data.contains("data-thread-update")
            {
                // Field borrows only: the stream must stay `Send` without being `Sync`.
                thread_update(&self.app, &mut self.session, &frame.data).await;
            }
            return Some(ChatStreamItem::Frame(frame));
        }
    }
}

/// Publishes `thread_updated` for a `data-thread-update` chunk naming its thread, and keeps
/// the model, reasoning and mode it announces on the session.
async fn thread_update(app: &App, session: &mut Session, data: &str) {
    let Ok(chunk) = serde_json::from_str::<Value>(data) else {
        return;
    };
    if chunk["type"] != "data-thread-update" {
        return;
    }
    let thread = &chunk["data"]["thread"];
    let text = |key: &str| {
        thread[key]
            .as_str()
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    let announced = ChatSettings {
        model: text("model"),
        reasoning: text("reasoning"),
        mode: text("mode"),
    };
    app.remember_chat_settings(session, announced).await;
    let id = thread["id"].as_str().unwrap_or_default().trim();
    let name = thread["name"].as_str().unwrap_or_default().trim();
    if id.is_empty() || name.is_empty() {
        return;
    }
    app.publish(
        &session.project_id,
        EventPayload::ThreadUpdated {
            session_id: session.id.clone(),
            thread_id: id.to_owned(),
            name: Some(name.to_owned()),
        },
    )
    .await;
}

impl App {
    /// Sends a message to a thread, creating the session (and its workspace) when it is
    /// new. An empty message list only creates.
    pub async fn chat(
        &self,
        access: &ProjectAccess,
        raw_session_id: &str,
        thread_id: &str,
        input: ChatInput,
    ) -> Result<ChatStarted> {
        check_segment(thread_id, "threadId")?;
        let session_id = SessionId::parse(raw_session_id.trim())?;
        let session = match self.ports.sessions.get_session(&session_id).await? {
            Some(session) => {
                if session.project_id != access.project_id {
                    return Err(Error::forbidden("session does not belong to this project"));
                }
                if !input.messages.is_empty()
                    && matches!(
                        session.commit_status,
                        Some(CommitStatus::Pending | CommitStatus::Committing)
                    )
                {
                    return Err(Error::conflict(
                        "Cannot send messages while session is committing",
                    ));
                }
                session
            }
            None => {
                self.create_session(access, session_id.as_str(), input.workspace_id.as_deref())
                    .await?
            }
        };
        let mut started = ChatStarted {
            workspace_id: session.workspace_id.to_string(),
            session_id: session.id.to_string(),
            thread_id: thread_id.to_owned(),
            submission_id: None,
            message_id: None,
            completion_id: None,
            status: None,
            queued_prompt_id: None,
        };
        if input.messages.is_empty() {
            return Ok(started);
        }
        started.message_id = input
            .messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["id"].as_str())
            .map(str::to_owned);
        self.name_session(&session, &input.messages).await;
        let mut submission = self
            .record_submission(&session, thread_id, &input, &started)
            .await?;
        started.submission_id = Some(submission.id.clone());
        if submission.status == SubmissionStatus::Accepted {
            // The same prompt again (a client retry): the recorded answer, no second turn.
            started.completion_id = submission.completion_id.clone();
            started.status = submission.result_status.clone();
            started.queued_prompt_id = submission.queued_prompt_id.clone();
            return Ok(started);
        }
        let sent = self
            .deliver(access, &session, &mut submission, &input)
            .await;
        if let Err(error) = &sent
            && error.kind != ErrorKind::Conflict
        {
            // Not delivered (the sandbox is restarting, the agent did not answer): a job
            // tries again in the background; the client hears of the failure now.
            let retry = self
                .enqueue(
                    JobType::PromptDispatch,
                    &submission.id,
                    json!({
                        "projectId": session.project_id.as_str(),
                        "sessionId": session.id.as_str(),
                        "submissionId": submission.id,
                    }),
                    Some(Utc::now() + chrono::Duration::seconds(5)),
                )
                .await;
            if let Err(error) = retry {
                tracing::warn!(session.id = %session.id, %error, "failed to queue a prompt's delivery");
            }
        }
        match sent {
            Ok(_) => {
                started.completion_id = submission.completion_id.clone();
                started.status = submission.result_status.clone();
                started.queued_prompt_id = submission.queued_prompt_id.clone();
                Ok(started)
            }
            Err(error) if error.kind == ErrorKind::Conflict => Err(error),
            Err(error) => {
                let message = error.message;
                self.chat_failed(&session.id, &message).await;
                Err(Error::bad_gateway(message))
            }
        }
    }

    /// Sends a recorded prompt to the agent and records the outcome: accepted (with the
    /// agent's answer; the sealed payload is dropped), failed (the agent refused it: a
    /// turn-state conflict) or still pending (not delivered; the payload stays for a retry).
    async fn deliver(
        &self,
        access: &ProjectAccess,
        session: &Session,
        submission: &mut PromptSubmission,
        input: &ChatInput,
    ) -> Result<Value> {
        let sent = self
            .send_chat(access, session, &submission.thread_id, input)
            .await;
        submission.updated_at = Utc::now();
        match &sent {
            Ok(answer) => {
                submission.status = SubmissionStatus::Accepted;
                submission.completion_id = answer["completionId"].as_str().map(str::to_owned);
                submission.queued_prompt_id = answer["queuedPromptId"].as_str().map(str::to_owned);
                submission.result_status = Some(
                    answer["status"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .unwrap_or("started")
                        .to_owned(),
                );
                submission.error_message = None;
                submission.payload_sealed = None;
            }
            // Refused by the agent (a turn-state conflict): the client may send it again.
            Err(error) if error.kind == ErrorKind::Conflict => {
                submission.status = SubmissionStatus::Failed;
                submission.error_message = Some(error.message.clone());
                submission.payload_sealed = None;
            }
            Err(error) => submission.error_message = Some(error.message.clone()),
        }
        if let Err(error) = self.ports.submissions.update_submission(submission).await {
            tracing::warn!(session.id = %session.id, %error, "failed to record a prompt's outcome");
        }
        if sent.is_ok() {
            self.chat_succeeded(&session.id).await;
            let settings = ChatSettings {
                model: input.model.clone().filter(|v| !v.is_empty()),
                reasoning: input.reasoning.clone().filter(|v| !v.is_empty()),
                mode: input.mode.clone().filter(|v| !v.is_empty()),
            };
            let mut session = session.clone();
            self.remember_chat_settings(&mut session, settings).await;
        }
        sent
    }

    /// Runs a `prompt_dispatch` job: delivers a prompt the agent did not take when it was
    /// sent. Done when delivered, refused, or no longer pending; an error retries it.
    pub(crate) async fn run_prompt_dispatch(&self, job: &Job) -> Result<JobRun> {
        let id = job
            .payload
            .get("submissionId")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid("job payload lacks submissionId"))?;
        let Some(mut submission) = self.ports.submissions.get_submission(id).await? else {
            return Ok(JobRun::Done);
        };
        if submission.status != SubmissionStatus::Pending {
            return Ok(JobRun::Done);
        }
        let session = self
            .ports
            .sessions
            .get_session(&submission.session_id)
            .await?
            .filter(|session| !session.status.is_terminal());
        let payload = submission
            .payload_sealed
            .as_deref()
            .map(|sealed| self.config.sealer.open(sealed, submission.id.as_bytes()))
            .transpose()?
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
        let (Some(session), Some(payload)) = (session, payload) else {
            // The session is gone, or nothing is left to send: the prompt cannot arrive.
            submission.status = SubmissionStatus::Failed;
            submission.payload_sealed = None;
            submission.updated_at = Utc::now();
            self.ports
                .submissions
                .update_submission(&submission)
                .await?;
            return Ok(JobRun::Done);
        };
        let text = |key: &str| payload[key].as_str().map(str::to_owned);
        let input = ChatInput {
            messages: payload["messages"].as_array().cloned().unwrap_or_default(),
            model: text("model"),
            reasoning: text("reasoning"),
            mode: text("mode"),
            workspace_id: None,
        };
        let access = ProjectAccess::system(&session.project_id);
        match self
            .deliver(&access, &session, &mut submission, &input)
            .await
        {
            Ok(_) => Ok(JobRun::Done),
            Err(error) if error.kind == ErrorKind::Conflict => Ok(JobRun::Done),
            Err(error) => Err(error),
        }
    }

    /// Records the prompt under its key: the last user message's id, or a hash of the
    /// payload when there is none. The same key with another payload is refused.
    async fn record_submission(
        &self,
        session: &Session,
        thread_id: &str,
        input: &ChatInput,
        started: &ChatStarted,
    ) -> Result<PromptSubmission> {
        let payload = json!({
            "messages": input.messages,
            "model": input.model,
            "reasoning": input.reasoning,
            "mode": input.mode,
        });
        let hash = hex::encode(Sha256::digest(payload.to_string().as_bytes()));
        let key = started
            .message_id
            .clone()
            .unwrap_or_else(|| format!("generated-{hash}"));
        let now = Utc::now();
        let id = uuid::Uuid::new_v4().to_string();
        // The messages may hold anything the user typed: sealed like credentials.
        let payload_sealed = self
            .config
            .sealer
            .seal(payload.to_string().as_bytes(), id.as_bytes());
        let recorded = self
            .ports
            .submissions
            .insert_submission_if_absent(&PromptSubmission {
                id,
                project_id: session.project_id.clone(),
                session_id: session.id.clone(),
                thread_id: thread_id.to_owned(),
                client_message_id: key,
                payload_hash: hash.clone(),
                status: SubmissionStatus::Pending,
                completion_id: None,
                queued_prompt_id: None,
                result_status: None,
                error_message: None,
                payload_sealed: Some(payload_sealed),
                created_at: now,
                updated_at: now,
            })
            .await?;
        if recorded.payload_hash != hash {
            return Err(Error::bad_gateway(
                "prompt submission key reused with different payload",
            ));
        }
        Ok(recorded)
    }

    async fn send_chat(
        &self,
        access: &ProjectAccess,
        session: &Session,
        thread_id: &str,
        input: &ChatInput,
    ) -> Result<Value> {
        let target = self
            .with_git_identity(self.agent_target(access, &session.id).await?)
            .await;
        let mut body = json!({"messages": input.messages});
        for (key, value) in [
            ("model", &input.model),
            ("reasoning", &input.reasoning),
            ("mode", &input.mode),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                body[key] = json!(value);
            }
        }
        let response = self
            .ports
            .agent
            .call(
                &target.endpoint,
                target.request(
                    AgentMethod::Post,
                    format!("/threads/{}/chat", encode(thread_id)),
                    Some(body),
                ),
            )
            .await?;
        match response.status {
            200..=299 => Ok(response.body),
            409 => {
                // The client needs to know which turn it collided with, nothing more.
                let mut details = Map::new();
                if let Some(completion_id) = response.body["completionId"]
                    .as_str()
                    .filter(|id| !id.is_empty())
                {
                    details.insert("completionId".into(), json!(completion_id));
                }
                Err(Error::conflict(agent_error_text(&response.body)).with_details(details))
            }
            status => Err(Error::bad_gateway(format!(
                "sandbox returned status {status}: {}",
                agent_error_text(&response.body)
            ))),
        }
    }

    /// Stores chat settings that differ from the session's (and updates `session`).
    async fn remember_chat_settings(&self, session: &mut Session, settings: ChatSettings) {
        if !session.chat_settings.changed_by(&settings) {
            return;
        }
        match self
            .ports
            .sessions
            .set_chat_settings(&session.id, &settings, Utc::now())
            .await
        {
            Ok(_) => {
                let merged = &mut session.chat_settings;
                for (mine, theirs) in [
                    (&mut merged.model, settings.model),
                    (&mut merged.reasoning, settings.reasoning),
                    (&mut merged.mode, settings.mode),
                ] {
                    if theirs.is_some() {
                        *mine = theirs;
                    }
                }
            }
            Err(error) => {
                tracing::warn!(session.id = %session.id, %error, "failed to store chat settings")
            }
        }
    }

    /// Names an unnamed session after the first line of the first user message's text.
    async fn name_session(&self, session: &Session, messages: &[Value]) {
        if !session.name.trim().is_empty() {
            return;
        }
        let Some(name) = first_user_text(messages) else {
            return;
        };
        let mut named = session.clone();
        named.name = name;
        match self.ports.sessions.update_session_fields(&named).await {
            Ok(()) => {
                self.publish_session_status(&session.project_id, &session.id, session.status)
                    .await
            }
            Err(error) => {
                tracing::warn!(session.id = %session.id, %error, "failed to name session")
            }
        }
    }

    /// A delivered message clears the last chat error and a finished commit's state.
    async fn chat_succeeded(&self, id: &SessionId) {
        let Ok(Some(session)) = self.ports.sessions.get_session(id).await else {
            return;
        };
        let now = Utc::now();
        if session.error_message.is_some()
            && let Ok(true) = self
                .ports
                .sessions
                .set_session_status(id, session.status, None, false, now)
                .await
        {
            self.publish_session_status(&session.project_id, id, session.status)
                .await;
        }
        if matches!(
            session.commit_status,
            Some(CommitStatus::Completed | CommitStatus::Failed)
        ) && let Ok(true) = self
            .ports
            .sessions
            .set_commit_status(id, None, None, now)
            .await
        {
            self.publish(
                &session.project_id,
                EventPayload::SessionUpdated {
                    session_id: id.clone(),
                    status: String::new(),
                    commit_status: None,
                },
            )
            .await;
        }
    }

    async fn chat_failed(&self, id: &SessionId, message: &str) {
        let Ok(Some(session)) = self.ports.sessions.get_session(id).await else {
            return;
        };
        match self
            .ports
            .sessions
            .set_session_status(id, session.status, Some(message), false, Utc::now())
            .await
        {
            Ok(true) => {
                self.publish_session_status(&session.project_id, id, session.status)
                    .await
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(session.id = %id, %error, "failed to store chat error"),
        }
    }

    /// Opens the thread's live stream on the agent, resuming after `last_event_id`.
    pub async fn open_chat_stream(
        self: &Arc<Self>,
        access: &ProjectAccess,
        id: &SessionId,
        thread_id: &str,
        last_event_id: Option<String>,
    ) -> Result<ChatStream> {
        check_segment(thread_id, "threadId")?;
        let target = self.agent_target(access, id).await?;
        let mut request = target.request(
            AgentMethod::Get,
            format!("/threads/{}/chat/stream", encode(thread_id)),
            None,
        );
        request.last_event_id = last_event_id.filter(|id| !id.is_empty());
        let inner = self
            .ports
            .agent
            .open_stream(&target.endpoint, request)
            .await?;
        Ok(ChatStream {
            app: self.clone(),
            inner,
            session: target.session,
            last_touch: Utc::now(),
            done: false,
            publish_thread_updates: true,
        })
    }

    pub async fn cancel_chat(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        thread_id: &str,
    ) -> Result<Value> {
        check_segment(thread_id, "threadId")?;
        let path = format!("/threads/{}/chat/cancel", encode(thread_id));
        self.agent_json(access, id, AgentMethod::Post, path, None)
            .await
            .map_err(|error| match error.kind {
                ErrorKind::Conflict => Error::conflict("no active completion to cancel"),
                _ => error,
            })
    }

    pub async fn chat_question(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        thread_id: &str,
        question_id: &str,
    ) -> Result<Value> {
        check_segment(thread_id, "threadId")?;
        check_segment(question_id, "questionId")?;
        let path = format!(
            "/threads/{}/chat/question/{}",
            encode(thread_id),
            encode(question_id)
        );
        self.agent_json(access, id, AgentMethod::Get, path, None)
            .await
    }

    /// Answers the agent's question `question_id` (its tool-use id).
    pub async fn chat_answer(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        thread_id: &str,
        question_id: &str,
        answers: Value,
        credentials: Option<Value>,
    ) -> Result<Value> {
        check_segment(thread_id, "threadId")?;
        check_segment(question_id, "questionId")?;
        let mut body = json!({"answers": answers, "toolUseID": question_id});
        if let Some(credentials) = credentials {
            body["credentials"] = credentials;
        }
        let path = format!(
            "/threads/{}/chat/answer/{}",
            encode(thread_id),
            encode(question_id)
        );
        self.agent_json(access, id, AgentMethod::Post, path, Some(body))
            .await
    }

    pub async fn list_threads(&self, access: &ProjectAccess, id: &SessionId) -> Result<Value> {
        self.agent_json(access, id, AgentMethod::Get, "/threads".into(), None)
            .await
    }

    pub async fn create_thread(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        thread_id: &str,
        name: Option<&str>,
    ) -> Result<Value> {
        check_segment(thread_id, "id")?;
        let mut body = json!({"id": thread_id});
        if let Some(name) = name {
            body["name"] = json!(name);
        }
        self.agent_json(access, id, AgentMethod::Post, "/threads".into(), Some(body))
            .await
    }

    /// A thread; the session's first thread (its id is the session's) exists for the client
    /// before the agent stored it, as a pending placeholder.
    pub async fn get_thread(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        thread_id: &str,
    ) -> Result<Value> {
        check_segment(thread_id, "threadId")?;
        let path = format!("/threads/{}", encode(thread_id));
        match self
            .agent_json(access, id, AgentMethod::Get, path, None)
            .await
        {
            Err(error) if error.kind == ErrorKind::NotFound && thread_id == id.as_str() => {
                let session = self.get_session(access, id).await?;
                let name = session
                    .display_name
                    .filter(|n| !n.is_empty())
                    .unwrap_or(session.name);
                Ok(json!({"id": id.as_str(), "name": name, "mode": "", "pending": true}))
            }
            other => other,
        }
    }

    pub async fn update_thread(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        thread_id: &str,
        name: &str,
    ) -> Result<Value> {
        check_segment(thread_id, "threadId")?;
        if name.trim().is_empty() {
            return Err(Error::invalid("name is required"));
        }
        super::check_text(name, "name", 200)?;
        let path = format!("/threads/{}", encode(thread_id));
        self.agent_json(
            access,
            id,
            AgentMethod::Put,
            path,
            Some(json!({"name": name})),
        )
        .await
    }

    pub async fn delete_thread(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        thread_id: &str,
    ) -> Result<Value> {
        check_segment(thread_id, "threadId")?;
        let path = format!("/threads/{}", encode(thread_id));
        self.agent_json(access, id, AgentMethod::Delete, path, None)
            .await
    }

    pub async fn delete_queued_prompt(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        thread_id: &str,
        queue_id: &str,
    ) -> Result<Value> {
        check_segment(thread_id, "threadId")?;
        check_segment(queue_id, "queueId")?;
        let path = format!("/threads/{}/queue/{}", encode(thread_id), encode(queue_id));
        self.agent_json(access, id, AgentMethod::Delete, path, None)
            .await
    }

    /// The agent's models (`{id, name, provider, reasoning?, …}`), or the project's models
    /// when the agent cannot say.
    pub async fn session_models(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
    ) -> Result<Vec<Value>> {
        self.get_session(access, id).await?;
        let path = format!("/threads/{}/models", encode(id.as_str()));
        match self
            .agent_json(access, id, AgentMethod::Get, path, None)
            .await
        {
            Ok(answer) => Ok(answer["models"]
                .as_array()
                .into_iter()
                .flatten()
                .map(agent_model)
                .collect()),
            Err(error) => {
                tracing::debug!(session.id = %id, %error, "agent models unavailable; using the project's");
                Ok(self
                    .project_models(access)
                    .await?
                    .into_iter()
                    .map(|model| {
                        let mut value =
                            json!({"id": model.id, "name": model.name, "provider": model.provider});
                        if model.reasoning {
                            value["reasoning"] = json!(true);
                        }
                        value
                    })
                    .collect())
            }
        }
    }

    /// The credential providers the UI can offer, sorted by name.
    pub fn auth_providers(&self, _access: &ProjectAccess) -> Vec<Value> {
        let mut providers: Vec<Value> = PROVIDERS
            .iter()
            .map(|provider| {
                let credential_type = CREDENTIAL_TYPES.iter().find(|t| t.provider == provider.id);
                let category = credential_type.map_or(
                    if provider.id == "github-git" {
                        "vcs"
                    } else {
                        "llm"
                    },
                    |t| t.category,
                );
                let description = credential_type.map_or_else(
                    || format!("{} API access", provider.name),
                    |t| t.description.to_owned(),
                );
                let mut value = json!({
                    "id": provider.id,
                    "name": provider.name,
                    "description": description,
                    "env": provider.env,
                    "category": category,
                });
                if let Some(label) = credential_type.map(|t| t.secret_label) {
                    value["secretLabel"] = json!(label);
                }
                if matches!(provider.id, "anthropic" | "openai") {
                    value["icons"] = json!([{
                        "src": format!("https://models.dev/logos/{}.svg", provider.id),
                        "mimeType": "image/svg+xml",
                    }]);
                }
                value
            })
            .collect();
        providers.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        providers
    }

    pub async fn list_session_files(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        path: Option<&str>,
        hidden: bool,
    ) -> Result<Value> {
        let path = path.filter(|p| !p.is_empty()).unwrap_or(".");
        check_relative_path(path)?;
        let mut query = format!("/files?path={}", encode(path));
        if hidden {
            query.push_str("&hidden=true");
        }
        self.agent_json(access, id, AgentMethod::Get, query, None)
            .await
    }

    /// Fuzzy search; `limit` defaults to 50, is capped at 200, and a bad one counts as 50.
    pub async fn search_session_files(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        query: &str,
        limit: Option<&str>,
    ) -> Result<Value> {
        let limit = search_limit(limit);
        let path = format!("/files/search?q={}&limit={limit}", encode(query));
        self.agent_json(access, id, AgentMethod::Get, path, None)
            .await
    }

    /// A file of the session's workspace; `from_base` reads it from the host workspace at
    /// the session's base commit (its state before the session changed it).
    pub async fn read_session_file(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        path: &str,
        from_base: bool,
    ) -> Result<SessionFileRead> {
        if path.is_empty() {
            return Err(Error::invalid("path query parameter required"));
        }
        check_relative_path(path)?;
        if from_base {
            let session = self.get_session(access, id).await?;
            let workspace = self
                .ports
                .workspaces
                .get_workspace(&session.workspace_id)
                .await?
                .ok_or_else(|| Error::not_found("workspace not found"))?;
            let repo = workspace
                .work_dir
                .clone()
                .unwrap_or_else(|| workspace.path.clone());
            let reference = session
                .base_commit
                .clone()
                .or(session.workspace_commit.clone())
                .filter(|c| !c.is_empty());
            let bytes = self
                .ports
                .git
                .git_read_file(
                    std::path::Path::new(&repo),
                    path,
                    Some(reference.as_deref().unwrap_or("HEAD")),
                )
                .await?;
            return Ok(SessionFileRead::Base(bytes));
        }
        let query = format!("/files/read?path={}", encode(path));
        self.agent_json(access, id, AgentMethod::Get, query, None)
            .await
            .map(SessionFileRead::Agent)
    }

    pub async fn write_session_file(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        body: Value,
    ) -> Result<Value> {
        let path = body["path"].as_str().unwrap_or_default();
        if path.is_empty() {
            return Err(Error::invalid("path is required"));
        }
        check_relative_path(path)?;
        self.agent_json(
            access,
            id,
            AgentMethod::Post,
            "/files/write".into(),
            Some(body),
        )
        .await
    }

    pub async fn delete_session_file(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        path: &str,
    ) -> Result<Value> {
        if path.is_empty() {
            return Err(Error::invalid("path is required"));
        }
        check_relative_path(path)?;
        let body = json!({"path": path});
        self.agent_json(
            access,
            id,
            AgentMethod::Post,
            "/files/delete".into(),
            Some(body),
        )
        .await
    }

    pub async fn rename_session_file(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        old_path: &str,
        new_path: &str,
    ) -> Result<Value> {
        if old_path.is_empty() {
            return Err(Error::invalid("oldPath is required"));
        }
        if new_path.is_empty() {
            return Err(Error::invalid("newPath is required"));
        }
        check_relative_path(old_path)?;
        check_relative_path(new_path)?;
        let body = json!({"oldPath": old_path, "newPath": new_path});
        self.agent_json(
            access,
            id,
            AgentMethod::Post,
            "/files/rename".into(),
            Some(body),
        )
        .await
    }

    pub async fn session_diff(
        &self,
        access: &ProjectAccess,
        id: &SessionId,
        path: Option<&str>,
        format: Option<&str>,
    ) -> Result<Value> {
        let mut query = Vec::new();
        if let Some(path) = path.filter(|p| !p.is_empty()) {
            check_relative_path(path)?;
            query.push(format!("path={}", encode(path)));
        }
        if let Some(format) = format.filter(|f| !f.is_empty()) {
            query.push(format!("format={}", encode(format)));
        }
        let mut route = "/diff".to_owned();
        if !query.is_empty() {
            route.push('?');
            route.push_str(&query.join("&"));
        }
        self.agent_json(access, id, AgentMethod::Get, route, None)
            .await
    }
}

/// `limit` of a file search: default 50, capped at 200; invalid or ≤ 0 is 50.
pub(crate) fn search_limit(raw: Option<&str>) -> u32 {
    match raw.and_then(|raw| raw.trim().parse::<i64>().ok()) {
        Some(n) if n > 200 => 200,
        Some(n) if n > 0 => n as u32,
        _ => 50,
    }
}

/// The first line of the first user message's first text part, at most 100 characters.
fn first_user_text(messages: &[Value]) -> Option<String> {
    let message = messages.iter().find(|m| m["role"] == "user")?;
    let text = message["parts"]
        .as_array()?
        .iter()
        .filter(|part| part["type"] == "text")
        .find_map(|part| part["text"].as_str().filter(|t| !t.trim().is_empty()))?;
    let line = text.trim().lines().next()?.trim();
    let name: String = line.chars().take(MAX_NAME_CHARS).collect();
    (!name.is_empty()).then_some(name)
}

/// An agent model in the server's `Model` shape.
fn agent_model(model: &Value) -> Value {
    let mut value = json!({
        "id": model["id"],
        "name": model.get("display_name").or(model.get("name")).unwrap_or(&model["id"]),
        "provider": model["provider"],
    });
    if model["reasoning"] == true {
        value["reasoning"] = json!(true);
    }
    for key in ["reasoningLevels", "defaultReasoning"] {
        if let Some(field) = model.get(key).filter(|v| !v.is_null()) {
            value[key] = field.clone();
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_limit_rules() {
        assert_eq!(search_limit(None), 50);
        assert_eq!(search_limit(Some("10")), 10);
        assert_eq!(search_limit(Some("500")), 200);
        assert_eq!(search_limit(Some("0")), 50);
        assert_eq!(search_limit(Some("-3")), 50);
        assert_eq!(search_limit(Some("many")), 50);
    }

    #[test]
    fn session_name_from_first_user_text() {
        let messages = vec![
            json!({"role": "assistant", "parts": [{"type": "text", "text": "hi"}]}),
            json!({"role": "user", "parts": [
                {"type": "file", "url": "x"},
                {"type": "text", "text": "  Fix the build\nsecond line"},
            ]}),
        ];
        assert_eq!(first_user_text(&messages).as_deref(), Some("Fix the build"));
        let long =
            vec![json!({"role": "user", "parts": [{"type": "text", "text": "é".repeat(150)}]})];
        assert_eq!(first_user_text(&long).unwrap().chars().count(), 100);
        assert_eq!(
            first_user_text(&[json!({"role": "user", "parts": []})]),
            None
        );
    }

    #[test]
    fn agent_models_take_the_display_name() {
        let model = agent_model(&json!({
            "id": "anthropic/claude", "display_name": "Claude", "provider": "anthropic",
            "reasoning": true, "created_at": 1, "type": "model",
        }));
        assert_eq!(
            model,
            json!({"id": "anthropic/claude", "name": "Claude", "provider": "anthropic", "reasoning": true})
        );
    }
}
