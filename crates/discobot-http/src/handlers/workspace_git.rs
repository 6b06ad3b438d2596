//! Workspace git: status, fetch, checkout, branches, diff, file tree, file read/write,
//! stage, commit and log of a workspace's working tree (routes #38–#48).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use discobot_core::git::{DiffQuery, NewCommit};
use discobot_core::ids::WorkspaceId;

use crate::dto::{
    GitBranchDto, GitBranchesResponse, GitCheckoutRequest, GitCommitDto, GitCommitRequest,
    GitDiffResponse, GitFileContentResponse, GitFileDiffDto, GitFileEntryDto, GitFileTreeResponse,
    GitLogResponse, GitStageRequest, GitStatusDto, GitWriteFileRequest, SuccessResponse,
};
use crate::error::ApiResult;
use crate::extract::{Access, ApiPath, ApiQuery, JsonBody};
use crate::state::AppState;

/// Query pairs in order, so that a repeated key (`path=a&path=b`) keeps every value.
type QueryPairs = Vec<(String, String)>;

fn last(query: &QueryPairs, key: &str) -> Option<String> {
    query
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

pub(crate) async fn get_status(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<GitStatusDto>> {
    let status = state
        .app()
        .workspace_git_status(&access, &WorkspaceId::new(id))
        .await?;
    Ok(Json(GitStatusDto::new(&status)))
}

pub(crate) async fn fetch(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<SuccessResponse>> {
    state
        .app()
        .fetch_workspace(&access, &WorkspaceId::new(id))
        .await?;
    Ok(Json(SuccessResponse::OK))
}

pub(crate) async fn checkout(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
    JsonBody(request): JsonBody<GitCheckoutRequest>,
) -> ApiResult<Json<SuccessResponse>> {
    state
        .app()
        .checkout_workspace(
            &access,
            &WorkspaceId::new(id),
            request.reference.as_deref().unwrap_or_default(),
        )
        .await?;
    Ok(Json(SuccessResponse::OK))
}

pub(crate) async fn get_branches(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<GitBranchesResponse>> {
    let branches = state
        .app()
        .workspace_branches(&access, &WorkspaceId::new(id))
        .await?;
    Ok(Json(GitBranchesResponse {
        branches: branches
            .into_iter()
            .map(|b| GitBranchDto {
                name: b.name,
                is_remote: b.is_remote,
                is_current: b.is_current,
                commit: b.commit,
                upstream: b.upstream,
            })
            .collect(),
    }))
}

pub(crate) async fn get_diff(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<QueryPairs>,
) -> ApiResult<Json<GitDiffResponse>> {
    let diff_query = DiffQuery {
        base: last(&query, "base"),
        // The registry metadata of the reference names it `target`; its handler reads `head`.
        head: last(&query, "head").or_else(|| last(&query, "target")),
        staged: last(&query, "staged").as_deref() == Some("true"),
        paths: query
            .iter()
            .filter(|(k, _)| k == "path")
            .map(|(_, v)| v.clone())
            .collect(),
    };
    let diffs = state
        .app()
        .workspace_diff(&access, &WorkspaceId::new(id), diff_query)
        .await?;
    Ok(Json(GitDiffResponse {
        diffs: diffs
            .into_iter()
            .map(|d| GitFileDiffDto {
                path: d.path,
                old_path: d.old_path,
                status: d.status,
                binary: d.binary,
                additions: d.additions,
                deletions: d.deletions,
                patch: d.patch,
            })
            .collect(),
    }))
}

pub(crate) async fn get_file_tree(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<QueryPairs>,
) -> ApiResult<Json<GitFileTreeResponse>> {
    let files = state
        .app()
        .workspace_file_tree(&access, &WorkspaceId::new(id), last(&query, "ref"))
        .await?;
    Ok(Json(GitFileTreeResponse {
        files: files
            .into_iter()
            .map(|f| GitFileEntryDto {
                path: f.path,
                name: f.name,
                is_dir: f.is_dir,
                size: f.size,
                mode: f.mode,
            })
            .collect(),
    }))
}

pub(crate) async fn get_file(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<QueryPairs>,
) -> ApiResult<Json<GitFileContentResponse>> {
    let path = last(&query, "path").unwrap_or_default();
    let file = state
        .app()
        .workspace_file(&access, &WorkspaceId::new(id), &path, last(&query, "ref"))
        .await?;
    Ok(Json(GitFileContentResponse {
        path: file.path,
        reference: file.reference,
        content: file.content,
    }))
}

pub(crate) async fn write_file(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
    JsonBody(request): JsonBody<GitWriteFileRequest>,
) -> ApiResult<Json<SuccessResponse>> {
    state
        .app()
        .write_workspace_file(
            &access,
            &WorkspaceId::new(id),
            &request.path,
            &request.content,
        )
        .await?;
    Ok(Json(SuccessResponse::OK))
}

pub(crate) async fn stage(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
    JsonBody(request): JsonBody<GitStageRequest>,
) -> ApiResult<Json<SuccessResponse>> {
    state
        .app()
        .stage_workspace_files(
            &access,
            &WorkspaceId::new(id),
            request.paths.unwrap_or_default(),
        )
        .await?;
    Ok(Json(SuccessResponse::OK))
}

pub(crate) async fn commit(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
    JsonBody(request): JsonBody<GitCommitRequest>,
) -> ApiResult<(StatusCode, Json<GitCommitDto>)> {
    let commit = state
        .app()
        .commit_workspace(
            &access,
            &WorkspaceId::new(id),
            NewCommit {
                message: request.message,
                author_name: request.author_name,
                author_email: request.author_email,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(GitCommitDto::new(&commit))))
}

pub(crate) async fn get_log(
    State(state): State<AppState>,
    Access(access): Access,
    ApiPath((_project, id)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<QueryPairs>,
) -> ApiResult<Json<GitLogResponse>> {
    let limit = last(&query, "limit");
    let commits = state
        .app()
        .workspace_log(
            &access,
            &WorkspaceId::new(id),
            last(&query, "ref"),
            limit.as_deref(),
        )
        .await?;
    Ok(Json(GitLogResponse {
        commits: commits.iter().map(GitCommitDto::new).collect(),
    }))
}
