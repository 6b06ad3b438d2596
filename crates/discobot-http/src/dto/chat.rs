//! Wire types of the chat, thread, session file and diff routes (the agent-proxied ones).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST …/threads/{threadId}/chat`.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatRequest {
    /// AI SDK UI messages, passed to the agent as they are.
    #[serde(default)]
    pub messages: Option<Vec<Value>>,
    /// Ignored (the AI SDK sends it); declared so the OpenAPI document shows it.
    #[serde(default)]
    #[allow(dead_code)]
    pub trigger: Option<String>,
    /// The workspace of a session this message creates (default: a fresh one).
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// `providerId/modelId`.
    #[serde(default)]
    pub model: Option<String>,
    /// `auto|low|medium|high|xhigh|none|default`.
    #[serde(default)]
    pub reasoning: Option<String>,
    /// `build` or `plan`.
    #[serde(default)]
    pub mode: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatResponse {
    pub workspace_id: String,
    pub session_id: String,
    pub thread_id: String,
    /// The recorded prompt: a repeated POST of the same message answers the same result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submission_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_id: Option<String>,
    /// `started` or `queued` (absent when there was no message to send).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued_prompt_id: Option<String>,
}

/// `POST …/threads/{threadId}/cancel`.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatCancelResponse {
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// `GET …/question/{questionId}`: `status` is `pending`, `answered` or `expired`.
#[derive(Serialize, JsonSchema)]
pub struct PendingQuestionResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `{toolUseID, questions?, credentials?}` or `null`.
    pub question: Option<Value>,
}

/// `POST …/answer/{questionId}`.
#[derive(Deserialize, JsonSchema)]
pub struct ChatAnswerRequest {
    /// Question text → answer; required (`{}` is accepted).
    #[serde(default)]
    pub answers: Option<Value>,
    /// Env var → value, for credential questions.
    #[serde(default)]
    pub credentials: Option<Value>,
}

/// A chat thread, re-encoded from the agent's answer (unknown fields dropped).
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadDto {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// `build` or `plan`; `""` in the placeholder of a thread not stored yet.
    #[serde(default)]
    pub mode: String,
    /// `interrupted` or `cancelled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_queue: Option<Vec<Value>>,
}

#[derive(Serialize, JsonSchema)]
pub struct ThreadsResponse {
    pub threads: Vec<ThreadDto>,
}

#[derive(Deserialize, JsonSchema)]
pub struct CreateThreadRequest {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
pub struct UpdateThreadRequest {
    #[serde(default)]
    pub name: String,
}

#[derive(Serialize, JsonSchema)]
pub struct AuthProvidersResponse {
    /// `{id, name, description?, secretLabel?, icons?, env?, category}`, sorted by name.
    #[serde(rename = "authProviders")]
    pub auth_providers: Vec<Value>,
}

/// `{id, name, provider, reasoning?, reasoningLevels?, defaultReasoning?}` each.
#[derive(Serialize, JsonSchema)]
pub struct SessionModelsResponse {
    pub models: Vec<Value>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct FileEntryDto {
    pub name: String,
    /// `file` or `directory`.
    #[serde(rename = "type")]
    pub entry_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

#[derive(Serialize, JsonSchema)]
pub struct FileListResponse {
    pub path: String,
    pub entries: Vec<FileEntryDto>,
}

#[derive(Serialize, JsonSchema)]
pub struct FileSearchResponse {
    pub query: String,
    /// `{path, type, score}` each.
    pub results: Vec<Value>,
}

#[derive(Serialize, JsonSchema)]
pub struct FileReadResponse {
    pub path: String,
    pub content: String,
    /// `utf8` or `base64` (`utf-8` for a base-commit read).
    pub encoding: String,
    pub size: u64,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WriteFileRequest {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub content: Option<String>,
    /// `utf8` (default) or `base64`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// The content the client started from; the agent answers 409 when the file changed.
    #[serde(default)]
    pub original_content: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct FileWriteResponse {
    pub path: String,
    pub size: u64,
}

#[derive(Deserialize, JsonSchema)]
pub struct DeleteFileRequest {
    #[serde(default)]
    pub path: String,
}

#[derive(Serialize, JsonSchema)]
pub struct FileDeleteResponse {
    pub path: String,
    #[serde(rename = "type")]
    pub entry_type: String,
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenameFileRequest {
    #[serde(default)]
    pub old_path: String,
    #[serde(default)]
    pub new_path: String,
}

/// Without `path`: `{files: [{path, status, oldPath?, additions, deletions, binary, patch?}],
/// stats: {filesChanged, additions, deletions}}` (`format=files`: no counts or patches);
/// with `path`: one file `{path, status, oldPath?, additions, deletions, binary, patch}`.
#[derive(Serialize, JsonSchema)]
pub struct DiffResponse {
    #[serde(flatten)]
    pub diff: serde_json::Map<String, Value>,
}
