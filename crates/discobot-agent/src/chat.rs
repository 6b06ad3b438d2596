//! The chat runtime: one [`Hub`] per thread holds its completions (the replay cache of their
//! chunks), runs one turn at a time, queues the prompts sent meanwhile, and wakes the streams.
//!
//! Ordering invariant: a completion's end (assistant message written, leaf moved, marker
//! removed, `done` set, `running` cleared) happens under the hub lock, and so does a stream's
//! snapshot of history plus its starting cursor, so a new stream sees each turn exactly once:
//! either in the history or as chunks.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use discobot_agent_api::{
    ChatRequest, ChatStartResponse, CoreChunk, Mode, QueuedPrompt, Role, ThreadState, UiChunk,
    UiMessage,
};
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::credentials::Credentials;
use crate::history::to_model_messages;
use crate::model::{FinishReason, ModelClient, ModelEvent, ModelRequest};
use crate::store::{ActiveTurn, StoreError, StoredMessage, ThreadStore, valid_id};
use crate::tools::{self, ThreadTools, ToolContext};

/// Completions kept in memory per thread for resuming streams.
const KEPT_COMPLETIONS: usize = 32;
/// User messages starting with these run a git operation instead of a model turn.
const SLASH_COMMANDS: [&str; 2] = ["/discobot-commit ", "/discobot-rebase "];
/// Model calls per turn at most: a model that keeps calling tools is stopped here.
const MAX_STEPS: usize = 100;

/// Why a chat request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("{0}")]
    BadRequest(String),
    /// The thread has an interrupted turn; its resume was started as this completion.
    #[error("interrupted_turn_requires_resume")]
    InterruptedTurn(String),
    /// An `AskUserQuestion` (this id) waits for its answer.
    #[error("pending_question_requires_answer")]
    PendingQuestion(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One completion: its chunks (JSON text, index = offset) and whether it has ended.
#[derive(Debug)]
pub struct Completion {
    pub id: String,
    /// Position in the thread's sequence of completions in this process.
    pub seq: u64,
    /// The leaf before the turn: history shown to a new stream while this completion runs.
    pub pre_turn_leaf: Option<String>,
    chunks: Mutex<Vec<Arc<str>>>,
    done: AtomicBool,
    cancel: CancellationToken,
}

impl Completion {
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Default)]
struct HubInner {
    completions: VecDeque<Arc<Completion>>,
    next_seq: u64,
    running: Option<Arc<Completion>>,
}

/// Where a stream is: the next chunk to send is `offset` of completion `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub seq: u64,
    pub offset: usize,
}

/// A chunk to send: `id` is `{completionId}:{offset}`, `None` for the ephemeral
/// `data-completion-status` chunks that frame each completion on a stream.
#[derive(Debug, Clone)]
pub struct ChunkEvent {
    pub id: Option<String>,
    pub json: Arc<str>,
}

/// What a new stream starts with.
#[derive(Debug)]
pub struct StreamStart {
    /// `None` when resuming after a known event id (no history replay).
    pub history: Option<Vec<UiMessage>>,
    pub cursor: Cursor,
}

/// One thread's runtime.
#[derive(Debug)]
pub struct Hub {
    thread_id: String,
    inner: Mutex<HubInner>,
    changed: watch::Sender<u64>,
    /// Set when the thread is deleted: its streams end, and a turn still winding down writes
    /// nothing more (a new thread of the same id may exist by then).
    closed: AtomicBool,
    /// The tools' per-thread state (Bash cwd, files read, the pending question).
    tools: ThreadTools,
}

impl Hub {
    fn new(thread_id: &str) -> Self {
        Self {
            thread_id: thread_id.to_owned(),
            inner: Mutex::new(HubInner::default()),
            changed: watch::Sender::new(0),
            closed: AtomicBool::new(false),
            tools: ThreadTools::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        self.changed.send_modify(|version| *version += 1);
    }

    /// A receiver that sees every change after this call.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The running completion, if any.
    pub fn running(&self) -> Option<Arc<Completion>> {
        self.lock().running.clone()
    }

    /// Whether the thread was deleted: streams end.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// The chunks after `cursor` (across finished completions into later ones), advancing it.
    /// A completion entered at offset 0 is preceded by `data-completion-status` with
    /// `isRunning: true`; a finished one is followed by one with `isRunning: false`.
    pub fn read(&self, cursor: &mut Cursor) -> Vec<ChunkEvent> {
        let inner = self.lock();
        let mut events = Vec::new();
        loop {
            let Some(front) = inner.completions.front() else {
                return events;
            };
            if cursor.seq < front.seq {
                tracing::warn!(thread = %self.thread_id, "stream fell behind the replay cache");
                *cursor = Cursor {
                    seq: front.seq,
                    offset: 0,
                };
            }
            let Some(completion) = inner.completions.iter().find(|c| c.seq == cursor.seq) else {
                return events;
            };
            // `done` is read before the chunks: once done, no chunk follows.
            let done = completion.is_done();
            let chunks = completion
                .chunks
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if cursor.offset == 0 && !chunks.is_empty() {
                events.push(self.status(&completion.id, true));
            }
            for (offset, json) in chunks.iter().enumerate().skip(cursor.offset) {
                events.push(ChunkEvent {
                    id: Some(format!("{}:{offset}", completion.id)),
                    json: json.clone(),
                });
            }
            cursor.offset = cursor.offset.max(chunks.len());
            if !done {
                return events;
            }
            events.push(self.status(&completion.id, false));
            *cursor = Cursor {
                seq: cursor.seq + 1,
                offset: 0,
            };
        }
    }
}

impl Hub {
    fn status(&self, completion_id: &str, is_running: bool) -> ChunkEvent {
        let chunk = UiChunk::data(
            "completion-status",
            json!({"threadId": self.thread_id, "completionId": completion_id, "isRunning": is_running}),
        );
        ChunkEvent {
            id: None,
            json: serde_json::to_string(&chunk).unwrap_or_default().into(),
        }
    }
}

/// Every thread's hub, the store, the model, the working dir the tools work in, and the
/// credentials the turns use.
#[derive(Debug)]
pub struct Chat {
    store: Arc<ThreadStore>,
    model: Arc<dyn ModelClient>,
    work_dir: PathBuf,
    credentials: Credentials,
    hubs: Mutex<HashMap<String, Arc<Hub>>>,
}

impl Chat {
    pub fn new(
        store: Arc<ThreadStore>,
        model: Arc<dyn ModelClient>,
        work_dir: PathBuf,
        credentials: Credentials,
    ) -> Self {
        Self {
            store,
            model,
            work_dir,
            credentials,
            hubs: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &ThreadStore {
        &self.store
    }

    /// The thread's hub, created on first use.
    pub fn hub(&self, thread_id: &str) -> Arc<Hub> {
        self.hubs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(thread_id.to_owned())
            .or_insert_with(|| Arc::new(Hub::new(thread_id)))
            .clone()
    }

    /// Deletes a thread: cancels its turn, ends its streams, removes its files.
    pub fn delete(&self, thread_id: &str) -> Result<(), StoreError> {
        self.store.get(thread_id)?;
        let hub = self
            .hubs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(thread_id);
        if let Some(hub) = hub {
            let inner = hub.lock();
            hub.closed.store(true, Ordering::SeqCst);
            if let Some(running) = &inner.running {
                running.cancel.cancel();
            }
            drop(inner);
            hub.notify();
        }
        self.store.delete(thread_id)
    }

    /// `POST /threads/{id}/chat`: starts a turn, or queues the prompt when one runs.
    pub fn start(
        self: &Arc<Self>,
        thread_id: &str,
        request: ChatRequest,
    ) -> Result<ChatStartResponse, ChatError> {
        if !valid_id(thread_id) {
            return Err(ChatError::BadRequest("invalid thread id".into()));
        }
        let last_assistant = request
            .messages
            .iter()
            .rposition(|message| message.role == Role::Assistant);
        let after = last_assistant.map_or(0, |index| index + 1);
        let Some(user) = request.messages[after..]
            .iter()
            .rev()
            .find(|message| message.role == Role::User)
            .cloned()
        else {
            return Err(ChatError::BadRequest(
                "no user message found after the last assistant message".into(),
            ));
        };
        if !valid_id(&user.id) {
            return Err(ChatError::BadRequest("invalid message id".into()));
        }
        let branch = last_assistant.map(|index| request.messages[index].id.clone());
        if branch.as_deref().is_some_and(str::is_empty) {
            return Err(ChatError::BadRequest(
                "last assistant message has no ID".into(),
            ));
        }
        if !self.store.exists(thread_id) {
            match self.store.create(thread_id, None) {
                Ok(_) | Err(StoreError::Exists) => {}
                Err(err) => return Err(err.into()),
            }
        }
        if let Some(leaf) = &branch
            && self.store.message(thread_id, leaf)?.is_none()
        {
            return Err(ChatError::BadRequest(format!(
                "message {leaf} is not a valid leaf of this thread"
            )));
        }
        let prompt = QueuedPrompt {
            id: uuid::Uuid::now_v7().to_string(),
            created_at: now(),
            message: user,
            model: request.model,
            reasoning: request.reasoning,
            mode: request.mode,
        };

        if let Some(completion_id) = self.resume(thread_id)? {
            return Err(ChatError::InterruptedTurn(completion_id));
        }
        let hub = self.hub(thread_id);
        if let Some(question) = hub.tools.questions.pending_id() {
            return Err(ChatError::PendingQuestion(question));
        }
        let mut inner = hub.lock();
        if let Some(running) = inner.running.clone() {
            let id = prompt.id.clone();
            let config = self
                .store
                .update(thread_id, |config| config.prompt_queue.push(prompt))?;
            push(
                &self.store,
                &hub,
                &running,
                &UiChunk::data("thread-update", json!({"thread": config.to_thread()})),
            );
            drop(inner);
            return Ok(ChatStartResponse::queued(id));
        }
        let completion = self.begin(&hub, &mut inner, prompt, branch)?;
        drop(inner);
        hub.notify();
        let id = completion.id.clone();
        tokio::spawn(self.clone().run_turns(hub, completion));
        Ok(ChatStartResponse::started(id))
    }

    /// Resumes the thread's interrupted turn, if it has one and nothing runs: a new completion
    /// for the same user message (same parent), announced on the stream like any turn. Returns
    /// its id; `None` when there is nothing to resume.
    pub fn resume(self: &Arc<Self>, thread_id: &str) -> Result<Option<String>, StoreError> {
        let hub = self.hub(thread_id);
        let mut inner = hub.lock();
        if inner.running.is_some()
            || self.store.get(thread_id)?.state != Some(ThreadState::Interrupted)
        {
            return Ok(None);
        }
        let user = match self.store.active_turn(thread_id)? {
            Some(turn) => self.store.message(thread_id, &turn.user_message_id)?,
            None => None,
        };
        let Some(user) = user else {
            // Nothing left to resume from: the thread simply is idle again.
            self.store.update(thread_id, |config| config.state = None)?;
            self.store.clear_active_turn(thread_id)?;
            return Ok(None);
        };
        tracing::info!(thread = %thread_id, message = %user.id, "resuming an interrupted turn");
        let prompt = QueuedPrompt {
            id: uuid::Uuid::now_v7().to_string(),
            created_at: now(),
            message: user.message,
            model: None,
            reasoning: None,
            mode: None,
        };
        let completion = self.begin(&hub, &mut inner, prompt, user.parent_id)?;
        drop(inner);
        hub.notify();
        let id = completion.id.clone();
        tokio::spawn(self.clone().run_turns(hub, completion));
        Ok(Some(id))
    }

    /// `GET /threads/{id}/chat/question/{questionId}`: where the question stands.
    pub(crate) fn question(
        &self,
        thread_id: &str,
        question_id: &str,
    ) -> Result<tools::question::QuestionStatus, StoreError> {
        let thread_dir = self.store.thread_dir(thread_id)?;
        Ok(self
            .hub(thread_id)
            .tools
            .questions
            .status(&thread_dir, question_id))
    }

    /// `POST /threads/{id}/chat/answer/{questionId}`: hands the answers to the waiting tool,
    /// which resumes the turn; `false` when that question is not pending.
    pub(crate) fn answer(
        &self,
        thread_id: &str,
        question_id: &str,
        answers: HashMap<String, String>,
    ) -> Result<bool, StoreError> {
        self.store.get(thread_id)?;
        Ok(self
            .hub(thread_id)
            .tools
            .questions
            .answer(question_id, answers))
    }

    /// `POST /threads/{id}/chat/cancel`: the cancelled completion's id, `None` if none runs.
    pub fn cancel(&self, thread_id: &str) -> Option<String> {
        let running = self.hub(thread_id).running()?;
        running.cancel.cancel();
        Some(running.id.clone())
    }

    /// Starts a turn under the hub lock: user message, thread config, marker, completion.
    fn begin(
        &self,
        hub: &Hub,
        inner: &mut HubInner,
        prompt: QueuedPrompt,
        parent: Option<String>,
    ) -> Result<Arc<Completion>, StoreError> {
        let thread_id = &hub.thread_id;
        let user = prompt.message;
        self.store.put_message(
            thread_id,
            &StoredMessage {
                id: user.id.clone(),
                parent_id: parent.clone(),
                message: user.clone(),
            },
        )?;
        let text = user.plain_text();
        self.store.update(thread_id, |config| {
            if config.name.is_empty() {
                config.name = title(&text);
            }
            config.last_message = Some(title(&text));
            if prompt.model.is_some() {
                config.model = prompt.model;
            }
            if prompt.reasoning.is_some() {
                config.reasoning = prompt.reasoning;
            }
            if let Some(mode) = prompt.mode {
                config.mode = mode;
            }
            config.state = None;
            config.error_message = None;
        })?;
        let completion = Arc::new(Completion {
            id: uuid::Uuid::now_v7().to_string(),
            seq: inner.next_seq,
            pre_turn_leaf: parent,
            chunks: Mutex::new(Vec::new()),
            done: AtomicBool::new(false),
            cancel: CancellationToken::new(),
        });
        self.store.set_active_turn(
            thread_id,
            &ActiveTurn {
                completion_id: completion.id.clone(),
                user_message_id: user.id.clone(),
                assistant_message_id: format!("{}-assistant", completion.id),
                started_at: now(),
            },
        )?;
        inner.next_seq += 1;
        inner.running = Some(completion.clone());
        inner.completions.push_back(completion.clone());
        while inner.completions.len() > KEPT_COMPLETIONS {
            inner.completions.pop_front();
        }
        // The user message reaches live streams as the first chunk of the turn.
        push(
            &self.store,
            hub,
            &completion,
            &UiChunk::data("user-message", json!({"message": user})),
        );
        Ok(completion)
    }

    /// Runs `first`, then every queued prompt, one after the other.
    async fn run_turns(self: Arc<Self>, hub: Arc<Hub>, first: Arc<Completion>) {
        let mut completion = first;
        loop {
            // A bug in a tool or a client must not leave the thread running forever: a
            // panicking turn ends as failed like any other.
            let outcome = std::panic::AssertUnwindSafe(self.run(&hub, &completion))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    let message = "the agent failed on this turn (internal error)".to_owned();
                    tracing::error!(thread = %hub.thread_id, "a turn panicked");
                    push(
                        &self.store,
                        &hub,
                        &completion,
                        &CoreChunk::Error {
                            error_text: message.clone(),
                        }
                        .into(),
                    );
                    TurnOutcome {
                        assistant: UiMessage {
                            id: format!("{}-assistant", completion.id),
                            role: Role::Assistant,
                            parts: vec![json!({"type": "step-start"})],
                            metadata: None,
                            created_at: Some(now()),
                        },
                        end: TurnEnd::Failed(message),
                    }
                });
            match self.finish(&hub, &completion, outcome) {
                Some(next) => completion = next,
                None => return,
            }
        }
    }

    /// Runs one turn: a slash command, or the tool loop (model call, tool calls, again until
    /// the model stops); returns the assistant message and how the turn ended.
    async fn run(&self, hub: &Hub, completion: &Arc<Completion>) -> TurnOutcome {
        let thread_id = &hub.thread_id;
        let config = self.store.get(thread_id).ok();
        let leaf = self
            .store
            .active_turn(thread_id)
            .ok()
            .flatten()
            .map(|turn| turn.user_message_id);
        let history = self
            .store
            .history(thread_id, leaf.as_deref())
            .unwrap_or_default();
        let model = config.and_then(|config| config.model);
        let assistant_id = format!("{}-assistant", completion.id);
        let emit = |chunk: UiChunk| push(&self.store, hub, completion, &chunk);
        emit(
            CoreChunk::Start {
                message_id: Some(assistant_id.clone()),
                message_metadata: Some(match &model {
                    Some(model) => json!({"model": model, "startedAt": now()}),
                    None => json!({"startedAt": now()}),
                }),
            }
            .into(),
        );
        let mut turn = Turn::new(&emit);
        let end = match self.slash_command(&history, &mut turn).await {
            Some(end) => end,
            None => self.steps(hub, completion, &history, &mut turn).await,
        };
        match &end {
            TurnEnd::Finished(reason) => emit(
                CoreChunk::Finish {
                    finish_reason: Some(reason.clone()),
                    message_metadata: None,
                }
                .into(),
            ),
            TurnEnd::Cancelled => emit(
                CoreChunk::Abort {
                    reason: Some("cancelled".to_owned()),
                }
                .into(),
            ),
            TurnEnd::Failed(message) => emit(
                CoreChunk::Error {
                    error_text: message.clone(),
                }
                .into(),
            ),
        }
        TurnOutcome {
            assistant: UiMessage {
                id: assistant_id,
                role: Role::Assistant,
                parts: turn.parts,
                metadata: None,
                created_at: Some(now()),
            },
            end,
        }
    }

    /// The server's git operations arrive as user messages (`/discobot-commit <sha>`,
    /// `/discobot-rebase <sha>`): they run without the model, their report is the answer's
    /// text. `None` for every other message.
    async fn slash_command(&self, history: &[UiMessage], turn: &mut Turn<'_>) -> Option<TurnEnd> {
        let text = history
            .last()
            .filter(|m| m.role == Role::User)?
            .plain_text();
        if !SLASH_COMMANDS.iter().any(|prefix| text.starts_with(prefix)) {
            return None;
        }
        // What the user last asked for (not a command): the subject of a commit of their work.
        let request = history
            .iter()
            .rev()
            .skip(1)
            .filter(|message| message.role == Role::User)
            .map(UiMessage::plain_text)
            .find(|text| !text.trim_start().starts_with('/') && !text.trim().is_empty());
        let result =
            crate::commands::slash_command(&self.work_dir, &text, request.as_deref()).await?;
        turn.start_step();
        Some(match result {
            Ok(report) => {
                turn.text(report);
                turn.close_block();
                turn.finish_step();
                TurnEnd::Finished(FinishReason::Stop.as_str().to_owned())
            }
            Err(message) => TurnEnd::Failed(message),
        })
    }

    /// The steps of a turn: each is `start-step`, one model call streamed into chunks, the
    /// tool calls it asked for, `finish-step`.
    async fn steps(
        &self,
        hub: &Hub,
        completion: &Completion,
        history: &[UiMessage],
        turn: &mut Turn<'_>,
    ) -> TurnEnd {
        let thread_id = &hub.thread_id;
        let thread_dir = match self.store.thread_dir(thread_id) {
            Ok(dir) => dir,
            Err(err) => return TurnEnd::Failed(err.to_string()),
        };
        let (credentials, tool_env) = self.credentials();
        let message_id = format!("{}-assistant", completion.id);
        let mut finish_reason = FinishReason::Stop;
        for _ in 0..MAX_STEPS {
            turn.start_step();
            let config = match self.store.get(thread_id) {
                Ok(config) => config,
                Err(err) => return TurnEnd::Failed(err.to_string()),
            };
            let mut messages = to_model_messages(history);
            messages.extend(to_model_messages(&[turn.message()]));
            let mut events = self.model.stream(ModelRequest {
                model: config.model,
                reasoning: config.reasoning,
                system: system_prompt(&self.work_dir, config.mode, &tools::plan_file(&thread_dir)),
                messages,
                tools: tools::specs(),
                credentials: credentials.clone(),
            });
            let mut calls = Vec::new();
            let step_end = loop {
                let event = tokio::select! {
                    () = completion.cancel.cancelled() => break Err(TurnEnd::Cancelled),
                    event = events.next() => event,
                };
                match event {
                    Some(Ok(ModelEvent::TextDelta(delta))) => turn.text(delta),
                    Some(Ok(ModelEvent::ReasoningDelta(delta))) => turn.reasoning(delta),
                    Some(Ok(ModelEvent::ReasoningSignature(signature))) => {
                        turn.signature(signature);
                    }
                    Some(Ok(ModelEvent::ToolCallStart { id, name })) => turn.tool_start(&id, &name),
                    Some(Ok(ModelEvent::ToolCallDelta { id, delta })) => {
                        turn.tool_delta(&id, delta)
                    }
                    Some(Ok(ModelEvent::ToolCall { id, name, input })) => {
                        turn.tool_call(&id, &name, input.clone());
                        calls.push((id, name, input));
                    }
                    Some(Ok(ModelEvent::Finish { reason })) => break Ok(reason),
                    Some(Err(err)) => break Err(TurnEnd::Failed(err.0)),
                    None => break Ok(FinishReason::Stop),
                }
            };
            // Dropping the stream stops the request (cancel, or a finished answer).
            drop(events);
            turn.close_block();
            finish_reason = match step_end {
                Ok(reason) => reason,
                Err(end) => return end,
            };
            if calls.is_empty() {
                turn.finish_step();
                return TurnEnd::Finished(finish_reason.as_str().to_owned());
            }
            for (id, name, input) in calls {
                let context = ToolContext {
                    thread_id,
                    message_id: &message_id,
                    tool_call_id: &id,
                    work_dir: &self.work_dir,
                    thread_dir: &thread_dir,
                    tools: &hub.tools,
                    store: &self.store,
                    env: &tool_env,
                    cancel: &completion.cancel,
                    emit: turn.emit,
                };
                // Dropping a running tool on cancel kills what it started (Bash's process
                // group) and ends a question's wait.
                let result = tokio::select! {
                    result = tools::run(&context, &name, input) => result,
                    () = completion.cancel.cancelled() => Err("Cancelled by the user".to_owned()),
                };
                turn.tool_result(&id, result);
                if completion.cancel.is_cancelled() {
                    return TurnEnd::Cancelled;
                }
            }
            turn.finish_step();
        }
        tracing::warn!(thread = %thread_id, "turn stopped after {MAX_STEPS} model calls");
        TurnEnd::Finished(finish_reason.as_str().to_owned())
    }

    /// The model's credentials (all of them) and the env vars tools may see (the
    /// `agentVisible` ones), from the latest header; memory only.
    fn credentials(&self) -> (Arc<HashMap<String, String>>, HashMap<String, String>) {
        let snapshot = self.credentials.snapshot();
        (Arc::new(snapshot.all_env()), snapshot.agent_visible_env())
    }

    /// Ends `completion` atomically (see the module docs) and begins the next queued prompt.
    fn finish(
        &self,
        hub: &Hub,
        completion: &Arc<Completion>,
        outcome: TurnOutcome,
    ) -> Option<Arc<Completion>> {
        let thread_id = &hub.thread_id;
        let mut inner = hub.lock();
        let record = || -> Result<Option<QueuedPrompt>, StoreError> {
            let user_id = self
                .store
                .active_turn(thread_id)?
                .map(|turn| turn.user_message_id);
            self.store.put_message(
                thread_id,
                &StoredMessage {
                    id: outcome.assistant.id.clone(),
                    parent_id: user_id,
                    message: outcome.assistant.clone(),
                },
            )?;
            let mut next = None;
            self.store.update(thread_id, |config| {
                config.leaf_id = Some(outcome.assistant.id.clone());
                match &outcome.end {
                    TurnEnd::Finished(_) => {}
                    TurnEnd::Cancelled => config.state = Some(ThreadState::Cancelled),
                    TurnEnd::Failed(message) => config.error_message = Some(message.clone()),
                }
                // Queued prompts run after a successful turn only; a cancelled or failed one
                // leaves them queued.
                if matches!(outcome.end, TurnEnd::Finished(_)) && !config.prompt_queue.is_empty() {
                    next = Some(config.prompt_queue.remove(0));
                }
            })?;
            self.store.clear_active_turn(thread_id)?;
            Ok(next)
        };
        let result = if hub.is_closed() { Ok(None) } else { record() };
        completion.done.store(true, Ordering::SeqCst);
        inner.running = None;
        let next = match result {
            Ok(next) => next,
            Err(err) => {
                tracing::error!(thread = %thread_id, %err, "could not record the end of a turn");
                None
            }
        };
        let started = next.and_then(|prompt| {
            let parent = Some(outcome.assistant.id.clone());
            self.begin(hub, &mut inner, prompt, parent)
                .inspect_err(|err| tracing::error!(thread = %thread_id, %err, "could not start a queued prompt"))
                .ok()
        });
        drop(inner);
        hub.notify();
        started
    }

    /// The first message of a new stream: history (unless `resume` names a known chunk) and
    /// the cursor to follow from, taken atomically with respect to turn ends.
    pub fn stream_start(
        &self,
        hub: &Hub,
        resume: Option<(&str, usize)>,
    ) -> Result<StreamStart, StoreError> {
        let inner = hub.lock();
        if let Some((completion_id, offset)) = resume
            && let Some(completion) = inner.completions.iter().find(|c| c.id == completion_id)
        {
            return Ok(StreamStart {
                history: None,
                cursor: Cursor {
                    seq: completion.seq,
                    // An offset past any chunk (even `usize::MAX`) just waits for new ones.
                    offset: offset.saturating_add(1),
                },
            });
        }
        let (leaf, seq) = match &inner.running {
            Some(running) => (running.pre_turn_leaf.clone(), running.seq),
            None => (self.store.get(&hub.thread_id)?.leaf_id, inner.next_seq),
        };
        let history = self.store.history(&hub.thread_id, leaf.as_deref())?;
        Ok(StreamStart {
            history: Some(history),
            cursor: Cursor { seq, offset: 0 },
        })
    }
}

#[derive(Debug)]
enum TurnEnd {
    Finished(String),
    Cancelled,
    Failed(String),
}

#[derive(Debug)]
struct TurnOutcome {
    assistant: UiMessage,
    end: TurnEnd,
}

/// The assistant message of a running turn, built part by part while its chunks are emitted:
/// one open text or reasoning block at a time, tool calls as `dynamic-tool` parts whose state
/// moves to `output-available` / `output-error` when they ran.
struct Turn<'a> {
    emit: &'a (dyn Fn(UiChunk) + Send + Sync),
    parts: Vec<Value>,
    open: Option<OpenBlock>,
    n_blocks: usize,
    /// Tool calls whose `tool-input-start` was emitted.
    started_calls: Vec<String>,
}

struct OpenBlock {
    reasoning: bool,
    id: String,
    /// Index of its part in `parts`.
    part: usize,
    text: String,
    signature: Option<String>,
}

impl<'a> Turn<'a> {
    fn new(emit: &'a (dyn Fn(UiChunk) + Send + Sync)) -> Self {
        Self {
            emit,
            parts: Vec::new(),
            open: None,
            n_blocks: 0,
            started_calls: Vec::new(),
        }
    }

    fn emit(&self, chunk: CoreChunk) {
        (self.emit)(chunk.into());
    }

    /// The message so far, for the next model call.
    fn message(&self) -> UiMessage {
        UiMessage {
            id: String::new(),
            role: Role::Assistant,
            parts: self.parts.clone(),
            metadata: None,
            created_at: None,
        }
    }

    fn start_step(&mut self) {
        self.emit(CoreChunk::StartStep);
        self.parts.push(json!({"type": "step-start"}));
    }

    fn finish_step(&mut self) {
        self.emit(CoreChunk::FinishStep);
    }

    fn open_block(&mut self, reasoning: bool) -> &mut OpenBlock {
        if self
            .open
            .as_ref()
            .is_some_and(|open| open.reasoning != reasoning)
        {
            self.close_block();
        }
        if self.open.is_none() {
            let id = format!(
                "{}-{}",
                if reasoning { "reasoning" } else { "text" },
                self.n_blocks
            );
            self.n_blocks += 1;
            let kind = if reasoning { "reasoning" } else { "text" };
            self.parts
                .push(json!({"type": kind, "text": "", "state": "streaming"}));
            self.emit(if reasoning {
                CoreChunk::ReasoningStart {
                    id: id.clone(),
                    provider_metadata: None,
                }
            } else {
                CoreChunk::TextStart {
                    id: id.clone(),
                    provider_metadata: None,
                }
            });
            self.open = Some(OpenBlock {
                reasoning,
                id,
                part: self.parts.len() - 1,
                text: String::new(),
                signature: None,
            });
        }
        self.open.as_mut().expect("opened above")
    }

    fn text(&mut self, delta: String) {
        let block = self.open_block(false);
        block.text.push_str(&delta);
        let id = block.id.clone();
        self.emit(CoreChunk::TextDelta {
            id,
            delta,
            provider_metadata: None,
        });
    }

    fn reasoning(&mut self, delta: String) {
        let block = self.open_block(true);
        block.text.push_str(&delta);
        let id = block.id.clone();
        self.emit(CoreChunk::ReasoningDelta { id, delta });
    }

    /// The signature ends its thinking block (it arrives once, at the block's end).
    fn signature(&mut self, signature: String) {
        self.open_block(true).signature = Some(signature);
        self.close_block();
    }

    /// Ends the open block: its `*-end` chunk, and its part gets the full text.
    fn close_block(&mut self) {
        let Some(block) = self.open.take() else {
            return;
        };
        let provider_metadata = block
            .signature
            .map(|signature| json!({"anthropic": {"signature": signature}}));
        let part = &mut self.parts[block.part];
        part["text"] = Value::String(block.text);
        part["state"] = json!("done");
        if let Some(metadata) = &provider_metadata {
            part["providerMetadata"] = metadata.clone();
        }
        self.emit(if block.reasoning {
            CoreChunk::ReasoningEnd {
                id: block.id,
                provider_metadata,
            }
        } else {
            CoreChunk::TextEnd {
                id: block.id,
                provider_metadata: None,
            }
        });
    }

    fn tool_start(&mut self, id: &str, name: &str) {
        self.close_block();
        self.started_calls.push(id.to_owned());
        self.emit(CoreChunk::ToolInputStart {
            tool_call_id: id.to_owned(),
            tool_name: name.to_owned(),
            provider_executed: None,
            dynamic: Some(true),
            title: None,
        });
    }

    fn tool_delta(&mut self, id: &str, delta: String) {
        self.emit(CoreChunk::ToolInputDelta {
            tool_call_id: id.to_owned(),
            input_text_delta: delta,
        });
    }

    /// A complete call: `tool-input-available` and its part, waiting to run.
    fn tool_call(&mut self, id: &str, name: &str, input: Value) {
        if !self.started_calls.iter().any(|started| started == id) {
            self.tool_start(id, name);
        }
        self.close_block();
        self.emit(CoreChunk::ToolInputAvailable {
            tool_call_id: id.to_owned(),
            tool_name: name.to_owned(),
            input: input.clone(),
            provider_executed: None,
            dynamic: Some(true),
            title: None,
        });
        self.parts.push(json!({
            "type": "dynamic-tool",
            "toolName": name,
            "toolCallId": id,
            "state": "input-available",
            "input": input,
        }));
    }

    fn tool_result(&mut self, id: &str, result: tools::ToolResult) {
        let part =
            self.parts.iter_mut().rev().find(|part| {
                part["type"] == "dynamic-tool" && part["toolCallId"].as_str() == Some(id)
            });
        let Some(part) = part else {
            return;
        };
        match result {
            Ok(output) => {
                part["state"] = json!("output-available");
                part["output"] = Value::String(output.clone());
                self.emit(CoreChunk::ToolOutputAvailable {
                    tool_call_id: id.to_owned(),
                    output: Value::String(output),
                    provider_executed: None,
                    dynamic: Some(true),
                    preliminary: None,
                });
            }
            Err(error_text) => {
                part["state"] = json!("output-error");
                part["errorText"] = Value::String(error_text.clone());
                self.emit(CoreChunk::ToolOutputError {
                    tool_call_id: id.to_owned(),
                    error_text,
                });
            }
        }
    }
}

/// The system prompt: who the agent is, where it works, and the plan mode rules.
fn system_prompt(work_dir: &Path, mode: Mode, plan_file: &Path) -> String {
    let mut prompt = format!(
        "You are Discobot, a coding agent working in the user's sandbox, a container that is \
         theirs to change. You help with software engineering tasks: read the code, run \
         commands, edit files, and check your work by running tests.\n\
         \n\
         The working directory is {work}: it is a git working copy of the user's project. \
         Relative paths in tool calls resolve against it.\n\
         Read a file before you Edit or Write it. Prefer Edit for changes to existing files. \
         Keep answers short; say what you changed and how you checked it.\n\
         Use AskUserQuestion only when you cannot proceed without the user's decision.\n\
         Today is {date}.",
        work = work_dir.display(),
        date = chrono::Utc::now().format("%Y-%m-%d"),
    );
    if mode == Mode::Plan {
        prompt.push_str(&format!(
            "\n\nPlan mode is on: do not change anything yet. Explore with Read, Glob and Grep \
             (Bash, Write and Edit are blocked, except writing the plan file {plan}), then \
             call ExitPlanMode with a concise markdown plan; that saves it and switches to \
             build mode.",
            plan = plan_file.display()
        ));
    }
    prompt
}

/// Appends a chunk: to the log on disk, then to the replay cache, then wakes the streams.
fn push(store: &ThreadStore, hub: &Hub, completion: &Completion, chunk: &UiChunk) {
    if hub.is_closed() {
        return;
    }
    let json: Arc<str> = match serde_json::to_string(chunk) {
        Ok(json) => json.into(),
        Err(err) => {
            tracing::error!(%err, "unserializable chunk");
            return;
        }
    };
    if let Err(err) = store.append_chunk(&hub.thread_id, &completion.id, &json) {
        tracing::warn!(thread = %hub.thread_id, %err, "could not log a chunk");
    }
    completion
        .chunks
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(json);
    hub.notify();
}

/// A one-line title: the first line of `text`, at most 100 characters.
fn title(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    line.chars().take(100).collect()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Parses a `Last-Event-ID` of the form `{completionId}:{offset}`.
pub fn parse_event_id(value: &str) -> Option<(&str, usize)> {
    let (completion, offset) = value.trim().rsplit_once(':')?;
    Some((completion, offset.parse().ok()?)).filter(|(c, _)| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids() {
        assert_eq!(parse_event_id("abc:3"), Some(("abc", 3)));
        assert_eq!(parse_event_id(" a:b:12 "), Some(("a:b", 12)));
        assert_eq!(parse_event_id("abc"), None);
        assert_eq!(parse_event_id(":1"), None);
        assert_eq!(parse_event_id("abc:x"), None);
    }

    #[test]
    fn titles() {
        assert_eq!(title("  hello\nworld"), "hello");
        assert_eq!(title(&"é".repeat(150)).chars().count(), 100);
    }
}
