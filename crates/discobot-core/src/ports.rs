//! The traits adapters implement: the store's repositories, the event log, the job queue,
//! git, the sandbox provider and the event notifier.
//!
//! Every method returns `crate::Result`; an adapter maps its own failures to an
//! `ErrorKind` at this seam ("not found" → `NotFound`, a unique-key clash → `Conflict`,
//! anything unexpected → `Internal`).

use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;
use crate::credentials::{Credential, SessionCredentialAssignment};
use crate::events::{Event, NewEvent};
use crate::git::{Branch, Commit, DiffQuery, FileDiff, FileEntry, GitStatus, NewCommit};
use crate::ids::{CredentialId, JobId, ProjectId, SessionId, UserId, WorkspaceId};
use crate::jobs::{Job, JobOutcome, NewJob};
use crate::model::{
    CommitStatus, DirSuggestion, Invitation, Member, MemberWithUser, PathCheck, Preference,
    Project, Session, SessionStatus, TerminalHistoryEntry, User, Workspace, WorkspaceStatus,
};
use crate::replay::{ReplayBundle, ReplayOutcome};

#[async_trait]
pub trait UserRepo: Send + Sync {
    async fn get_user(&self, id: &UserId) -> Result<Option<User>>;
}

#[async_trait]
pub trait ProjectRepo: Send + Sync {
    /// Projects the user is a member of, oldest first.
    async fn list_projects_for_user(&self, user: &UserId) -> Result<Vec<Project>>;
    async fn get_project(&self, id: &ProjectId) -> Result<Option<Project>>;
    /// Inserts the project and makes `owner` its owner, in one transaction.
    async fn create_project(&self, project: &Project, owner: &UserId) -> Result<()>;
    async fn update_project(&self, project: &Project) -> Result<()>;
    /// Deletes the project with its workspaces, sessions (and their terminal history),
    /// members, invitations and session credential assignments, in one transaction.
    async fn delete_project(&self, id: &ProjectId) -> Result<()>;
}

#[async_trait]
pub trait MemberRepo: Send + Sync {
    async fn get_membership(&self, project: &ProjectId, user: &UserId) -> Result<Option<Member>>;
    async fn list_members(&self, project: &ProjectId) -> Result<Vec<MemberWithUser>>;
    /// Returns whether a row was removed.
    async fn remove_member(&self, project: &ProjectId, user: &UserId) -> Result<bool>;
    /// Inserts the invitation, replacing an earlier one for the same project and email.
    async fn create_invitation(&self, invitation: &Invitation) -> Result<()>;
    async fn get_invitation_by_token(&self, token: &str) -> Result<Option<Invitation>>;
    /// Atomically: deletes the invitation (so the token works once) and adds `member`
    /// unless the user is already a member. Returns `false` if the invitation was already
    /// gone (someone else used it first).
    async fn accept_invitation(&self, invitation: &Invitation, member: &Member) -> Result<bool>;
}

#[async_trait]
pub trait PreferenceRepo: Send + Sync {
    /// All of a user's preferences, ordered by key.
    async fn list_preferences(&self, user: &UserId) -> Result<Vec<Preference>>;
    async fn get_preference(&self, user: &UserId, key: &str) -> Result<Option<Preference>>;
    /// Upserts every pair in one transaction.
    async fn set_preferences(
        &self,
        user: &UserId,
        values: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Returns whether the key existed.
    async fn delete_preference(&self, user: &UserId, key: &str) -> Result<bool>;
}

#[async_trait]
pub trait WorkspaceRepo: Send + Sync {
    async fn list_workspaces(&self, project: &ProjectId) -> Result<Vec<Workspace>>;
    async fn get_workspace(&self, id: &WorkspaceId) -> Result<Option<Workspace>>;
    async fn create_workspace(&self, workspace: &Workspace) -> Result<()>;
    /// Writes path, display name and work dir.
    async fn update_workspace(&self, workspace: &Workspace) -> Result<()>;
    async fn set_workspace_status(
        &self,
        id: &WorkspaceId,
        status: WorkspaceStatus,
        error: Option<&str>,
        work_dir: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Deletes the workspace; its sessions are soft-deleted and their terminal history
    /// removed, in one transaction. Returns whether it existed.
    async fn delete_workspace(&self, id: &WorkspaceId) -> Result<bool>;
}

#[async_trait]
pub trait SessionRepo: Send + Sync {
    /// Live (not soft-deleted) sessions of a project, newest first.
    async fn list_sessions(&self, project: &ProjectId) -> Result<Vec<Session>>;
    async fn list_workspace_sessions(&self, workspace: &WorkspaceId) -> Result<Vec<Session>>;
    /// Live sessions of every project whose status is one of `statuses`, oldest first.
    async fn list_sessions_with_status(&self, statuses: &[SessionStatus]) -> Result<Vec<Session>>;
    /// A live session.
    async fn get_session(&self, id: &SessionId) -> Result<Option<Session>>;
    /// Whether any row has this id, soft-deleted ones included (ids are never reused).
    async fn session_id_taken(&self, id: &SessionId) -> Result<bool>;
    /// Inserts; a taken id is a `Conflict`.
    async fn create_session(&self, session: &Session) -> Result<()>;
    /// Writes name, display name and description.
    async fn update_session_fields(&self, session: &Session) -> Result<()>;
    /// Sets status and error message unless the stored status is terminal (removing);
    /// `force` overrides that guard (used by delete itself). Returns whether it wrote.
    async fn set_session_status(
        &self,
        id: &SessionId,
        status: SessionStatus,
        error: Option<&str>,
        force: bool,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Sets the commit status and error (`None` clears them to ""), unless the session is
    /// gone. Returns whether it wrote.
    async fn set_commit_status(
        &self,
        id: &SessionId,
        status: Option<CommitStatus>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Starts a commit or rebase: commit status `pending`, the operation, error cleared (and
    /// the applied commit for a rebase), only if no operation is pending or committing and
    /// the session is live. Returns whether it started one (atomic check and set).
    async fn begin_commit_operation(
        &self,
        id: &SessionId,
        operation: &str,
        clear_applied: bool,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Writes the chat settings `settings` sets; the others stay.
    async fn set_chat_settings(
        &self,
        id: &SessionId,
        settings: &crate::model::ChatSettings,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Writes the commit columns `update` names; the others stay.
    async fn set_commit_refs(
        &self,
        id: &SessionId,
        update: &CommitRefs,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Soft-deletes the session and removes its terminal history.
    async fn soft_delete_session(&self, id: &SessionId, now: DateTime<Utc>) -> Result<()>;
    async fn list_terminal_history(
        &self,
        id: &SessionId,
        limit: Option<u64>,
    ) -> Result<Vec<TerminalHistoryEntry>>;
}

/// Credentials and their per-session assignments. Secrets arrive sealed: the store never
/// sees a plaintext value.
#[async_trait]
pub trait CredentialRepo: Send + Sync {
    /// A project's credentials, oldest first.
    async fn list_credentials(&self, project: &ProjectId) -> Result<Vec<Credential>>;
    async fn get_credential(&self, id: &CredentialId) -> Result<Option<Credential>>;
    async fn get_credential_by_provider(
        &self,
        project: &ProjectId,
        provider: &str,
    ) -> Result<Option<Credential>>;
    /// Inserts; another credential of the same project and provider is a `Conflict`.
    async fn insert_credential(&self, credential: &Credential) -> Result<()>;
    /// Writes every field but the id, project and creation time; a missing row is `NotFound`.
    async fn update_credential(&self, credential: &Credential) -> Result<()>;
    /// Deletes the credential's session assignments, then the credential, in one
    /// transaction. Returns whether it existed.
    async fn delete_credential(&self, id: &CredentialId) -> Result<bool>;
    async fn list_session_assignments(
        &self,
        session: &SessionId,
    ) -> Result<Vec<SessionCredentialAssignment>>;
    /// Replaces all of the session's assignments with `assignments`, in one transaction.
    async fn replace_session_assignments(
        &self,
        session: &SessionId,
        assignments: &[SessionCredentialAssignment],
    ) -> Result<()>;
}

/// Small server-wide values kept in the database (the encryption key check).
#[async_trait]
pub trait SettingsRepo: Send + Sync {
    async fn get_setting(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Stores `value` unless the key already has one, atomically (several replicas may start
    /// at once); returns the value stored in the end, ours or the earlier one.
    async fn insert_setting_if_absent(
        &self,
        key: &str,
        value: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>>;
}

#[async_trait]
pub trait EventLog: Send + Sync {
    /// Stores the event and returns it with its sequence number.
    async fn append_event(&self, event: &NewEvent) -> Result<Event>;
    /// Events of every project with `seq > after_seq`, ascending, at most `limit`.
    async fn events_after_seq(&self, after_seq: i64, limit: u64) -> Result<Vec<Event>>;
    /// The highest sequence number stored (0 when empty).
    async fn max_event_seq(&self) -> Result<i64>;
    /// The highest sequence number of one project's events (0 when none): it changes
    /// whenever anything in the project changes, so it versions cached views.
    async fn max_project_event_seq(&self, project: &ProjectId) -> Result<i64>;
    async fn get_event(&self, id: &str) -> Result<Option<Event>>;
    /// A project's events created strictly after `since` (all when `None`), ascending.
    async fn project_events_since(
        &self,
        project: &ProjectId,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Event>>;
    /// Deletes events created before `before`; returns how many.
    async fn purge_events_before(&self, before: DateTime<Utc>) -> Result<u64>;
}

#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Inserts the job. Unless it allows duplicates, a pending or running job on the same
    /// resource makes this a `Conflict` ("job already exists for resource"), atomically.
    async fn enqueue(&self, job: &NewJob) -> Result<()>;
    /// Claims the most urgent due job of one of `job_types` whose resource has no other
    /// running job, or a running job whose lease expired (its previous worker is presumed
    /// dead). Marks it running for `worker`, counts the attempt and sets the lease.
    /// Safe to call from several processes at once.
    async fn claim(
        &self,
        worker: &str,
        job_types: &[&str],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Job>>;
    /// Extends the lease if `worker` still holds it; `false` means the lease was lost.
    async fn renew_lease(
        &self,
        id: &JobId,
        worker: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool>;
    /// Records the outcome if `worker` still holds the lease; returns whether it did.
    async fn finish(
        &self,
        id: &JobId,
        worker: &str,
        outcome: &JobOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    async fn get_job(&self, id: &JobId) -> Result<Option<Job>>;
    /// The newest job for a resource, whatever its status.
    async fn latest_job_for_resource(
        &self,
        resource_type: &str,
        resource_id: &str,
    ) -> Result<Option<Job>>;
    /// Drops every lease at once; only for a process that knows it is the sole user of the
    /// database (SQLite, whose file it has locked).
    async fn release_all_leases(&self) -> Result<u64>;
}

/// Git and filesystem work on the host: classifying paths, making repositories, cloning.
#[async_trait]
pub trait GitPort: Send + Sync {
    /// Expands `~`, cleans the path and classifies it.
    async fn check_local_path(&self, raw: &str) -> Result<PathCheck>;
    /// Makes `path` a usable repository: creates the directory when new, and for a new or
    /// empty directory runs `git init` with an empty "Initial commit".
    async fn prepare_local(&self, path: &Path) -> Result<()>;
    /// Clones `url` into `dest` unless `dest` already holds a clone of it.
    async fn clone_repo(&self, url: &str, dest: &Path) -> Result<()>;
    /// Checks that `url` answers as a git remote (like `git ls-remote`).
    async fn check_remote(&self, url: &str) -> Result<()>;
    /// Sub-directories for the path picker (max 10).
    async fn suggest_dirs(&self, query: &str) -> Result<Vec<DirSuggestion>>;
    /// Removes a working directory (for `deleteFiles`).
    async fn remove_dir(&self, path: &Path) -> Result<()>;
    /// Re-creates a session's commits (`bundle`, from its sandbox) on top of the workspace's
    /// `HEAD`, which must be the bundle's parent or a descendant of it, with the same
    /// messages, authors, committers and dates; then moves the branch (or detached `HEAD`)
    /// and updates the index and working tree for the touched paths only. All or nothing: a
    /// touched path changed on the host (in `HEAD`, the index or the working tree) fails
    /// with `Conflict` before anything is written.
    async fn apply_replay(&self, repo: &Path, bundle: &ReplayBundle) -> Result<ReplayOutcome>;

    // Workspace git (routes #38–#48). `repo` is a working tree; paths are repo-relative and
    // an adapter refuses any that leave it (`..`, absolute, `.git/…`, through a symlink).
    /// `git status`: branch, upstream distance, staged, unstaged and untracked changes.
    async fn git_status(&self, repo: &Path) -> Result<GitStatus>;
    /// `git fetch` of every remote.
    async fn git_fetch(&self, repo: &Path) -> Result<()>;
    /// Checks out a branch or revision; refuses (`Conflict`) when local changes would be
    /// overwritten, and leaves the tree as it was.
    async fn git_checkout(&self, repo: &Path, reference: &str) -> Result<()>;
    /// Local and remote-tracking branches.
    async fn git_branches(&self, repo: &Path) -> Result<Vec<Branch>>;
    /// Per-file diffs with unified patches (see `DiffQuery` for the sides).
    async fn git_diff(&self, repo: &Path, query: &DiffQuery) -> Result<Vec<FileDiff>>;
    /// Every file and directory of a revision's tree, or of the working tree (tracked and
    /// untracked, not ignored) when `reference` is `None`.
    async fn git_file_tree(&self, repo: &Path, reference: Option<&str>) -> Result<Vec<FileEntry>>;
    /// A file's bytes at a revision, or in the working tree; `NotFound` when absent.
    async fn git_read_file(
        &self,
        repo: &Path,
        path: &str,
        reference: Option<&str>,
    ) -> Result<Vec<u8>>;
    /// Writes a file of the working tree, creating parent directories.
    async fn git_write_file(&self, repo: &Path, path: &str, content: &[u8]) -> Result<()>;
    /// `git add -A` of the given paths (every change when empty).
    async fn git_stage(&self, repo: &Path, paths: &[String]) -> Result<()>;
    /// Commits the index on `HEAD`; `Conflict` when nothing is staged.
    async fn git_commit(&self, repo: &Path, commit: &NewCommit) -> Result<Commit>;
    /// The author identity git is configured with for this repository (its own, global and
    /// system config); `None` when no name or email is set.
    async fn user_identity(&self, _repo: &Path) -> Result<Option<(String, String)>> {
        Ok(None)
    }
    /// Commits reachable from `reference` (default `HEAD`), newest first, at most `limit`.
    async fn git_log(
        &self,
        repo: &Path,
        reference: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Commit>>;
}

/// The state of a sandbox provider, as `GET /api/status` and the providers routes show.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderStatus {
    pub available: bool,
    /// `ready | building | downloading | failed | not_available`
    pub state: String,
    pub message: Option<String>,
}

/// The lifecycle state of a sandbox as its provider sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxState {
    Created,
    Running,
    Stopped,
    Failed,
}

/// What a provider knows of one session's sandbox.
#[derive(Clone, Debug, PartialEq)]
pub struct SandboxInfo {
    pub session_id: SessionId,
    pub state: SandboxState,
    /// The image (or `local`) the sandbox runs.
    pub image: String,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// How to reach a sandbox's agent.
#[derive(Clone, PartialEq)]
pub struct AgentEndpoint {
    /// `http://127.0.0.1:<port>`
    pub base_url: String,
    /// The raw shared secret (a bearer token).
    pub secret: String,
}

impl std::fmt::Debug for AgentEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret opens the agent: never in logs.
        f.debug_struct("AgentEndpoint")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// The result of a buffered command in a sandbox.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// How to open a terminal in a sandbox.
#[derive(Clone, PartialEq)]
pub struct PtyRequest {
    pub rows: u16,
    pub cols: u16,
    /// `root`, or `uid:gid`; `None` is the sandbox's default user.
    pub user: Option<String>,
    pub env: Vec<(String, String)>,
}

impl std::fmt::Debug for PtyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The environment carries credential values: show the names only.
        let env_names: Vec<&str> = self.env.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("PtyRequest")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("user", &self.user)
            .field("env", &env_names)
            .finish()
    }
}

/// A streaming command in a sandbox (for SSH-style sessions, port forwards, file copies):
/// unlike a terminal it is not kept alive or shared, and ends with its command.
#[derive(Clone, PartialEq)]
pub struct ExecStreamRequest {
    pub command: Vec<String>,
    /// With a TTY the output is raw terminal bytes; without, stdout and stderr are merged.
    pub tty: bool,
    pub user: Option<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
}

impl std::fmt::Debug for ExecStreamRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The environment may carry credential values: show the names only.
        let env_names: Vec<&str> = self.env.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ExecStreamRequest")
            .field("command", &self.command)
            .field("tty", &self.tty)
            .field("user", &self.user)
            .field("env", &env_names)
            .field("working_dir", &self.working_dir)
            .finish()
    }
}

/// Live output of a terminal.
#[async_trait]
pub trait TerminalOutput: Send {
    /// The next chunk of output; `None` once the shell exited (or the terminal was closed).
    async fn next_chunk(&mut self) -> Option<Vec<u8>>;
}

/// Input side of a terminal, shared by every connection attached to it.
#[async_trait]
pub trait TerminalControl: Send + Sync {
    async fn write(&self, input: &[u8]) -> Result<()>;
    async fn resize(&self, rows: u16, cols: u16) -> Result<()>;
    /// Closes the input (EOF to the process); a shared terminal ignores it.
    async fn close_input(&self) -> Result<()> {
        Ok(())
    }
}

/// One connection to a persistent terminal: what it printed lately, then live output.
pub struct TerminalAttachment {
    /// The recent output (up to 512 KiB), for a client that (re)connects.
    pub replay: Vec<u8>,
    pub output: Box<dyn TerminalOutput>,
    pub control: std::sync::Arc<dyn TerminalControl>,
}

/// Keeps one shell per key alive across connections.
#[async_trait]
pub trait TerminalHub: Send + Sync {
    /// Attaches to the terminal `key` of the session, starting its shell when there is none,
    /// and resizes it to the request.
    async fn attach(
        &self,
        session: &SessionId,
        key: &str,
        request: PtyRequest,
    ) -> Result<TerminalAttachment>;
    /// Ends every terminal of the session (its sandbox stops or goes away).
    fn close_session(&self, session: &SessionId);
}

/// Something a provider noticed on its own: a sandbox changed state (stopped outside
/// discobot, crashed, removed), or the sandbox image build progressed.
#[derive(Clone, Debug, PartialEq)]
pub enum SandboxEvent {
    Sandbox {
        session_id: SessionId,
        /// `None`: the sandbox was removed.
        state: Option<SandboxState>,
        error: Option<String>,
    },
    /// The sandbox image: `state` is `in_progress`, `completed` or `failed`.
    Image {
        state: String,
        message: Option<String>,
    },
}

/// A provider's stream of `SandboxEvent`s.
#[async_trait]
pub trait SandboxEvents: Send {
    /// The next event; `None` when the provider stopped watching.
    async fn next_event(&mut self) -> Option<SandboxEvent>;
}

/// Runs sessions' sandboxes (Docker containers, or local processes).
#[async_trait]
pub trait SandboxPort: Send + Sync {
    fn name(&self) -> &str;
    async fn status(&self) -> ProviderStatus;
    /// Creates (or restarts) the session's sandbox and waits until its agent answers.
    async fn ensure_running(&self, session: &Session, workspace: &Workspace) -> Result<()>;
    /// Removes the session's sandbox, and its volumes when asked; absent is fine.
    async fn remove(&self, session: &SessionId, remove_volumes: bool) -> Result<()>;
    /// Creates the session's sandbox without starting it (`Conflict` if it exists).
    async fn create(&self, _session: &Session, _workspace: &Workspace) -> Result<()> {
        Err(crate::Error::not_implemented(
            "this sandbox provider cannot create sandboxes",
        ))
    }
    /// Starts a created or stopped sandbox and waits until its agent answers.
    async fn start(&self, _session: &SessionId) -> Result<()> {
        Err(crate::Error::not_implemented(
            "this sandbox provider cannot start sandboxes",
        ))
    }
    /// Stops the sandbox (graceful, then killed after `timeout`); absent is fine.
    async fn stop(&self, _session: &SessionId, _timeout: std::time::Duration) -> Result<()> {
        Ok(())
    }
    /// The sandbox of a session, if one exists.
    async fn get(&self, _session: &SessionId) -> Result<Option<SandboxInfo>> {
        Ok(None)
    }
    /// Every sandbox this provider manages, in any state.
    async fn list(&self) -> Result<Vec<SandboxInfo>> {
        Ok(Vec::new())
    }
    /// Runs a command in the running sandbox and collects its output.
    async fn exec(&self, _session: &SessionId, _command: &[String]) -> Result<ExecOutput> {
        Err(crate::Error::not_implemented(
            "this sandbox provider cannot run commands",
        ))
    }
    /// Where the running sandbox's agent answers, and the raw secret it accepts as bearer
    /// token; the agent client dials this whatever URL host it uses.
    async fn agent_endpoint(&self, _session: &SessionId) -> Result<AgentEndpoint> {
        Err(crate::Error::not_implemented(
            "this sandbox provider has no agent endpoint",
        ))
    }
    /// Starts a command with streamed input and output; `replay` of the answer is empty.
    async fn exec_stream(
        &self,
        _session: &SessionId,
        _request: ExecStreamRequest,
    ) -> Result<TerminalAttachment> {
        Err(crate::Error::not_implemented(
            "this sandbox provider cannot stream commands",
        ))
    }
    /// Changes the provider notices on its own, for as long as the stream is read.
    fn watch(&self) -> Option<Box<dyn SandboxEvents>> {
        None
    }
    /// The provider's persistent terminals, when it offers them.
    fn terminals(&self) -> Option<&dyn TerminalHub> {
        None
    }
    /// The project's cache volumes (provider-defined JSON), when the provider has them.
    async fn cache_volumes(&self, _project: &crate::ids::ProjectId) -> Result<serde_json::Value> {
        Err(crate::Error::not_implemented(
            "Cache volumes not supported by provider",
        ))
    }
    /// Deletes the project's cache volume.
    async fn delete_cache_volume(&self, _project: &crate::ids::ProjectId) -> Result<()> {
        Err(crate::Error::not_implemented(
            "Cache volumes not supported by provider",
        ))
    }
}

/// A live stream of one project's events.
#[async_trait]
pub trait EventStream: Send {
    /// The next event; `None` once the stream was closed (shutdown, or the reader fell so
    /// far behind that it must reconnect and replay).
    async fn next_event(&mut self) -> Option<Event>;
}

/// Hands out live event streams per project.
pub trait EventSubscriber: Send + Sync {
    fn subscribe(&self, project: &ProjectId) -> Box<dyn EventStream>;
}

/// Wakes the local job dispatcher after a job was enqueued.
pub trait JobWaker: Send + Sync {
    fn wake(&self);
}

/// Runs one claimed job; implemented by the use-case layer, driven by the dispatcher.
#[async_trait]
pub trait JobHandler: Send + Sync {
    /// Does the job's work. An error whose kind is `InvalidInput`, `NotFound` or
    /// `NotImplemented` is permanent (retrying cannot help); others are retried.
    async fn run_job(&self, job: &Job) -> Result<JobRun>;
    /// Called once the outcome is recorded; publishes `job_completed`.
    async fn job_finished(&self, job: &Job, error: Option<&str>);
}

/// What a job run asks of the dispatcher when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobRun {
    Done,
    /// Run again after this long without counting an attempt (waiting for another job).
    Defer(std::time::Duration),
}

/// Wakes the local event delivery after an event was appended, so subscribers see it at
/// once instead of at the next poll.
pub trait EventNotifier: Send + Sync {
    fn notify(&self);
}

/// A provider that has no sandboxes; every start fails with a clear message.
pub struct NoSandbox {
    pub reason: String,
}

#[async_trait]
impl SandboxPort for NoSandbox {
    fn name(&self) -> &str {
        "none"
    }
    async fn status(&self) -> ProviderStatus {
        ProviderStatus {
            available: false,
            state: "not_available".into(),
            message: Some(self.reason.clone()),
        }
    }
    async fn ensure_running(&self, _session: &Session, _workspace: &Workspace) -> Result<()> {
        // Not retryable: no amount of waiting makes a provider appear.
        Err(crate::Error::not_implemented(format!(
            "no sandbox provider is available: {}",
            self.reason
        )))
    }
    async fn remove(&self, _session: &SessionId, _remove_volumes: bool) -> Result<()> {
        Ok(())
    }
}

/// Chat prompts by their key (see `PromptSubmission`).
#[async_trait]
pub trait PromptSubmissionRepo: Send + Sync {
    /// Inserts `submission` unless its key (session, thread, client message id) is taken;
    /// returns the row stored under the key: this one, or the earlier one.
    async fn insert_submission_if_absent(
        &self,
        submission: &crate::model::PromptSubmission,
    ) -> Result<crate::model::PromptSubmission>;
    async fn get_submission(&self, id: &str) -> Result<Option<crate::model::PromptSubmission>>;
    /// Writes status, result, error, the sealed payload and `updated_at` of a stored
    /// submission.
    async fn update_submission(&self, submission: &crate::model::PromptSubmission) -> Result<()>;
}

/// Commit bookkeeping of a session to write; `None` leaves a column as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommitRefs {
    /// The commit the sandbox's not yet applied work sits on (a sandbox commit id).
    pub base_commit: Option<String>,
    /// The host commit the last commit operation ended on.
    pub applied_commit: Option<String>,
    /// The host commit the sandbox's clone is based on.
    pub workspace_commit: Option<String>,
}

/// An HTTP method of the agent API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentMethod {
    Get,
    Post,
    Put,
    Delete,
}

/// One call to a session's agent (`discobot-chat-proxy` sends it).
#[derive(Clone, Default)]
pub struct AgentRequest {
    pub method: Option<AgentMethod>,
    /// Path and query, e.g. `/threads/abc/chat` or `/files?path=src`; segments already
    /// percent-encoded by the caller.
    pub path: String,
    /// A JSON body (`Content-Type: application/json`).
    pub body: Option<serde_json::Value>,
    /// `X-Discobot-Credentials` (see `credentials::encode_credentials_header`); a secret.
    pub credentials_header: Option<crate::secrets::Secret>,
    /// `X-Discobot-Git-User-Name` / `-Email`.
    pub git_user_name: Option<String>,
    pub git_user_email: Option<String>,
    /// `Last-Event-ID` for stream requests.
    pub last_event_id: Option<String>,
}

impl std::fmt::Debug for AgentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bodies can hold answers with credentials: only the route is logged.
        f.debug_struct("AgentRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The agent's answer: any status (4xx/5xx included; the use case maps them) and its body,
/// JSON when it parses as such, else the text as a JSON string.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentResponse {
    pub status: u16,
    pub body: serde_json::Value,
}

/// One server-sent event of an agent stream, as the agent framed it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseFrame {
    pub id: Option<String>,
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// An open SSE stream from an agent.
#[async_trait]
pub trait AgentEventStream: Send {
    /// The next frame; `None` when the agent closed the stream; an error when reading failed
    /// mid-way (the stream is over after it).
    async fn next_frame(&mut self) -> Option<Result<SseFrame>>;
}

/// Talks to sandbox agents over HTTP: bearer secret, retries of connection failures and 5xx
/// (up to 15 attempts, backoff 50 ms doubling to 2 s), credentials and git headers.
#[async_trait]
pub trait AgentPort: Send + Sync {
    /// Sends `request`; `Err` only when the agent could not be reached (after retries) or
    /// kept answering 5xx (`Unavailable`/`BadGateway`-like, see the adapter).
    async fn call(&self, endpoint: &AgentEndpoint, request: AgentRequest) -> Result<AgentResponse>;
    /// Opens an SSE stream (`Accept: text/event-stream`); a non-2xx answer is an `Err` with
    /// the agent's error text.
    async fn open_stream(
        &self,
        endpoint: &AgentEndpoint,
        request: AgentRequest,
    ) -> Result<Box<dyn AgentEventStream>>;
}

/// Waits; the use cases have no runtime of their own (core spawns and sleeps nothing), so
/// the binary lends them its timer for the few waits they need (a sandbox becoming ready).
#[async_trait]
pub trait Sleeper: Send + Sync {
    async fn sleep(&self, duration: std::time::Duration);
}
