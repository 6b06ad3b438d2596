//! `AskUserQuestion`: the turn pauses until the user answers (`POST …/chat/answer/{id}`) or
//! cancels. The question's id is the tool call's id; `questions/<id>.json` in the thread dir
//! records it (`pending`, then `answered` or `expired`), and the waiting tool holds the one
//! pending question in memory, so a restarted agent reports an old question `expired`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use discobot_agent_api::{CoreChunk, UiChunk};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::{ToolContext, ToolResult, parse};

/// The pending question of a thread, if a tool waits on one.
#[derive(Debug, Default)]
pub(crate) struct Questions {
    pending: Mutex<Option<Pending>>,
}

#[derive(Debug)]
struct Pending {
    id: String,
    questions: Value,
    answer: oneshot::Sender<HashMap<String, String>>,
}

/// What `GET …/chat/question/{id}` reports.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum QuestionStatus {
    /// Waiting; the questions as the model asked them.
    Pending(Value),
    Answered,
    /// Neither pending nor answered (cancelled, or asked by an earlier agent process).
    Expired,
}

/// `questions/<id>.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QuestionRecord {
    #[serde(rename = "toolUseID")]
    tool_use_id: String,
    questions: Value,
    status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answers: Option<HashMap<String, String>>,
}

impl Questions {
    fn lock(&self) -> MutexGuard<'_, Option<Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The id of the pending question, if any.
    pub(crate) fn pending_id(&self) -> Option<String> {
        self.lock().as_ref().map(|pending| pending.id.clone())
    }

    /// Delivers the answers to the waiting tool; `false` if `id` is not pending.
    pub(crate) fn answer(&self, id: &str, answers: HashMap<String, String>) -> bool {
        let mut pending = self.lock();
        if pending.as_ref().is_none_or(|pending| pending.id != id) {
            return false;
        }
        pending
            .take()
            .is_some_and(|pending| pending.answer.send(answers).is_ok())
    }

    /// Where question `id` stands.
    pub(crate) fn status(&self, thread_dir: &Path, id: &str) -> QuestionStatus {
        if let Some(pending) = self.lock().as_ref().filter(|pending| pending.id == id) {
            return QuestionStatus::Pending(pending.questions.clone());
        }
        let record = std::fs::read(record_path(thread_dir, id))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<QuestionRecord>(&bytes).ok());
        match record {
            Some(record) if record.status == "answered" => QuestionStatus::Answered,
            _ => QuestionStatus::Expired,
        }
    }
}

/// Clears the pending question when the waiting tool ends in any way (answered, cancelled,
/// or its future dropped).
struct PendingGuard<'a> {
    questions: &'a Questions,
    id: String,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let mut pending = self.questions.lock();
        if pending
            .as_ref()
            .is_some_and(|pending| pending.id == self.id)
        {
            *pending = None;
        }
    }
}

#[derive(Deserialize)]
struct AskInput {
    questions: Vec<Question>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Question {
    question: String,
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "validated for shape; the browser renders the options"
    )]
    options: Vec<Value>,
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "validated for shape; the browser renders the options"
    )]
    multi_select: bool,
}

/// Asks, waits for the answer (or cancel), and returns `[{question, answer}]` as JSON.
pub(crate) async fn ask(context: &ToolContext<'_>, input: Value) -> ToolResult {
    let questions_json = input.get("questions").cloned().unwrap_or(Value::Null);
    let input: AskInput = parse("AskUserQuestion", input)?;
    if input.questions.is_empty() {
        return Err("AskUserQuestion needs at least one question".into());
    }
    let id = context.tool_call_id.to_owned();
    let (sender, receiver) = oneshot::channel();
    {
        let mut pending = context.tools.questions.lock();
        if pending.is_some() {
            return Err("Another question is already waiting for an answer".into());
        }
        *pending = Some(Pending {
            id: id.clone(),
            questions: questions_json.clone(),
            answer: sender,
        });
    }
    let _guard = PendingGuard {
        questions: &context.tools.questions,
        id: id.clone(),
    };
    let mut record = QuestionRecord {
        tool_use_id: id.clone(),
        questions: questions_json,
        status: "pending".into(),
        answers: None,
    };
    save(context.thread_dir, &record);
    // The client closes the message here and asks for the question by this id.
    (context.emit)(
        CoreChunk::ToolApprovalRequest {
            approval_id: id.clone(),
            tool_call_id: id.clone(),
        }
        .into(),
    );
    let answers = tokio::select! {
        answers = receiver => answers.ok(),
        () = context.cancel.cancelled() => None,
    };
    if answers.is_some() {
        // The turn goes on in the same message: the client re-opens it.
        (context.emit)(UiChunk::data(
            "thread-resume",
            json!({"threadId": context.thread_id, "messageId": context.message_id}),
        ));
    }
    let Some(answers) = answers else {
        record.status = "expired".into();
        save(context.thread_dir, &record);
        return Err("The user did not answer: the turn was cancelled".into());
    };
    let result: Vec<Value> = input
        .questions
        .iter()
        .map(|question| {
            let answer = answers
                .get(&question.question)
                .or_else(|| question.header.as_ref().and_then(|h| answers.get(h)))
                .cloned()
                .unwrap_or_default();
            json!({"question": question.question, "answer": answer})
        })
        .collect();
    record.status = "answered".into();
    record.answers = Some(answers);
    save(context.thread_dir, &record);
    Ok(Value::Array(result).to_string())
}

fn record_path(thread_dir: &Path, id: &str) -> PathBuf {
    thread_dir
        .join("questions")
        .join(format!("{}.json", super::file_safe(id)))
}

fn save(thread_dir: &Path, record: &QuestionRecord) {
    let path = record_path(thread_dir, &record.tool_use_id);
    let result = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            let json = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, json)?;
            std::fs::rename(&tmp, &path)
        });
    if let Err(err) = result {
        tracing::warn!(path = %path.display(), %err, "could not record a question");
    }
}
