//! Domain records: users, projects, members, workspaces, sessions, preferences.

use chrono::{DateTime, Utc};

use crate::ids::{InvitationId, MemberId, ProjectId, SessionId, UserId, WorkspaceId};

/// Declares a closed string enum with `as_str` and a parser that names the allowed values.
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the wire form; the error lists the accepted values.
            pub fn parse(raw: &str) -> crate::Result<Self> {
                match raw {
                    $($text => Ok($name::$variant),)+
                    other => Err(crate::Error::invalid(format!(
                        concat!("invalid ", $what, " {:?}: expected one of {}"),
                        other,
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

/// A person who can sign in (or the anonymous user).
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
    pub provider: String,
    pub provider_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

string_enum!(
    /// A member's role in a project; owners and admins administer it.
    Role, "role" { Owner => "owner", Admin => "admin", Member => "member" }
);

impl Role {
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub id: MemberId,
    pub project_id: ProjectId,
    pub user_id: UserId,
    pub role: Role,
    pub invited_by: Option<UserId>,
    pub invited_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
}

/// A member together with the user fields the members list shows.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberWithUser {
    pub member: Member,
    pub email: String,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Invitation {
    pub id: InvitationId,
    pub project_id: ProjectId,
    pub email: String,
    pub role: Role,
    pub invited_by: Option<UserId>,
    /// 64 hex characters; single use.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Preference {
    pub key: String,
    pub value: String,
    pub updated_at: DateTime<Utc>,
}

string_enum!(
    /// Where a workspace's code comes from.
    SourceType, "sourceType" { Local => "local", Git => "git", Managed => "managed" }
);

string_enum!(
    /// Workspace lifecycle: `initializing → cloning → ready | error`.
    WorkspaceStatus, "workspace status" {
        Initializing => "initializing", Cloning => "cloning", Ready => "ready", Error => "error",
    }
);

#[derive(Clone, Debug, PartialEq)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub project_id: ProjectId,
    /// An absolute local path, or a git URL for `SourceType::Git`.
    pub path: String,
    pub display_name: Option<String>,
    pub source_type: SourceType,
    /// The sandbox provider chosen at creation; empty means the server default.
    pub provider: String,
    pub auto_generated: bool,
    pub status: WorkspaceStatus,
    pub error_message: Option<String>,
    /// The directory holding the working tree: the path itself for local workspaces, the
    /// clone for git ones.
    pub work_dir: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

string_enum!(
    /// Session lifecycle (stored values); `removed` is only ever an event, never stored.
    SessionStatus, "session status" {
        Initializing => "initializing",
        Reinitializing => "reinitializing",
        Cloning => "cloning",
        PullingImage => "pulling_image",
        CreatingSandbox => "creating_sandbox",
        Ready => "ready",
        Stopped => "stopped",
        Error => "error",
        Removing => "removing",
        Removed => "removed",
    }
);

impl SessionStatus {
    /// Parses a client-supplied status, accepting the legacy `running` as `ready`.
    pub fn parse_client(raw: &str) -> crate::Result<Self> {
        if raw == "running" {
            return Ok(SessionStatus::Ready);
        }
        SessionStatus::parse(raw)
    }

    /// Once a session is being removed nothing may move it back (a late init job must
    /// not resurrect it).
    pub fn is_terminal(self) -> bool {
        matches!(self, SessionStatus::Removing | SessionStatus::Removed)
    }
}

string_enum!(
    /// State of a commit or rebase of a session's work, independent of its lifecycle.
    CommitStatus, "commit status" {
        Pending => "pending", Committing => "committing", Completed => "completed", Failed => "failed",
    }
);

/// A session's chat settings: `provider/model`, reasoning level, `plan`/`build` mode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatSettings {
    pub model: Option<String>,
    pub reasoning: Option<String>,
    pub mode: Option<String>,
}

impl ChatSettings {
    /// Whether `other` sets a value this lacks or holds differently.
    pub fn changed_by(&self, other: &ChatSettings) -> bool {
        let differs =
            |mine: &Option<String>, theirs: &Option<String>| theirs.is_some() && theirs != mine;
        differs(&self.model, &other.model)
            || differs(&self.reasoning, &other.reasoning)
            || differs(&self.mode, &other.mode)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub id: SessionId,
    pub project_id: ProjectId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub status: SessionStatus,
    pub commit_status: Option<CommitStatus>,
    pub commit_operation: Option<String>,
    pub commit_error: Option<String>,
    pub base_commit: Option<String>,
    pub applied_commit: Option<String>,
    pub error_message: Option<String>,
    pub workspace_path: Option<String>,
    pub workspace_commit: Option<String>,
    /// The model, reasoning and mode the session's chat last used.
    pub chat_settings: ChatSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Session {
    /// The status a client sees: commit progress, when there is one, wins over the lifecycle.
    pub fn display_status(&self) -> (String, Option<String>) {
        if self.status.is_terminal() {
            return (self.status.as_str().to_owned(), self.error_message.clone());
        }
        match self.commit_status {
            None => (self.status.as_str().to_owned(), self.error_message.clone()),
            Some(CommitStatus::Failed) => (
                "error".to_owned(),
                self.commit_error
                    .clone()
                    .or_else(|| self.error_message.clone()),
            ),
            Some(CommitStatus::Completed) => match self.commit_operation.as_deref() {
                Some("commit") => ("committed".to_owned(), self.error_message.clone()),
                Some("rebase") => ("rebased".to_owned(), self.error_message.clone()),
                _ => ("completed".to_owned(), self.error_message.clone()),
            },
            Some(other) => (other.as_str().to_owned(), self.error_message.clone()),
        }
    }
}

/// One entry of a terminal's recorded history.
#[derive(Clone, Debug, PartialEq)]
pub struct TerminalHistoryEntry {
    pub id: String,
    pub session_id: SessionId,
    pub entry_type: String,
    pub content: String,
    pub exit_code: Option<i32>,
    pub created_at: DateTime<Utc>,
}

/// How a local path looks when someone wants to make it a workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathClass {
    /// Does not exist, but its parent does: we create it.
    New,
    /// An empty directory: we initialise a repository in it.
    Empty,
    /// Already a git repository: used in place.
    ExistingGit,
    /// Anything else.
    Invalid,
}

impl PathClass {
    pub fn as_str(self) -> &'static str {
        match self {
            PathClass::New => "new",
            PathClass::Empty => "empty",
            PathClass::ExistingGit => "existing_git",
            PathClass::Invalid => "invalid",
        }
    }
    pub fn is_valid(self) -> bool {
        !matches!(self, PathClass::Invalid)
    }
}

/// The result of classifying a local path.
#[derive(Clone, Debug, PartialEq)]
pub struct PathCheck {
    /// The path after `~` expansion and cleaning.
    pub path: String,
    pub class: PathClass,
    /// Why the path is invalid, when it is.
    pub error: Option<String>,
}

/// A directory suggestion for the path picker.
#[derive(Clone, Debug, PartialEq)]
pub struct DirSuggestion {
    pub value: String,
    pub valid: bool,
    pub class: PathClass,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_and_reject_unknown() {
        for status in SessionStatus::ALL {
            assert_eq!(SessionStatus::parse(status.as_str()).unwrap(), *status);
        }
        assert_eq!(
            SessionStatus::parse_client("running").unwrap(),
            SessionStatus::Ready
        );
        let err = SessionStatus::parse("bogus").unwrap_err();
        assert!(err.message.contains("ready"), "{}", err.message);
        assert!(Role::parse("king").is_err());
    }
}

/// Where a chat prompt is in its hand-off to the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmissionStatus {
    /// Recorded, not (yet) accepted by the agent: a repeated POST sends it again.
    Pending,
    /// The agent started or queued it; a repeated POST answers the recorded result.
    Accepted,
    /// The agent refused it (4xx); a repeated POST sends it again.
    Failed,
}

impl SubmissionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> crate::Result<Self> {
        match raw {
            "pending" => Ok(Self::Pending),
            "accepted" => Ok(Self::Accepted),
            "failed" => Ok(Self::Failed),
            other => Err(crate::Error::invalid(format!(
                "unknown submission status {other:?}"
            ))),
        }
    }
}

/// A chat prompt as sent, keyed by (session, thread, client message id): only a hash of its
/// payload is kept, never the messages.
#[derive(Clone, Debug, PartialEq)]
pub struct PromptSubmission {
    pub id: String,
    pub project_id: ProjectId,
    pub session_id: SessionId,
    pub thread_id: String,
    /// The id of the last user message, or `generated-<sha256>` when there is none.
    pub client_message_id: String,
    /// SHA-256 (hex) of the messages, model, reasoning and mode.
    pub payload_hash: String,
    pub status: SubmissionStatus,
    pub completion_id: Option<String>,
    pub queued_prompt_id: Option<String>,
    /// `started` or `queued`, as the agent answered.
    pub result_status: Option<String>,
    pub error_message: Option<String>,
    /// The payload sealed with the credentials key (the submission id as associated data)
    /// until the agent accepts it; a `prompt_dispatch` job delivers it from here.
    pub payload_sealed: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
