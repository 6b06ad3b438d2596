//! The store's error type and its mapping to the domain's `ErrorKind`.

use sea_orm::{DbErr, SqlErr};

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A unique key clash or a state that forbids the write.
    #[error("{0}")]
    Conflict(String),
    /// The SQLite file is held by another process.
    #[error("{0}")]
    Locked(String),
    /// A value the database cannot store (PostgreSQL text cannot hold NUL characters).
    #[error("{0}")]
    Invalid(String),
    /// Anything else: connection failures, bad URLs, SQL errors, corrupt rows.
    #[error("{0}")]
    Other(String),
}

impl StoreError {
    pub(crate) fn other(message: impl Into<String>) -> Self {
        StoreError::Other(message.into())
    }

    /// A row whose stored text does not parse (a status nobody writes, broken JSON).
    pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> Self {
        StoreError::Other(format!("corrupt {what} in the database: {error}"))
    }
}

impl From<DbErr> for StoreError {
    fn from(error: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(message)) = error.sql_err() {
            return StoreError::Conflict(format!("already exists: {message}"));
        }
        if is_untextable(&error) {
            return StoreError::Invalid("text must not contain NUL characters".into());
        }
        match error {
            DbErr::RecordNotFound(message) => StoreError::NotFound(message),
            DbErr::RecordNotUpdated => StoreError::NotFound("record not found".into()),
            other => StoreError::Other(format!("database error: {other}")),
        }
    }
}

impl From<StoreError> for discobot_core::Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(message) => discobot_core::Error::not_found(message),
            StoreError::Invalid(message) => discobot_core::Error::invalid(message),
            StoreError::Conflict(message) => discobot_core::Error::conflict(message),
            StoreError::Locked(message) | StoreError::Other(message) => {
                discobot_core::Error::internal(message)
            }
        }
    }
}

/// PostgreSQL's answer to a NUL byte in a text parameter (SQLSTATE 22021,
/// `character_not_in_repertoire`): input no row can match or hold, not a server fault.
fn is_untextable(error: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    let (DbErr::Query(RuntimeErr::SqlxError(error)) | DbErr::Exec(RuntimeErr::SqlxError(error))) =
        error
    else {
        return false;
    };
    error
        .as_database_error()
        .and_then(|error| error.code())
        .is_some_and(|code| code == "22021")
}

/// `?`-friendly conversion of sea-orm results into store results.
pub(crate) trait DbResultExt<T> {
    /// Maps the error through `From<DbErr> for StoreError`.
    fn db(self) -> Result<T, StoreError>;
    /// Like `db`, but a unique-key clash becomes a `Conflict` with `message`.
    fn conflict_as(self, message: &str) -> Result<T, StoreError>;
}

impl<T> DbResultExt<T> for Result<T, DbErr> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(StoreError::from)
    }

    fn conflict_as(self, message: &str) -> Result<T, StoreError> {
        self.map_err(|error| match StoreError::from(error) {
            StoreError::Conflict(_) => StoreError::Conflict(message.to_owned()),
            other => other,
        })
    }
}
