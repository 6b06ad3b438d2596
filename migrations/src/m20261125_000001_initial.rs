//! The initial schema: users, projects, members, invitations, workspaces, sessions,
//! credentials, events, jobs, preferences and terminal history, plus the seeded anonymous
//! user and `local` project.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The fixed id of the anonymous user (same as `discobot_core::ids::ANONYMOUS_USER_ID`).
const ANONYMOUS_USER_ID: &str = "00000000-0000-0000-0000-000000000001";
/// The fixed id of the anonymous user's membership in the `local` project.
const ANONYMOUS_MEMBER_ID: &str = "00000000-0000-0000-0000-000000000002";
const LOCAL_PROJECT_ID: &str = "local";

/// Makes job de-duplication atomic: at most one pending or running job per resource unless
/// the job allows duplicates. Partial indexes work on SQLite (≥ 3.8) and PostgreSQL; the
/// `false` literal needs SQLite ≥ 3.23 (the bundled one is far newer).
const JOBS_EXCLUSIVE_RESOURCE_INDEX: &str = "CREATE UNIQUE INDEX idx_jobs_exclusive_resource \
     ON jobs (resource_type, resource_id) \
     WHERE allow_duplicates = false AND status IN ('pending', 'running')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_tables(manager).await?;
        seed(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents, so foreign keys never dangle.
        let tables: [DynIden; 13] = [
            TerminalHistory::Table.into_iden(),
            UserPreferences::Table.into_iden(),
            Jobs::Table.into_iden(),
            ProjectEvents::Table.into_iden(),
            SessionCredentialAssignments::Table.into_iden(),
            Credentials::Table.into_iden(),
            Sessions::Table.into_iden(),
            Workspaces::Table.into_iden(),
            ProjectInvitations::Table.into_iden(),
            ProjectMembers::Table.into_iden(),
            Projects::Table.into_iden(),
            UserSessions::Table.into_iden(),
            Users::Table.into_iden(),
        ];
        for table in tables {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }

    /// DDL is transactional on both backends, so a failed migration leaves nothing behind.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

/// "Now" as the column stores it: on SQLite the RFC 3339 text sqlx writes for
/// `DateTime<Utc>` (so text comparisons order correctly), on PostgreSQL a `timestamptz`.
fn now_expr(backend: DbBackend) -> Expr {
    match backend {
        DbBackend::Sqlite => Expr::cust("strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')"),
        _ => Expr::current_timestamp(),
    }
}

fn index(name: &str, table: impl IntoIden) -> IndexCreateStatement {
    Index::create().name(name).table(table).to_owned()
}

fn fk(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::NoAction)
        .on_update(ForeignKeyAction::NoAction)
        .to_owned()
}

async fn create_tables(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Users::Table)
                .col(text(Users::Id).primary_key())
                .col(text_uniq(Users::Email))
                .col(text_null(Users::Name))
                .col(text_null(Users::AvatarUrl))
                .col(text(Users::Provider))
                .col(text(Users::ProviderId))
                .col(timestamp_with_time_zone(Users::CreatedAt))
                .col(timestamp_with_time_zone(Users::UpdatedAt))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index("idx_users_provider", Users::Table)
                .col(Users::Provider)
                .col(Users::ProviderId)
                .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(UserSessions::Table)
                .col(text(UserSessions::Id).primary_key())
                .col(text(UserSessions::UserId))
                .col(text_uniq(UserSessions::TokenHash))
                .col(timestamp_with_time_zone(UserSessions::ExpiresAt))
                .col(timestamp_with_time_zone(UserSessions::CreatedAt))
                .foreign_key(&mut fk(
                    "fk_user_sessions_user",
                    (UserSessions::Table, UserSessions::UserId),
                    (Users::Table, Users::Id),
                ))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index("idx_user_sessions_user_id", UserSessions::Table)
                .col(UserSessions::UserId)
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index("idx_user_sessions_expires_at", UserSessions::Table)
                .col(UserSessions::ExpiresAt)
                .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(Projects::Table)
                .col(text(Projects::Id).primary_key())
                .col(text(Projects::Name))
                .col(text_uniq(Projects::Slug))
                .col(timestamp_with_time_zone(Projects::CreatedAt))
                .col(timestamp_with_time_zone(Projects::UpdatedAt))
                .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(ProjectMembers::Table)
                .col(text(ProjectMembers::Id).primary_key())
                .col(text(ProjectMembers::ProjectId))
                .col(text(ProjectMembers::UserId))
                .col(text(ProjectMembers::Role).default("member"))
                .col(text_null(ProjectMembers::InvitedBy))
                .col(timestamp_with_time_zone_null(ProjectMembers::InvitedAt))
                .col(timestamp_with_time_zone_null(ProjectMembers::AcceptedAt))
                .foreign_key(&mut fk(
                    "fk_project_members_project",
                    (ProjectMembers::Table, ProjectMembers::ProjectId),
                    (Projects::Table, Projects::Id),
                ))
                .foreign_key(&mut fk(
                    "fk_project_members_user",
                    (ProjectMembers::Table, ProjectMembers::UserId),
                    (Users::Table, Users::Id),
                ))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index("idx_project_user", ProjectMembers::Table)
                .col(ProjectMembers::ProjectId)
                .col(ProjectMembers::UserId)
                .unique()
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index("idx_project_members_user_id", ProjectMembers::Table)
                .col(ProjectMembers::UserId)
                .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(ProjectInvitations::Table)
                .col(text(ProjectInvitations::Id).primary_key())
                .col(text(ProjectInvitations::ProjectId))
                .col(text(ProjectInvitations::Email))
                .col(text(ProjectInvitations::Role).default("member"))
                .col(text_null(ProjectInvitations::InvitedBy))
                .col(text_uniq(ProjectInvitations::Token))
                .col(timestamp_with_time_zone(ProjectInvitations::ExpiresAt))
                .col(timestamp_with_time_zone(ProjectInvitations::CreatedAt))
                .foreign_key(&mut fk(
                    "fk_project_invitations_project",
                    (ProjectInvitations::Table, ProjectInvitations::ProjectId),
                    (Projects::Table, Projects::Id),
                ))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index("idx_project_email", ProjectInvitations::Table)
                .col(ProjectInvitations::ProjectId)
                .col(ProjectInvitations::Email)
                .unique()
                .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(Workspaces::Table)
                .col(text(Workspaces::Id).primary_key())
                .col(text(Workspaces::ProjectId))
                .col(text(Workspaces::Path))
                .col(text_null(Workspaces::DisplayName))
                .col(text(Workspaces::SourceType))
                .col(text(Workspaces::Provider).default(""))
                .col(boolean(Workspaces::AutoGenerated).default(false))
                .col(text(Workspaces::Status).default("initializing"))
                .col(text_null(Workspaces::ErrorMessage))
                .col(text_null(Workspaces::WorkDir))
                .col(timestamp_with_time_zone(Workspaces::CreatedAt))
                .col(timestamp_with_time_zone(Workspaces::UpdatedAt))
                .foreign_key(&mut fk(
                    "fk_workspaces_project",
                    (Workspaces::Table, Workspaces::ProjectId),
                    (Projects::Table, Projects::Id),
                ))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index("idx_workspaces_project_id", Workspaces::Table)
                .col(Workspaces::ProjectId)
                .to_owned(),
        )
        .await?;

    // No foreign keys: a soft-deleted session outlives its workspace (and its project), and
    // its id stays taken forever.
    manager
        .create_table(
            Table::create()
                .table(Sessions::Table)
                .col(text(Sessions::Id).primary_key())
                .col(text(Sessions::ProjectId))
                .col(text(Sessions::WorkspaceId))
                .col(text(Sessions::Name).default(""))
                .col(text_null(Sessions::DisplayName))
                .col(text_null(Sessions::Description))
                .col(text(Sessions::Status).default("initializing"))
                .col(text_null(Sessions::CommitStatus))
                .col(text_null(Sessions::CommitOperation))
                .col(text_null(Sessions::CommitError))
                .col(text_null(Sessions::BaseCommit))
                .col(text_null(Sessions::AppliedCommit))
                .col(text_null(Sessions::ErrorMessage))
                .col(text_null(Sessions::WorkspacePath))
                .col(text_null(Sessions::WorkspaceCommit))
                .col(timestamp_with_time_zone(Sessions::CreatedAt))
                .col(timestamp_with_time_zone(Sessions::UpdatedAt))
                .col(timestamp_with_time_zone_null(Sessions::DeletedAt))
                .to_owned(),
        )
        .await?;
    for (name, column) in [
        ("idx_sessions_project_id", Sessions::ProjectId),
        ("idx_sessions_workspace_id", Sessions::WorkspaceId),
        ("idx_sessions_deleted_at", Sessions::DeletedAt),
    ] {
        manager
            .create_index(index(name, Sessions::Table).col(column).to_owned())
            .await?;
    }

    manager
        .create_table(
            Table::create()
                .table(Credentials::Table)
                .col(text(Credentials::Id).primary_key())
                .col(text(Credentials::ProjectId))
                .col(text(Credentials::Provider))
                .col(text(Credentials::Name))
                .col(text_null(Credentials::Description))
                .col(text(Credentials::AuthType))
                .col(blob_null(Credentials::EncryptedData))
                .col(boolean(Credentials::IsConfigured).default(false))
                .col(boolean(Credentials::Inactive).default(false))
                .col(boolean(Credentials::AgentVisible).default(false))
                .col(boolean(Credentials::ConsoleVisible).default(false))
                .col(boolean(Credentials::ServiceVisible).default(false))
                .col(boolean(Credentials::HookVisible).default(false))
                .col(timestamp_with_time_zone(Credentials::CreatedAt))
                .col(timestamp_with_time_zone(Credentials::UpdatedAt))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index("idx_project_provider", Credentials::Table)
                .col(Credentials::ProjectId)
                .col(Credentials::Provider)
                .unique()
                .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(SessionCredentialAssignments::Table)
                .col(text(SessionCredentialAssignments::Id).primary_key())
                .col(text(SessionCredentialAssignments::SessionId))
                .col(text(SessionCredentialAssignments::CredentialId))
                .col(boolean(SessionCredentialAssignments::AgentVisible).default(false))
                .col(timestamp_with_time_zone(
                    SessionCredentialAssignments::CreatedAt,
                ))
                .col(timestamp_with_time_zone(
                    SessionCredentialAssignments::UpdatedAt,
                ))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index(
                "idx_session_credential_assignment",
                SessionCredentialAssignments::Table,
            )
            .col(SessionCredentialAssignments::SessionId)
            .col(SessionCredentialAssignments::CredentialId)
            .unique()
            .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index(
                "idx_session_credential_assignments_credential_id",
                SessionCredentialAssignments::Table,
            )
            .col(SessionCredentialAssignments::CredentialId)
            .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(ProjectEvents::Table)
                .col(big_pk_auto(ProjectEvents::Seq))
                .col(text_uniq(ProjectEvents::Id))
                .col(text(ProjectEvents::ProjectId))
                .col(text(ProjectEvents::Type))
                .col(text(ProjectEvents::Data))
                .col(timestamp_with_time_zone(ProjectEvents::CreatedAt))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index("idx_project_seq", ProjectEvents::Table)
                .col(ProjectEvents::ProjectId)
                .col(ProjectEvents::CreatedAt)
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index("idx_project_events_created_at", ProjectEvents::Table)
                .col(ProjectEvents::CreatedAt)
                .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(Jobs::Table)
                .col(text(Jobs::Id).primary_key())
                .col(text(Jobs::Type))
                .col(text(Jobs::Payload))
                .col(text(Jobs::Status).default("pending"))
                .col(integer(Jobs::Priority).default(0))
                .col(integer(Jobs::Attempts).default(0))
                .col(integer(Jobs::MaxAttempts).default(3))
                .col(text_null(Jobs::Error))
                .col(text_null(Jobs::WorkerId))
                .col(timestamp_with_time_zone_null(Jobs::LeaseExpiresAt))
                .col(timestamp_with_time_zone(Jobs::ScheduledAt))
                .col(timestamp_with_time_zone_null(Jobs::StartedAt))
                .col(timestamp_with_time_zone_null(Jobs::CompletedAt))
                .col(timestamp_with_time_zone(Jobs::CreatedAt))
                .col(timestamp_with_time_zone(Jobs::UpdatedAt))
                .col(text(Jobs::ResourceType))
                .col(text(Jobs::ResourceId))
                .col(boolean(Jobs::AllowDuplicates).default(false))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index("idx_jobs_scheduled_at", Jobs::Table)
                .col(Jobs::ScheduledAt)
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index("idx_job_status_type", Jobs::Table)
                .col(Jobs::Type)
                .col(Jobs::Status)
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index("idx_job_resource", Jobs::Table)
                .col(Jobs::ResourceType)
                .col(Jobs::ResourceId)
                .to_owned(),
        )
        .await?;
    manager
        .get_connection()
        .execute_unprepared(JOBS_EXCLUSIVE_RESOURCE_INDEX)
        .await?;

    manager
        .create_table(
            Table::create()
                .table(UserPreferences::Table)
                .col(text(UserPreferences::Id).primary_key())
                .col(text(UserPreferences::UserId))
                .col(text(UserPreferences::Key))
                .col(text(UserPreferences::Value))
                .col(timestamp_with_time_zone(UserPreferences::CreatedAt))
                .col(timestamp_with_time_zone(UserPreferences::UpdatedAt))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index("idx_user_key", UserPreferences::Table)
                .col(UserPreferences::UserId)
                .col(UserPreferences::Key)
                .unique()
                .to_owned(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table(TerminalHistory::Table)
                .col(text(TerminalHistory::Id).primary_key())
                .col(text(TerminalHistory::SessionId))
                .col(text(TerminalHistory::EntryType))
                .col(text(TerminalHistory::Content))
                .col(integer_null(TerminalHistory::ExitCode))
                .col(timestamp_with_time_zone(TerminalHistory::CreatedAt))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            index("idx_terminal_history_session_id", TerminalHistory::Table)
                .col(TerminalHistory::SessionId)
                .to_owned(),
        )
        .await?;

    Ok(())
}

/// The anonymous user, the `local` project and the user's ownership of it.
async fn seed(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let now = now_expr(manager.get_database_backend());
    manager
        .execute(
            Query::insert()
                .into_table(Users::Table)
                .columns([
                    Users::Id,
                    Users::Email,
                    Users::Name,
                    Users::Provider,
                    Users::ProviderId,
                    Users::CreatedAt,
                    Users::UpdatedAt,
                ])
                .values_panic([
                    ANONYMOUS_USER_ID.into(),
                    "anonymous@local".into(),
                    "Anonymous User".into(),
                    "local".into(),
                    "anonymous".into(),
                    now.clone(),
                    now.clone(),
                ])
                .to_owned(),
        )
        .await?;
    manager
        .execute(
            Query::insert()
                .into_table(Projects::Table)
                .columns([
                    Projects::Id,
                    Projects::Name,
                    Projects::Slug,
                    Projects::CreatedAt,
                    Projects::UpdatedAt,
                ])
                .values_panic([
                    LOCAL_PROJECT_ID.into(),
                    "Local Project".into(),
                    "local".into(),
                    now.clone(),
                    now.clone(),
                ])
                .to_owned(),
        )
        .await?;
    manager
        .execute(
            Query::insert()
                .into_table(ProjectMembers::Table)
                .columns([
                    ProjectMembers::Id,
                    ProjectMembers::ProjectId,
                    ProjectMembers::UserId,
                    ProjectMembers::Role,
                    ProjectMembers::AcceptedAt,
                ])
                .values_panic([
                    ANONYMOUS_MEMBER_ID.into(),
                    LOCAL_PROJECT_ID.into(),
                    ANONYMOUS_USER_ID.into(),
                    "owner".into(),
                    now,
                ])
                .to_owned(),
        )
        .await?;
    Ok(())
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    Name,
    AvatarUrl,
    Provider,
    ProviderId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum UserSessions {
    Table,
    Id,
    UserId,
    TokenHash,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
    Name,
    Slug,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ProjectMembers {
    Table,
    Id,
    ProjectId,
    UserId,
    Role,
    InvitedBy,
    InvitedAt,
    AcceptedAt,
}

#[derive(DeriveIden)]
enum ProjectInvitations {
    Table,
    Id,
    ProjectId,
    Email,
    Role,
    InvitedBy,
    Token,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Workspaces {
    Table,
    Id,
    ProjectId,
    Path,
    DisplayName,
    SourceType,
    Provider,
    AutoGenerated,
    Status,
    ErrorMessage,
    WorkDir,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    ProjectId,
    WorkspaceId,
    Name,
    DisplayName,
    Description,
    Status,
    CommitStatus,
    CommitOperation,
    CommitError,
    BaseCommit,
    AppliedCommit,
    ErrorMessage,
    WorkspacePath,
    WorkspaceCommit,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Credentials {
    Table,
    Id,
    ProjectId,
    Provider,
    Name,
    Description,
    AuthType,
    EncryptedData,
    IsConfigured,
    Inactive,
    AgentVisible,
    ConsoleVisible,
    ServiceVisible,
    HookVisible,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SessionCredentialAssignments {
    Table,
    Id,
    SessionId,
    CredentialId,
    AgentVisible,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ProjectEvents {
    Table,
    Seq,
    Id,
    ProjectId,
    Type,
    Data,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Type,
    Payload,
    Status,
    Priority,
    Attempts,
    MaxAttempts,
    Error,
    WorkerId,
    LeaseExpiresAt,
    ScheduledAt,
    StartedAt,
    CompletedAt,
    CreatedAt,
    UpdatedAt,
    ResourceType,
    ResourceId,
    AllowDuplicates,
}

#[derive(DeriveIden)]
enum UserPreferences {
    Table,
    Id,
    UserId,
    Key,
    Value,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TerminalHistory {
    Table,
    Id,
    SessionId,
    EntryType,
    Content,
    ExitCode,
    CreatedAt,
}
