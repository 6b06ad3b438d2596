//! Identifier newtypes, so that a session id is never passed where a project id belongs.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id that already exists (from a URL, the database, a client).
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }
            /// Makes a fresh random id (UUID v4, as upstream does).
            pub fn generate() -> Self {
                $name(uuid::Uuid::new_v4().to_string())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }
    };
}

id_type!(
    /// A user account; the anonymous user has a fixed id.
    UserId
);
id_type!(
    /// A project; the seeded default project is `local`.
    ProjectId
);
id_type!(
    /// A project membership row.
    MemberId
);
id_type!(
    /// A pending invitation.
    InvitationId
);
id_type!(
    /// A workspace (a local folder or a git URL).
    WorkspaceId
);
id_type!(
    /// A session; chosen by the client.
    SessionId
);
id_type!(
    /// A queued background job.
    JobId
);
id_type!(
    /// A project event; a timestamp string, as upstream.
    EventId
);
id_type!(
    /// A stored credential (an API key, token or bundle of environment variables).
    CredentialId
);

/// The fixed id of the user every request acts as when auth is disabled.
pub const ANONYMOUS_USER_ID: &str = "00000000-0000-0000-0000-000000000001";
/// The id of the project seeded at first start.
pub const LOCAL_PROJECT_ID: &str = "local";

impl UserId {
    pub fn anonymous() -> Self {
        UserId::new(ANONYMOUS_USER_ID)
    }
}

impl ProjectId {
    pub fn local() -> Self {
        ProjectId::new(LOCAL_PROJECT_ID)
    }
}

impl SessionId {
    /// Checks a client-chosen session id: 1 to 65 characters of `[A-Za-z0-9-]`.
    ///
    /// Upstream declares this rule but does not apply it; we do, because the id ends up in
    /// container and volume names.
    pub fn parse(raw: &str) -> crate::Result<Self> {
        if raw.is_empty() {
            return Err(crate::Error::invalid("id is required"));
        }
        if raw.len() > 65 || !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(crate::Error::invalid(
                "id must be 1 to 65 characters of letters, digits and '-'",
            ));
        }
        Ok(SessionId(raw.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_rules() {
        assert!(SessionId::parse("abc-123").is_ok());
        assert!(SessionId::parse("").is_err());
        assert!(SessionId::parse("a/b").is_err());
        assert!(SessionId::parse("../x").is_err());
        assert!(SessionId::parse(&"a".repeat(65)).is_ok());
        assert!(SessionId::parse(&"a".repeat(66)).is_err());
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(JobId::generate(), JobId::generate());
    }
}
