//! The route table: every route with its method, path, handler name, group, guard and
//! documentation, in one list that builds the router, `GET /api/routes` and the OpenAPI
//! document alike, so the three can never disagree.

use axum::Router;
use axum::handler::Handler;
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use schemars::{JsonSchema, Schema, SchemaGenerator};

use crate::dto::*;
use crate::handlers::{
    chat, credentials, events, members, meta, preferences, projects, session_files, sessions,
    terminal, workspace_git, workspaces, ws,
};
use crate::middleware::require_member;
use crate::state::AppState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// Anyone (health, meta, auth).
    Public,
    /// Any signed-in user (anonymous mode: everyone).
    User,
    /// Members of the project in the path.
    Member,
}

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// A documented route.
#[derive(Clone, Copy)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub handler: &'static str,
    pub group: &'static str,
    pub description: &'static str,
    pub guard: Guard,
    /// `(name, description)` of each query parameter.
    pub query: &'static [(&'static str, &'static str)],
    pub request: Option<SchemaFn>,
    pub response: Option<SchemaFn>,
    /// The status of a successful answer.
    pub success: u16,
    /// Whether the answer is a stream (`text/event-stream`) rather than JSON.
    pub streaming: bool,
    /// Whether the route is registered but its feature has not been built yet (501).
    pub planned: bool,
}

fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

const fn spec(
    method: Method,
    path: &'static str,
    handler: &'static str,
    group: &'static str,
    description: &'static str,
    guard: Guard,
) -> RouteSpec {
    RouteSpec {
        method,
        path,
        handler,
        group,
        description,
        guard,
        query: &[],
        request: None,
        response: None,
        success: 200,
        streaming: false,
        planned: false,
    }
}

impl RouteSpec {
    const fn query(mut self, query: &'static [(&'static str, &'static str)]) -> Self {
        self.query = query;
        self
    }
    fn request<T: JsonSchema>(mut self) -> Self {
        self.request = Some(schema::<T>);
        self
    }
    fn response<T: JsonSchema>(mut self) -> Self {
        self.response = Some(schema::<T>);
        self
    }
    const fn created(mut self) -> Self {
        self.success = 201;
        self
    }
    const fn streaming(mut self) -> Self {
        self.streaming = true;
        self
    }
}

/// Collects specs and the router together.
struct Table {
    /// `None` when only the specs are wanted (for `GET /api/routes` and OpenAPI).
    state: Option<AppState>,
    specs: Vec<RouteSpec>,
    router: Router<AppState>,
}

impl Table {
    fn add<H, T>(&mut self, spec: RouteSpec, handler: H)
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let method_router: MethodRouter<AppState> = match spec.method {
            Method::Get => get(handler),
            Method::Post => post(handler),
            Method::Put => put(handler),
            Method::Patch => patch(handler),
            Method::Delete => delete(handler),
        };
        self.add_method_router(spec, method_router);
    }

    /// Registers a seed route whose feature arrives with a later issue: it answers 501
    /// with a JSON error naming the handler.
    fn planned(&mut self, mut spec: RouteSpec) {
        spec.planned = true;
        let handler = spec.handler;
        let method_router: MethodRouter<AppState> = match spec.method {
            Method::Get => get(move || meta::not_implemented(handler)),
            Method::Post => post(move || meta::not_implemented(handler)),
            Method::Put => put(move || meta::not_implemented(handler)),
            Method::Patch => patch(move || meta::not_implemented(handler)),
            Method::Delete => delete(move || meta::not_implemented(handler)),
        };
        self.add_method_router(spec, method_router);
    }

    fn add_method_router(&mut self, spec: RouteSpec, method_router: MethodRouter<AppState>) {
        self.specs.push(spec);
        let Some(state) = &self.state else {
            return;
        };
        let method_router = match spec.guard {
            Guard::Member => {
                method_router.route_layer(from_fn_with_state(state.clone(), require_member))
            }
            Guard::Public | Guard::User => method_router,
        };
        let router = std::mem::take(&mut self.router);
        // Upstream answers both with and without a trailing slash.
        let router = router.route(spec.path, method_router.clone());
        self.router = router.route(&format!("{}/", spec.path), method_router);
    }
}

/// Every route's documentation, in registration order.
pub fn route_specs() -> Vec<RouteSpec> {
    build(None).0
}

pub(crate) fn build_router(state: AppState) -> (Vec<RouteSpec>, Router<AppState>) {
    build(Some(state))
}

macro_rules! p {
    ($suffix:literal) => {
        concat!("/api/projects/{projectId}", $suffix)
    };
}

fn build(state: Option<AppState>) -> (Vec<RouteSpec>, Router<AppState>) {
    use Guard::{Member, Public, User};
    use Method::{Delete, Get, Patch, Post, Put};
    let mut t = Table {
        state,
        specs: Vec::new(),
        router: Router::new(),
    };

    // Health and meta.
    t.add(
        spec(Get, "/health", "Health", "Health", "Liveness probe", Public),
        meta::health,
    );
    t.add(
        spec(
            Get,
            "/api/status",
            "GetSystemStatus",
            "Health",
            "System requirements and start-up tasks",
            Public,
        ),
        meta::system_status,
    );
    t.add(
        spec(
            Get,
            "/api/server-config",
            "GetServerConfig",
            "Health",
            "Public server configuration for the UI",
            Public,
        ),
        meta::server_config,
    );
    t.add(
        spec(
            Get,
            "/api/support-info",
            "GetSupportInfo",
            "Health",
            "Diagnostics for support (no secrets)",
            Public,
        ),
        meta::support_info,
    );
    t.add(
        spec(
            Get,
            "/api/routes",
            "GetRoutes",
            "Health",
            "Every route with method, path, handler and description",
            Public,
        ),
        meta::get_routes,
    );
    t.add(
        spec(
            Get,
            "/api/openapi.json",
            "GetOpenAPI",
            "Health",
            "OpenAPI 3.1 document of every route",
            Public,
        ),
        meta::openapi,
    );

    // Auth (anonymous mode until the auth issue).
    t.add(
        spec(
            Get,
            "/auth/login",
            "AuthLogin",
            "Auth",
            "Start an OIDC login",
            Public,
        )
        .query(&[("return_to", "where to go after login")]),
        meta::auth_login,
    );
    t.add(
        spec(
            Get,
            "/auth/callback",
            "AuthCallback",
            "Auth",
            "OIDC redirect target",
            Public,
        ),
        meta::auth_callback,
    );
    t.add(
        spec(
            Post,
            "/auth/logout",
            "AuthLogout",
            "Auth",
            "End the login session",
            Public,
        )
        .response::<SuccessResponse>(),
        meta::auth_logout,
    );
    t.add(
        spec(
            Get,
            "/auth/me",
            "AuthMe",
            "Auth",
            "The current user",
            Public,
        ),
        meta::auth_me,
    );

    // Preferences.
    t.add(
        spec(
            Get,
            "/api/preferences",
            "ListPreferences",
            "Preferences",
            "All preferences of the user",
            User,
        )
        .response::<PreferencesResponse>(),
        preferences::list_preferences,
    );
    t.add(
        spec(
            Put,
            "/api/preferences",
            "SetPreferences",
            "Preferences",
            "Set several preferences at once",
            User,
        )
        .request::<SetPreferencesRequest>()
        .response::<PreferencesResponse>(),
        preferences::set_preferences,
    );
    t.add(
        spec(
            Get,
            "/api/preferences/{key}",
            "GetPreference",
            "Preferences",
            "One preference",
            User,
        )
        .response::<PreferenceDto>(),
        preferences::get_preference,
    );
    t.add(
        spec(
            Put,
            "/api/preferences/{key}",
            "SetPreference",
            "Preferences",
            "Create or update a preference",
            User,
        )
        .request::<SetPreferenceRequest>()
        .response::<PreferenceDto>(),
        preferences::set_preference,
    );
    t.add(
        spec(
            Delete,
            "/api/preferences/{key}",
            "DeletePreference",
            "Preferences",
            "Delete a preference",
            User,
        )
        .response::<SuccessResponse>(),
        preferences::delete_preference,
    );

    // Projects.
    t.add(
        spec(
            Get,
            "/api/projects",
            "ListProjects",
            "Projects",
            "Projects the user is a member of",
            User,
        )
        .response::<Vec<ProjectDto>>(),
        projects::list_projects,
    );
    t.add(
        spec(
            Post,
            "/api/projects",
            "CreateProject",
            "Projects",
            "Create a project owned by the user",
            User,
        )
        .request::<ProjectRequest>()
        .response::<ProjectDto>()
        .created(),
        projects::create_project,
    );
    t.add(
        spec(
            Get,
            p!("/events"),
            "Events",
            "Events",
            "Project event stream (SSE) with replay",
            Member,
        )
        .query(&[
            ("since", "RFC 3339 time or unix seconds"),
            ("after", "event id"),
        ])
        .streaming(),
        events::events,
    );
    t.add(
        spec(
            Get,
            p!("/ws"),
            "ChatWebSocket",
            "Chat",
            "Multiplexed chat, service and event streams (WebSocket)",
            Member,
        ),
        ws::project_ws,
    );
    t.add(
        spec(Get, P_ROOT, "GetProject", "Projects", "One project", Member).response::<ProjectDto>(),
        projects::get_project,
    );
    t.add(
        spec(
            Put,
            P_ROOT,
            "UpdateProject",
            "Projects",
            "Rename a project (admin)",
            Member,
        )
        .request::<ProjectRequest>()
        .response::<ProjectDto>(),
        projects::update_project,
    );
    t.add(
        spec(
            Delete,
            P_ROOT,
            "DeleteProject",
            "Projects",
            "Delete a project (owner)",
            Member,
        )
        .response::<SuccessResponse>(),
        projects::delete_project,
    );

    // Members and invitations.
    t.add(
        spec(
            Get,
            p!("/members"),
            "ListProjectMembers",
            "Members",
            "Project members",
            Member,
        )
        .response::<Vec<MemberDto>>(),
        members::list_members,
    );
    t.add(
        spec(
            Delete,
            p!("/members/{userId}"),
            "RemoveProjectMember",
            "Members",
            "Remove a member (admin)",
            Member,
        )
        .response::<SuccessResponse>(),
        members::remove_member,
    );
    t.add(
        spec(
            Post,
            p!("/invitations"),
            "CreateInvitation",
            "Members",
            "Invite someone by email (admin)",
            Member,
        )
        .request::<InvitationRequest>()
        .response::<InvitationDto>()
        .created(),
        members::create_invitation,
    );
    t.add(
        spec(
            Post,
            p!("/invitations/{token}/accept"),
            "AcceptInvitation",
            "Members",
            "Join a project with an invitation token",
            User,
        )
        .response::<SuccessResponse>(),
        members::accept_invitation,
    );

    // Cache volumes, models, providers.
    t.add(
        spec(
            Get,
            p!("/cache"),
            "ListProjectCacheVolumes",
            "Cache",
            "Cache volumes of the project",
            Member,
        ),
        meta::list_cache_volumes,
    );
    t.add(
        spec(
            Delete,
            p!("/cache"),
            "DeleteProjectCacheVolume",
            "Cache",
            "Delete the project cache volume (admin)",
            Member,
        ),
        meta::delete_cache_volume,
    );
    t.add(
        spec(
            Get,
            p!("/models"),
            "GetProjectModels",
            "Models",
            "Models available with the project's credentials",
            Member,
        )
        .response::<ModelsResponse>(),
        meta::project_models,
    );
    t.add(
        spec(
            Get,
            p!("/workspaces/providers"),
            "GetProviders",
            "Providers",
            "Sandbox providers and their status",
            Member,
        ),
        meta::get_providers,
    );
    t.add(
        spec(
            Get,
            p!("/workspaces/providers/{provider}"),
            "GetProvider",
            "Providers",
            "One sandbox provider's status",
            Member,
        ),
        meta::get_provider,
    );

    // Workspaces.
    t.add(
        spec(
            Get,
            p!("/workspaces"),
            "ListWorkspaces",
            "Workspaces",
            "Workspaces of the project",
            Member,
        )
        .response::<WorkspacesResponse>(),
        workspaces::list_workspaces,
    );
    t.add(
        spec(
            Post,
            p!("/workspaces"),
            "CreateWorkspace",
            "Workspaces",
            "Register a local folder or a git URL",
            Member,
        )
        .request::<CreateWorkspaceRequest>()
        .response::<WorkspaceDto>()
        .created(),
        workspaces::create_workspace,
    );
    t.add(
        spec(
            Post,
            p!("/workspaces/validate"),
            "ValidateWorkspace",
            "Workspaces",
            "Check a path or repository before creating a workspace",
            Member,
        )
        .request::<ValidateWorkspaceRequest>()
        .response::<ValidateWorkspaceResponse>(),
        workspaces::validate_workspace,
    );
    t.add(
        spec(
            Get,
            p!("/workspaces/{workspaceId}"),
            "GetWorkspace",
            "Workspaces",
            "One workspace with its sessions",
            Member,
        )
        .response::<WorkspaceDto>(),
        workspaces::get_workspace,
    );
    t.add(
        spec(
            Put,
            p!("/workspaces/{workspaceId}"),
            "UpdateWorkspace",
            "Workspaces",
            "Change a workspace's path or display name",
            Member,
        )
        .request::<UpdateWorkspaceRequest>()
        .response::<WorkspaceDto>(),
        workspaces::update_workspace,
    );
    t.add(
        spec(
            Delete,
            p!("/workspaces/{workspaceId}"),
            "DeleteWorkspace",
            "Workspaces",
            "Delete a workspace and its sessions",
            Member,
        )
        .query(&[(
            "deleteFiles",
            "also remove a working directory discobot created",
        )])
        .response::<SuccessResponse>(),
        workspaces::delete_workspace,
    );
    t.add(
        spec(
            Get,
            p!("/workspaces/{workspaceId}/git/status"),
            "GetWorkspaceGitStatus",
            "Git",
            "Git status of the workspace",
            Member,
        )
        .response::<GitStatusDto>(),
        workspace_git::get_status,
    );
    t.add(
        spec(
            Post,
            p!("/workspaces/{workspaceId}/git/fetch"),
            "FetchWorkspace",
            "Git",
            "Fetch from the remote",
            Member,
        )
        .response::<SuccessResponse>(),
        workspace_git::fetch,
    );
    t.add(
        spec(
            Post,
            p!("/workspaces/{workspaceId}/git/checkout"),
            "CheckoutWorkspace",
            "Git",
            "Check out a ref",
            Member,
        )
        .request::<GitCheckoutRequest>()
        .response::<SuccessResponse>(),
        workspace_git::checkout,
    );
    t.add(
        spec(
            Get,
            p!("/workspaces/{workspaceId}/git/branches"),
            "GetWorkspaceBranches",
            "Git",
            "Branches of the workspace",
            Member,
        )
        .response::<GitBranchesResponse>(),
        workspace_git::get_branches,
    );
    t.add(
        spec(
            Get,
            p!("/workspaces/{workspaceId}/git/diff"),
            "GetWorkspaceDiff",
            "Git",
            "Diff of the workspace",
            Member,
        )
        .query(&[
            (
                "base",
                "old side (a revision); without head, compared with the working tree",
            ),
            ("head", "new side (a revision); base defaults to HEAD"),
            ("staged", "true: the index against HEAD"),
            ("path", "limit to this file or directory (repeatable)"),
        ])
        .response::<GitDiffResponse>(),
        workspace_git::get_diff,
    );
    t.add(
        spec(
            Get,
            p!("/workspaces/{workspaceId}/git/files"),
            "GetWorkspaceFileTree",
            "Git",
            "File tree at a ref",
            Member,
        )
        .query(&[("ref", "a revision; the working tree when absent")])
        .response::<GitFileTreeResponse>(),
        workspace_git::get_file_tree,
    );
    t.add(
        spec(
            Get,
            p!("/workspaces/{workspaceId}/git/file"),
            "GetWorkspaceFileContent",
            "Git",
            "File content at a ref",
            Member,
        )
        .query(&[
            ("path", "repository-relative path (required)"),
            ("ref", "a revision; the working tree when absent"),
        ])
        .response::<GitFileContentResponse>(),
        workspace_git::get_file,
    );
    t.add(
        spec(
            Post,
            p!("/workspaces/{workspaceId}/git/file"),
            "WriteWorkspaceFile",
            "Git",
            "Write a file",
            Member,
        )
        .request::<GitWriteFileRequest>()
        .response::<SuccessResponse>(),
        workspace_git::write_file,
    );
    t.add(
        spec(
            Post,
            p!("/workspaces/{workspaceId}/git/stage"),
            "StageWorkspaceFiles",
            "Git",
            "Stage files",
            Member,
        )
        .request::<GitStageRequest>()
        .response::<SuccessResponse>(),
        workspace_git::stage,
    );
    t.add(
        spec(
            Post,
            p!("/workspaces/{workspaceId}/git/commit"),
            "CommitWorkspace",
            "Git",
            "Commit staged changes",
            Member,
        )
        .request::<GitCommitRequest>()
        .response::<GitCommitDto>()
        .created(),
        workspace_git::commit,
    );
    t.add(
        spec(
            Get,
            p!("/workspaces/{workspaceId}/git/log"),
            "GetWorkspaceLog",
            "Git",
            "Commit history",
            Member,
        )
        .query(&[
            ("limit", "most commits to return (digits, > 0; default 50)"),
            ("ref", "start from this revision instead of HEAD"),
        ])
        .response::<GitLogResponse>(),
        workspace_git::get_log,
    );

    // Sessions.
    t.add(
        spec(
            Get,
            p!("/sessions"),
            "ListSessions",
            "Sessions",
            "Sessions of the project",
            Member,
        )
        .response::<SessionsResponse>(),
        sessions::list_sessions,
    );
    t.add(
        spec(
            Post,
            p!("/sessions"),
            "CreateSession",
            "Sessions",
            "Create a session (and its sandbox)",
            Member,
        )
        .request::<CreateSessionRequest>()
        .response::<CreateSessionResponse>(),
        sessions::create_session,
    );
    t.add(
        spec(
            Post,
            p!("/sessions/{sessionId}/threads/{threadId}/chat"),
            "Chat",
            "Chat",
            "Send a message (creates the session when new)",
            Member,
        )
        .request::<ChatRequest>()
        .response::<ChatResponse>(),
        chat::chat,
    );
    t.add(
        spec(
            Get,
            p!("/sessions/{sessionId}"),
            "GetSession",
            "Sessions",
            "One session",
            Member,
        )
        .response::<SessionDto>(),
        sessions::get_session,
    );
    t.add(
        spec(
            Put,
            p!("/sessions/{sessionId}"),
            "UpdateSession",
            "Sessions",
            "Rename a session or set its status",
            Member,
        )
        .request::<UpdateSessionRequest>()
        .response::<SessionDto>(),
        sessions::update_session,
    );
    t.add(
        spec(
            Patch,
            p!("/sessions/{sessionId}"),
            "UpdateSession",
            "Sessions",
            "Rename a session or set its status",
            Member,
        )
        .request::<UpdateSessionRequest>()
        .response::<SessionDto>(),
        sessions::update_session,
    );
    t.add(
        spec(
            Delete,
            p!("/sessions/{sessionId}"),
            "DeleteSession",
            "Sessions",
            "Delete a session and its sandbox (asynchronous)",
            Member,
        )
        .response::<SuccessResponse>(),
        sessions::delete_session,
    );
    t.add(
        spec(
            Post,
            p!("/sessions/{sessionId}/commit"),
            "CommitSession",
            "Sessions",
            "Commit the session's work to the workspace (asynchronous)",
            Member,
        )
        .response::<SuccessResponse>(),
        sessions::commit_session,
    );
    t.add(
        spec(
            Post,
            p!("/sessions/{sessionId}/rebase"),
            "RebaseSession",
            "Sessions",
            "Rebase the session's work onto the workspace HEAD (asynchronous)",
            Member,
        )
        .response::<SuccessResponse>(),
        sessions::rebase_session,
    );
    session_agent_routes(&mut t);
    t.add(
        spec(
            Get,
            p!("/sessions/{sessionId}/credentials"),
            "ListSessionCredentialAssignments",
            "Credentials",
            "Every project credential with the session's settings for it",
            Member,
        )
        .response::<SessionCredentialsResponse>(),
        credentials::list_session_credentials,
    );
    t.add(
        spec(
            Put,
            p!("/sessions/{sessionId}/credentials"),
            "SetSessionCredentialAssignments",
            "Credentials",
            "Replace the session's credential assignments",
            Member,
        )
        .request::<SetSessionCredentialsRequest>()
        .response::<SessionCredentialsResponse>(),
        credentials::set_session_credentials,
    );
    t.add(
        spec(
            Get,
            p!("/sessions/{sessionId}/terminal/ws"),
            "TerminalWebSocket",
            "Terminal",
            "Terminal in the sandbox (WebSocket)",
            Member,
        )
        .query(&[
            ("rows", "terminal rows"),
            ("cols", "terminal columns"),
            ("root", "true for a root shell"),
        ])
        .streaming(),
        terminal::terminal_ws,
    );
    t.add(
        spec(
            Get,
            p!("/sessions/{sessionId}/terminal/history"),
            "GetTerminalHistory",
            "Terminal",
            "Recorded terminal history, newest first",
            Member,
        )
        .query(&[("limit", "maximum entries (default 100)")])
        .response::<TerminalHistoryResponse>(),
        sessions::get_terminal_history,
    );
    t.add(
        spec(
            Get,
            p!("/sessions/{sessionId}/terminal/status"),
            "GetTerminalStatus",
            "Terminal",
            "State of the session's sandbox",
            Member,
        ),
        terminal::terminal_status,
    );
    for (method, suffix, handler, group, description) in SESSION_PLANNED_LATE {
        t.planned(spec(*method, suffix, handler, group, description, Member));
    }
    t.add(
        spec(
            Get,
            p!("/sessions/{sessionId}/models"),
            "GetSessionModels",
            "Sessions",
            "Models available to the session (the agent's, else the project's)",
            Member,
        )
        .response::<SessionModelsResponse>(),
        chat::session_models,
    );
    t.add(
        spec(
            Get,
            p!("/auth-providers"),
            "GetAuthProviders",
            "Other",
            "Credential providers the UI can offer",
            Member,
        )
        .response::<AuthProvidersResponse>(),
        chat::auth_providers,
    );
    t.add(
        spec(
            Get,
            p!("/suggestions"),
            "GetSuggestions",
            "Other",
            "Directory suggestions for the path picker",
            Member,
        )
        .query(&[("q", "path prefix"), ("type", "path")])
        .response::<SuggestionsResponse>(),
        workspaces::get_suggestions,
    );
    t.add(
        spec(
            Get,
            p!("/credentials/types"),
            "GetCredentialTypes",
            "Credentials",
            "Credential types the UI can create",
            Member,
        )
        .response::<CredentialTypesResponse>(),
        credentials::credential_types,
    );
    t.add(
        spec(
            Get,
            p!("/credentials"),
            "ListCredentials",
            "Credentials",
            "Credentials of the project (which fields are set, never secrets)",
            Member,
        )
        .response::<CredentialsResponse>(),
        credentials::list_credentials,
    );
    t.add(
        spec(
            Post,
            p!("/credentials"),
            "CreateCredential",
            "Credentials",
            "Create or update a credential (secrets are sealed at rest)",
            Member,
        )
        .request::<CreateCredentialRequest>()
        .response::<CredentialInfoDto>(),
        credentials::create_credential,
    );
    t.add(
        spec(
            Get,
            p!("/credentials/{provider}"),
            "GetCredential",
            "Credentials",
            "One credential by provider or id (no secrets)",
            Member,
        )
        .response::<CredentialInfoDto>(),
        credentials::get_credential,
    );
    t.add(
        spec(
            Delete,
            p!("/credentials/{provider}"),
            "DeleteCredential",
            "Credentials",
            "Delete a credential (by provider or id) and its session assignments",
            Member,
        )
        .response::<StatusResponse>(),
        credentials::delete_credential,
    );
    for (method, suffix, handler, description) in CREDENTIALS_PLANNED {
        t.planned(spec(
            *method,
            suffix,
            handler,
            "Credentials",
            description,
            Member,
        ));
    }
    t.add(
        spec(
            Post,
            p!("/credentials/mcp"),
            "PostMCPToken",
            "Credentials",
            "Store an MCP OAuth token from the agent",
            Member,
        )
        .request::<McpTokenRequest>()
        .response::<StatusResponse>(),
        credentials::post_mcp_token,
    );
    (t.specs, t.router)
}

const P_ROOT: &str = "/api/projects/{projectId}";

const SESSION_PLANNED_LATE: &[(Method, &str, &str, &str, &str)] = &[
    (
        Method::Get,
        p!("/sessions/{sessionId}/hooks/status"),
        "GetHooksStatus",
        "Hooks",
        "Status of the sandbox hooks",
    ),
    (
        Method::Get,
        p!("/sessions/{sessionId}/hooks/{hookId}/output"),
        "GetHookOutput",
        "Hooks",
        "Output of a hook",
    ),
    (
        Method::Get,
        p!("/sessions/{sessionId}/hooks/{hookId}/output/download"),
        "DownloadHookOutput",
        "Hooks",
        "Download a hook's output",
    ),
    (
        Method::Post,
        p!("/sessions/{sessionId}/hooks/{hookId}/rerun"),
        "RerunHook",
        "Hooks",
        "Run a hook again",
    ),
    (
        Method::Get,
        p!("/sessions/{sessionId}/services"),
        "ListServices",
        "Services",
        "Services of the sandbox",
    ),
    (
        Method::Post,
        p!("/sessions/{sessionId}/services/{serviceId}/start"),
        "StartService",
        "Services",
        "Start a service",
    ),
    (
        Method::Post,
        p!("/sessions/{sessionId}/services/{serviceId}/stop"),
        "StopService",
        "Services",
        "Stop a service",
    ),
    (
        Method::Get,
        p!("/sessions/{sessionId}/services/{serviceId}/output"),
        "GetServiceOutput",
        "Services",
        "Service output (SSE)",
    ),
];

const CREDENTIALS_PLANNED: &[(Method, &str, &str, &str)] = &[
    (
        Method::Post,
        p!("/credentials/{provider}/refresh"),
        "RefreshCredential",
        "Refresh an OAuth credential",
    ),
    (
        Method::Post,
        p!("/credentials/anthropic/authorize"),
        "AnthropicAuthorize",
        "Start Anthropic OAuth",
    ),
    (
        Method::Post,
        p!("/credentials/anthropic/exchange"),
        "AnthropicExchange",
        "Finish Anthropic OAuth",
    ),
    (
        Method::Post,
        p!("/credentials/github-copilot/device-code"),
        "GitHubCopilotDeviceCode",
        "Start the Copilot device flow",
    ),
    (
        Method::Post,
        p!("/credentials/github-copilot/poll"),
        "GitHubCopilotPoll",
        "Poll the Copilot device flow",
    ),
    (
        Method::Post,
        p!("/credentials/github-git/device-code"),
        "GitHubDeviceCode",
        "Start the GitHub device flow",
    ),
    (
        Method::Post,
        p!("/credentials/github-git/poll"),
        "GitHubPoll",
        "Poll the GitHub device flow",
    ),
    (
        Method::Post,
        p!("/credentials/codex/authorize"),
        "CodexAuthorize",
        "Start Codex OAuth",
    ),
    (
        Method::Post,
        p!("/credentials/codex/exchange"),
        "CodexExchange",
        "Finish Codex OAuth",
    ),
    (
        Method::Post,
        p!("/credentials/codex/device-code"),
        "CodexDeviceCode",
        "Start the Codex device flow",
    ),
    (
        Method::Post,
        p!("/credentials/codex/poll"),
        "CodexPoll",
        "Poll the Codex device flow",
    ),
    (
        Method::Post,
        p!("/credentials/codex/callback-status"),
        "CodexCallbackStatus",
        "State of the Codex loopback callback",
    ),
];

/// The routes forwarded to a session's agent (files, diff, threads, chat stream and turn
/// control), in upstream's registration order.
fn session_agent_routes(t: &mut Table) {
    use Guard::Member;
    use Method::{Delete, Get, Patch, Post, Put};
    t.add(
        spec(
            Get,
            p!("/sessions/{sessionId}/files"),
            "ListSessionFiles",
            "Files",
            "List a directory of the session's workspace",
            Member,
        )
        .query(&[
            ("path", "directory (default .)"),
            ("hidden", "true to list dotfiles"),
        ])
        .response::<FileListResponse>(),
        session_files::list_files,
    );
    t.add(
        spec(
            Get,
            p!("/sessions/{sessionId}/files/search"),
            "SearchSessionFiles",
            "Files",
            "Fuzzy file search",
            Member,
        )
        .query(&[
            ("q", "query"),
            ("limit", "maximum results (default 50, at most 200)"),
        ])
        .response::<FileSearchResponse>(),
        session_files::search_files,
    );
    t.add(
        spec(
            Get,
            p!("/sessions/{sessionId}/files/read"),
            "ReadSessionFile",
            "Files",
            "Read a file (fromBase: as it was at the session's base commit)",
            Member,
        )
        .query(&[
            ("path", "file path (required)"),
            ("fromBase", "true to read the base commit"),
        ])
        .response::<FileReadResponse>(),
        session_files::read_file,
    );
    t.add(
        spec(
            Put,
            p!("/sessions/{sessionId}/files/write"),
            "WriteSessionFile",
            "Files",
            "Write a file",
            Member,
        )
        .request::<WriteFileRequest>()
        .response::<FileWriteResponse>(),
        session_files::write_file,
    );
    t.add(
        spec(
            Post,
            p!("/sessions/{sessionId}/files/delete"),
            "DeleteSessionFile",
            "Files",
            "Delete a file",
            Member,
        )
        .request::<DeleteFileRequest>()
        .response::<FileDeleteResponse>(),
        session_files::delete_file,
    );
    t.add(
        spec(
            Post,
            p!("/sessions/{sessionId}/files/rename"),
            "RenameSessionFile",
            "Files",
            "Rename a file",
            Member,
        )
        .request::<RenameFileRequest>()
        .response::<RenameFileRequest>(),
        session_files::rename_file,
    );
    t.add(
        spec(
            Get,
            p!("/sessions/{sessionId}/diff"),
            "GetSessionDiff",
            "Files",
            "Diff of the session's work",
            Member,
        )
        .query(&[
            ("path", "one file"),
            ("format", "files: paths and statuses only"),
        ])
        .response::<DiffResponse>(),
        session_files::diff,
    );
    t.add(
        spec(
            Get,
            p!("/sessions/{sessionId}/threads"),
            "ListThreads",
            "Threads",
            "Chat threads of the session",
            Member,
        )
        .response::<ThreadsResponse>(),
        chat::list_threads,
    );
    t.add(
        spec(
            Post,
            p!("/sessions/{sessionId}/threads"),
            "CreateThread",
            "Threads",
            "Create a thread",
            Member,
        )
        .request::<CreateThreadRequest>()
        .response::<ThreadDto>()
        .created(),
        chat::create_thread,
    );
    t.add(
        spec(
            Get,
            p!("/sessions/{sessionId}/threads/{threadId}"),
            "GetThread",
            "Threads",
            "One thread",
            Member,
        )
        .response::<ThreadDto>(),
        chat::get_thread,
    );
    for method in [Put, Patch] {
        t.add(
            spec(
                method,
                p!("/sessions/{sessionId}/threads/{threadId}"),
                "UpdateThread",
                "Threads",
                "Rename a thread",
                Member,
            )
            .request::<UpdateThreadRequest>()
            .response::<ThreadDto>(),
            chat::update_thread,
        );
    }
    t.add(
        spec(
            Delete,
            p!("/sessions/{sessionId}/threads/{threadId}"),
            "DeleteThread",
            "Threads",
            "Delete a thread (cancels its running turn)",
            Member,
        )
        .response::<SuccessResponse>(),
        chat::delete_thread,
    );
    t.add(
        spec(
            Delete,
            p!("/sessions/{sessionId}/threads/{threadId}/queue/{queueId}"),
            "DeleteQueuedPrompt",
            "Threads",
            "Drop a queued prompt",
            Member,
        )
        .response::<SuccessResponse>(),
        chat::delete_queued_prompt,
    );
    t.add(
        spec(
            Get,
            p!("/sessions/{sessionId}/threads/{threadId}/stream"),
            "ChatStream",
            "Chat",
            "Resumable chat stream (SSE; Last-Event-ID resumes)",
            Member,
        )
        .streaming(),
        chat::chat_stream,
    );
    t.add(
        spec(
            Post,
            p!("/sessions/{sessionId}/threads/{threadId}/cancel"),
            "ChatCancel",
            "Chat",
            "Cancel the running turn",
            Member,
        )
        .response::<ChatCancelResponse>(),
        chat::chat_cancel,
    );
    t.add(
        spec(
            Get,
            p!("/sessions/{sessionId}/threads/{threadId}/question/{questionId}"),
            "ChatQuestion",
            "Chat",
            "A pending question of the agent",
            Member,
        )
        .response::<PendingQuestionResponse>(),
        chat::chat_question,
    );
    t.add(
        spec(
            Post,
            p!("/sessions/{sessionId}/threads/{threadId}/answer/{questionId}"),
            "ChatAnswer",
            "Chat",
            "Answer the agent's question",
            Member,
        )
        .request::<ChatAnswerRequest>()
        .response::<SuccessResponse>(),
        chat::chat_answer,
    );
}
