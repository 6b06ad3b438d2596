//! Wire types: the JSON shapes of the API (camelCase, as upstream), converted by hand from
//! core types so that a domain change never silently changes the contract.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use discobot_core::app::{CredentialInfo, SessionCredentialView};
use discobot_core::credentials::{CredentialType, ModelInfo, SessionCredentialUse, Visibility};
use discobot_core::model::{
    Invitation, MemberWithUser, Preference, Project, Session, TerminalHistoryEntry, Workspace,
};
use discobot_core::secrets::Secret;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod chat;
pub use chat::*;

/// RFC 3339 with as many fractional digits as needed (Go's `RFC3339Nano`), to the
/// microsecond: the databases keep microseconds, so a time answered right after a write is
/// the same as the one read back later.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.trunc_subsecs(6)
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// RFC 3339 to the second, as upstream formats session and preference times.
pub fn rfc3339_secs(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Serialize, JsonSchema)]
pub struct SuccessResponse {
    pub success: bool,
}

impl SuccessResponse {
    pub const OK: SuccessResponse = SuccessResponse { success: true };
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectDto {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Project> for ProjectDto {
    fn from(project: &Project) -> Self {
        ProjectDto {
            id: project.id.to_string(),
            name: project.name.clone(),
            slug: project.slug.clone(),
            created_at: rfc3339(project.created_at),
            updated_at: rfc3339(project.updated_at),
        }
    }
}

#[derive(Deserialize, JsonSchema)]
pub struct ProjectRequest {
    pub name: String,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberDto {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub role: String,
    pub email: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invited_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<String>,
}

impl From<&MemberWithUser> for MemberDto {
    fn from(entry: &MemberWithUser) -> Self {
        MemberDto {
            id: entry.member.id.to_string(),
            project_id: entry.member.project_id.to_string(),
            user_id: entry.member.user_id.to_string(),
            role: entry.member.role.as_str().to_owned(),
            email: entry.email.clone(),
            name: entry.name.clone().unwrap_or_default(),
            avatar_url: entry.avatar_url.clone(),
            invited_at: entry.member.invited_at.map(rfc3339),
            accepted_at: entry.member.accepted_at.map(rfc3339),
        }
    }
}

#[derive(Deserialize, JsonSchema)]
pub struct InvitationRequest {
    pub email: String,
    #[serde(default)]
    pub role: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvitationDto {
    pub id: String,
    pub project_id: String,
    pub email: String,
    pub role: String,
    pub token: String,
    pub expires_at: String,
    pub created_at: String,
}

impl From<&Invitation> for InvitationDto {
    fn from(invitation: &Invitation) -> Self {
        InvitationDto {
            id: invitation.id.to_string(),
            project_id: invitation.project_id.to_string(),
            email: invitation.email.clone(),
            role: invitation.role.as_str().to_owned(),
            token: invitation.token.clone(),
            expires_at: rfc3339(invitation.expires_at),
            created_at: rfc3339(invitation.created_at),
        }
    }
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreferenceDto {
    pub key: String,
    pub value: String,
    pub updated_at: String,
}

impl From<&Preference> for PreferenceDto {
    fn from(preference: &Preference) -> Self {
        PreferenceDto {
            key: preference.key.clone(),
            value: preference.value.clone(),
            updated_at: rfc3339_secs(preference.updated_at),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct PreferencesResponse {
    pub preferences: Vec<PreferenceDto>,
}

#[derive(Deserialize, JsonSchema)]
pub struct SetPreferencesRequest {
    #[serde(default)]
    pub preferences: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize, JsonSchema)]
pub struct SetPreferenceRequest {
    #[serde(default)]
    pub value: String,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionDto {
    pub id: String,
    pub project_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub description: String,
    pub created_at: String,
    pub timestamp: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub files: Vec<String>,
    pub workspace_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_commit: Option<String>,
    /// The chat's last `provider/model` (not in the seed's JSON; extra for clients).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

impl From<&Session> for SessionDto {
    fn from(session: &Session) -> Self {
        let (status, error_message) = session.display_status();
        SessionDto {
            id: session.id.to_string(),
            project_id: session.project_id.to_string(),
            name: session.name.clone(),
            display_name: session.display_name.clone(),
            description: session.description.clone().unwrap_or_default(),
            created_at: rfc3339_secs(session.created_at),
            timestamp: rfc3339_secs(session.updated_at),
            status,
            base_commit: session.base_commit.clone(),
            applied_commit: session.applied_commit.clone(),
            error_message,
            files: Vec::new(),
            workspace_id: session.workspace_id.to_string(),
            workspace_path: session.workspace_path.clone(),
            workspace_commit: session.workspace_commit.clone(),
            model: session.chat_settings.model.clone(),
            reasoning: session.chat_settings.reasoning.clone(),
            mode: session.chat_settings.mode.clone(),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct SessionsResponse {
    pub sessions: Vec<SessionDto>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateSessionRequest {
    pub id: String,
    #[serde(default)]
    pub workspace_id: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct CreateSessionResponse {
    pub id: String,
}

/// `PUT/PATCH …/sessions/{id}`. `displayName` distinguishes absent from `null`.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateSessionRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schemars(with = "Option<String>")]
    pub display_name: Option<Option<String>>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceDto {
    pub id: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub source_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub provider: String,
    pub auto_generated: bool,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_dir: Option<String>,
    pub sessions: Vec<SessionDto>,
}

impl WorkspaceDto {
    pub fn new(workspace: &Workspace, sessions: &[Session]) -> Self {
        WorkspaceDto {
            id: workspace.id.to_string(),
            path: workspace.path.clone(),
            display_name: workspace.display_name.clone(),
            source_type: workspace.source_type.as_str().to_owned(),
            provider: workspace.provider.clone(),
            auto_generated: workspace.auto_generated,
            status: workspace.status.as_str().to_owned(),
            error_message: workspace.error_message.clone(),
            work_dir: workspace.work_dir.clone(),
            sessions: sessions.iter().map(SessionDto::from).collect(),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct WorkspacesResponse {
    pub workspaces: Vec<WorkspaceDto>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateWorkspaceRequest {
    pub path: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub source_type: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateWorkspaceRequest {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schemars(with = "Option<String>")]
    pub display_name: Option<Option<String>>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidateWorkspaceRequest {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub source_type: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuggestionDto {
    pub value: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classification: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidateWorkspaceResponse {
    pub path: String,
    pub source_type: String,
    pub valid: bool,
    pub classification: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub suggestions: Vec<SuggestionDto>,
}

#[derive(Serialize, JsonSchema)]
pub struct SuggestionsResponse {
    pub suggestions: Vec<SuggestionDto>,
}

/// Terminal history is snake_case upstream.
#[derive(Serialize, JsonSchema)]
pub struct TerminalHistoryDto {
    pub id: String,
    pub session_id: String,
    pub entry_type: String,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub created_at: String,
}

impl From<&TerminalHistoryEntry> for TerminalHistoryDto {
    fn from(entry: &TerminalHistoryEntry) -> Self {
        TerminalHistoryDto {
            id: entry.id.clone(),
            session_id: entry.session_id.to_string(),
            entry_type: entry.entry_type.clone(),
            content: entry.content.clone(),
            exit_code: entry.exit_code,
            created_at: rfc3339(entry.created_at),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct TerminalHistoryResponse {
    pub history: Vec<TerminalHistoryDto>,
}

/// A model the UI can pick (`reasoning` only when true).
#[derive(Serialize, JsonSchema)]
pub struct ModelDto {
    pub id: String,
    pub name: String,
    pub provider: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reasoning: bool,
}

impl From<&ModelInfo> for ModelDto {
    fn from(model: &ModelInfo) -> Self {
        ModelDto {
            id: model.id.clone(),
            name: model.name.to_owned(),
            provider: model.provider.to_owned(),
            reasoning: model.reasoning,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct ModelsResponse {
    pub models: Vec<ModelDto>,
}

/// `{"status": …}` (`deleted`, `ok`).
#[derive(Serialize, JsonSchema)]
pub struct StatusResponse {
    pub status: &'static str,
}

/// Where a credential is visible in a sandbox; absent fields read as `false`.
#[derive(Clone, Copy, Default, Deserialize, Serialize, JsonSchema)]
pub struct VisibilityDto {
    #[serde(default)]
    pub tools: bool,
    #[serde(default)]
    pub console: bool,
    #[serde(default)]
    pub services: bool,
    #[serde(default)]
    pub hooks: bool,
}

impl From<Visibility> for VisibilityDto {
    fn from(v: Visibility) -> Self {
        VisibilityDto {
            tools: v.tools,
            console: v.console,
            services: v.services,
            hooks: v.hooks,
        }
    }
}

impl From<VisibilityDto> for Visibility {
    fn from(v: VisibilityDto) -> Self {
        Visibility {
            tools: v.tools,
            console: v.console,
            services: v.services,
            hooks: v.hooks,
        }
    }
}

/// A credential without its secret: which env vars are set (`envKeys`), never their values.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialInfoDto {
    pub id: String,
    pub provider: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub auth_type: String,
    pub is_configured: bool,
    pub inactive: bool,
    pub agent_visible: bool,
    pub visibility: VisibilityDto,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_keys: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&CredentialInfo> for CredentialInfoDto {
    fn from(info: &CredentialInfo) -> Self {
        let c = &info.credential;
        CredentialInfoDto {
            id: c.id.to_string(),
            provider: c.provider.clone(),
            name: c.name.clone(),
            description: c.description.clone(),
            auth_type: c.auth_type.as_str().to_owned(),
            is_configured: c.is_configured,
            inactive: c.inactive,
            agent_visible: c.visibility.tools,
            visibility: c.visibility.into(),
            env_keys: info.env_keys.clone(),
            expires_at: info.expires_at.map(rfc3339),
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct CredentialsResponse {
    pub credentials: Vec<CredentialInfoDto>,
}

/// One env var of a credential; an empty `value` keeps the stored one.
#[derive(Deserialize, JsonSchema)]
pub struct EnvVarRequest {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    #[schemars(with = "String")]
    pub value: Secret,
}

/// `POST …/credentials`: create or update (with `credentialId`).
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateCredentialRequest {
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub credential_id: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `api_key`, `id` or `oauth`.
    #[serde(default)]
    pub auth_type: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub api_key: Option<Secret>,
    #[serde(default)]
    pub env_vars: Option<Vec<EnvVarRequest>>,
    #[serde(default)]
    pub agent_visible: Option<bool>,
    #[serde(default)]
    pub visibility: Option<VisibilityDto>,
    #[serde(default)]
    pub inactive: Option<bool>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialTypeDto {
    pub id: &'static str,
    pub provider: &'static str,
    pub backend_provider: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub secret_label: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<&'static str>,
    pub category: &'static str,
    pub group: &'static str,
    pub group_name: &'static str,
    pub auth_type: &'static str,
}

impl From<&CredentialType> for CredentialTypeDto {
    fn from(t: &CredentialType) -> Self {
        CredentialTypeDto {
            id: t.id,
            provider: t.provider,
            backend_provider: t.backend_provider,
            name: t.name,
            description: t.description,
            secret_label: t.secret_label,
            env: t.env.to_vec(),
            category: t.category,
            group: t.group,
            group_name: t.group_name,
            auth_type: t.auth_type.as_str(),
        }
    }
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialTypesResponse {
    pub credential_types: Vec<CredentialTypeDto>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionCredentialUseDto {
    pub id: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_tool_call_id: Option<String>,
}

impl From<&SessionCredentialUse> for SessionCredentialUseDto {
    fn from(u: &SessionCredentialUse) -> Self {
        SessionCredentialUseDto {
            id: u.id.clone(),
            description: u.description.clone(),
            created_at: u.created_at.map(rfc3339),
            last_used_at: u.last_used_at.map(rfc3339),
            last_used_tool_call_id: u.last_used_tool_call_id.clone(),
        }
    }
}

/// A project credential as one session sees it: `agentVisible`/`visibility` are the
/// session's, `credential.agentVisible`/`credential.visibility` the global ones.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionCredentialDto {
    pub credential_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_credential_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_var: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_env_var: Option<String>,
    pub agent_visible: bool,
    pub visibility: VisibilityDto,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<Vec<SessionCredentialUseDto>>,
    pub credential: CredentialInfoDto,
}

impl From<&SessionCredentialView> for SessionCredentialDto {
    fn from(view: &SessionCredentialView) -> Self {
        let assignment = view.assignment.as_ref();
        SessionCredentialDto {
            credential_id: view.credential.credential.id.to_string(),
            session_credential_id: assignment.map(|a| a.session_credential_id.clone()),
            env_var: assignment.and_then(|a| a.env_var.clone()),
            source_env_var: assignment.and_then(|a| a.source_env_var.clone()),
            agent_visible: view.visibility.tools,
            visibility: view.visibility.into(),
            uses: assignment
                .filter(|a| !a.uses.is_empty())
                .map(|a| a.uses.iter().map(SessionCredentialUseDto::from).collect()),
            credential: CredentialInfoDto::from(&view.credential),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct SessionCredentialsResponse {
    pub credentials: Vec<SessionCredentialDto>,
}

/// An approved use; only the description is read (ids and times are the server's).
#[derive(Deserialize, JsonSchema)]
pub struct SessionCredentialUseRequest {
    #[serde(default)]
    pub description: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionCredentialRequest {
    pub credential_id: String,
    #[serde(default)]
    pub session_credential_id: Option<String>,
    #[serde(default)]
    pub env_var: Option<String>,
    #[serde(default)]
    pub source_env_var: Option<String>,
    #[serde(default)]
    pub agent_visible: bool,
    /// Overrides `agentVisible` when given.
    #[serde(default)]
    pub visibility: Option<VisibilityDto>,
    #[serde(default)]
    pub uses: Option<Vec<SessionCredentialUseRequest>>,
}

/// `PUT …/sessions/{id}/credentials`: the session's whole set of assignments.
#[derive(Deserialize, JsonSchema)]
pub struct SetSessionCredentialsRequest {
    #[serde(default)]
    pub credentials: Option<Vec<SessionCredentialRequest>>,
}

/// `POST …/credentials/mcp`: an MCP server's OAuth token from the agent.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct McpTokenRequest {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    #[schemars(with = "String")]
    pub access_token: Secret,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub refresh_token: Option<Secret>,
    /// Unix seconds.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// Reads a field that may be absent (outer `None`), `null` (`Some(None)`) or a value.
fn double_option<'de, D>(deserializer: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(deserializer).map(Some)
}

// Workspace git (routes #38–#48); no field is ever omitted, as upstream.

/// `{path, status, oldPath}`; `oldPath` is "" unless renamed or copied.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitFileStatusDto {
    pub path: String,
    pub status: String,
    pub old_path: String,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitStatusDto {
    pub branch: String,
    pub commit: String,
    pub commit_short: String,
    pub ahead: u32,
    pub behind: u32,
    pub staged: Vec<GitFileStatusDto>,
    pub unstaged: Vec<GitFileStatusDto>,
    pub untracked: Vec<String>,
    pub is_clean: bool,
    pub has_conflicts: bool,
}

impl GitStatusDto {
    pub fn new(status: &discobot_core::git::GitStatus) -> Self {
        let files = |list: &[discobot_core::git::FileStatus]| {
            list.iter()
                .map(|f| GitFileStatusDto {
                    path: f.path.clone(),
                    status: f.status.clone(),
                    old_path: f.old_path.clone(),
                })
                .collect()
        };
        GitStatusDto {
            branch: status.branch.clone(),
            commit: status.commit.clone(),
            commit_short: status.commit_short.clone(),
            ahead: status.ahead,
            behind: status.behind,
            staged: files(&status.staged),
            unstaged: files(&status.unstaged),
            untracked: status.untracked.clone(),
            is_clean: status.is_clean(),
            has_conflicts: status.has_conflicts,
        }
    }
}

#[derive(Deserialize, JsonSchema)]
pub struct GitCheckoutRequest {
    /// A branch (local, or a remote branch to track) or any revision (checked out detached).
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitBranchDto {
    pub name: String,
    pub is_remote: bool,
    pub is_current: bool,
    pub commit: String,
    pub upstream: String,
}

#[derive(Serialize, JsonSchema)]
pub struct GitBranchesResponse {
    pub branches: Vec<GitBranchDto>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitFileDiffDto {
    pub path: String,
    pub old_path: String,
    pub status: String,
    pub binary: bool,
    pub additions: u32,
    pub deletions: u32,
    /// Unified patch text as `git diff` prints it.
    pub patch: String,
}

#[derive(Serialize, JsonSchema)]
pub struct GitDiffResponse {
    pub diffs: Vec<GitFileDiffDto>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitFileEntryDto {
    pub path: String,
    pub name: String,
    pub is_dir: bool,
    pub size: u64,
    pub mode: String,
}

#[derive(Serialize, JsonSchema)]
pub struct GitFileTreeResponse {
    pub files: Vec<GitFileEntryDto>,
}

#[derive(Serialize, JsonSchema)]
pub struct GitFileContentResponse {
    pub path: String,
    /// The `ref` query, "" when absent (the working tree).
    #[serde(rename = "ref")]
    pub reference: String,
    pub content: String,
}

#[derive(Deserialize, JsonSchema)]
pub struct GitWriteFileRequest {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub content: String,
}

#[derive(Deserialize, JsonSchema)]
pub struct GitStageRequest {
    /// Paths (files or directories) to stage; absent or empty stages every change.
    #[serde(default)]
    pub paths: Option<Vec<String>>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitCommitRequest {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub author_name: Option<String>,
    #[serde(default)]
    pub author_email: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitCommitDto {
    pub sha: String,
    pub short_sha: String,
    pub message: String,
    pub author: String,
    pub author_email: String,
    pub author_date: String,
    pub committer: String,
    pub commit_date: String,
    pub parents: Vec<String>,
}

impl GitCommitDto {
    pub fn new(commit: &discobot_core::git::Commit) -> Self {
        GitCommitDto {
            sha: commit.sha.clone(),
            short_sha: commit.short_sha.clone(),
            message: commit.message.clone(),
            author: commit.author.clone(),
            author_email: commit.author_email.clone(),
            author_date: commit
                .author_date
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            committer: commit.committer.clone(),
            commit_date: commit
                .commit_date
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            parents: commit.parents.clone(),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct GitLogResponse {
    pub commits: Vec<GitCommitDto>,
}
