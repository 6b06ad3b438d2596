//! The agent's credentials: the env vars of the latest `X-Discobot-Credentials` header and the
//! git identity of the `X-Discobot-Git-User-*` headers, captured by a middleware on every
//! request that carries them and kept in memory only (never in the environment, on disk or in
//! a log line).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use discobot_core::credentials::{AgentCredential, decode_credentials_header};

use crate::routes::{AgentState, error};

/// The header carrying the credentials (sandbox protocol §2).
pub const CREDENTIALS_HEADER: &str = "x-discobot-credentials";
/// The header carrying the user's git `user.name`.
pub const GIT_USER_NAME_HEADER: &str = "x-discobot-git-user-name";
/// The header carrying the user's git `user.email`.
pub const GIT_USER_EMAIL_HEADER: &str = "x-discobot-git-user-email";

/// The shared store; cheap to clone. Readers take a [`snapshot`](Self::snapshot), which a
/// later header never changes under them.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    current: Arc<RwLock<Arc<CredentialSet>>>,
}

/// One version of the credentials and the git identity.
#[derive(Debug, Default, PartialEq)]
pub struct CredentialSet {
    entries: Vec<AgentCredential>,
    git_user_name: Option<String>,
    git_user_email: Option<String>,
}

impl CredentialSet {
    /// Every entry as env var → value: the LLM clients may use them all.
    pub fn all_env(&self) -> HashMap<String, String> {
        self.env(|_| true)
    }

    /// The `agentVisible` entries: the environment of the agent's tools (Bash).
    pub fn agent_visible_env(&self) -> HashMap<String, String> {
        self.env(|entry| entry.visibility.tools)
    }

    /// The header entries themselves (visibility per context, credential ids, uses).
    pub fn entries(&self) -> &[AgentCredential] {
        &self.entries
    }

    /// `(user.name, user.email)` once both headers have been seen.
    pub fn git_identity(&self) -> Option<(String, String)> {
        Some((self.git_user_name.clone()?, self.git_user_email.clone()?))
    }

    fn env(&self, include: impl Fn(&AgentCredential) -> bool) -> HashMap<String, String> {
        // Later entries win, as they would in an environment built in header order.
        self.entries
            .iter()
            .filter(|entry| include(entry))
            .map(|entry| (entry.env_var.clone(), entry.value.expose().to_owned()))
            .collect()
    }
}

impl Credentials {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current set.
    pub fn snapshot(&self) -> Arc<CredentialSet> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies what one request carried: `entries` replaces the credentials when present, a
    /// git header its part of the identity. Returns the git config keys whose value changed,
    /// with the new value.
    fn apply(
        &self,
        entries: Option<Vec<AgentCredential>>,
        git_user_name: Option<String>,
        git_user_email: Option<String>,
    ) -> Vec<(&'static str, String)> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let mut changed = Vec::new();
        let name = match git_user_name {
            Some(name) if current.git_user_name.as_ref() != Some(&name) => {
                changed.push(("user.name", name.clone()));
                Some(name)
            }
            _ => current.git_user_name.clone(),
        };
        let email = match git_user_email {
            Some(email) if current.git_user_email.as_ref() != Some(&email) => {
                changed.push(("user.email", email.clone()));
                Some(email)
            }
            _ => current.git_user_email.clone(),
        };
        let next = CredentialSet {
            entries: entries.unwrap_or_else(|| current.entries.clone()),
            git_user_name: name,
            git_user_email: email,
        };
        if next != **current {
            *current = Arc::new(next);
        }
        changed
    }
}

/// The middleware: reads the credentials and git identity headers of a request (when present)
/// into the store before the handler runs. A malformed header is a 400 and changes nothing.
/// The public paths pass the bearer check unauthenticated, so their headers are ignored.
pub(crate) async fn capture(
    State(state): State<AgentState>,
    request: Request,
    next: Next,
) -> Response {
    if crate::auth::is_public(request.uri().path()) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let entries = match headers.get(CREDENTIALS_HEADER) {
        None => None,
        Some(value) => {
            let decoded = value
                .to_str()
                .ok()
                .and_then(|text| decode_credentials_header(text).ok());
            match decoded {
                Some(entries) => Some(entries),
                // The decoder's reason names only a field, but the answer needs none.
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid X-Discobot-Credentials header",
                    );
                }
            }
        }
    };
    let name = match utf8_header(headers, GIT_USER_NAME_HEADER) {
        Ok(name) => name,
        Err(()) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid X-Discobot-Git-User-Name header",
            );
        }
    };
    let email = match utf8_header(headers, GIT_USER_EMAIL_HEADER) {
        Ok(email) => email,
        Err(()) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid X-Discobot-Git-User-Email header",
            );
        }
    };
    let changed = state.credentials().apply(entries, name, email);
    if !changed.is_empty() {
        // One after the other: concurrent `git config` writes fight over the config lock.
        let work_dir = state.workspace().to_path_buf();
        tokio::spawn(async move {
            for (key, value) in changed {
                set_git_config(&work_dir, key, value).await;
            }
        });
    }
    next.run(request).await
}

/// A header as UTF-8 text (a name may not be ASCII), trimmed; `None` when absent or blank.
fn utf8_header(headers: &HeaderMap, name: &str) -> Result<Option<String>, ()> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let text = std::str::from_utf8(value.as_bytes())
        .map_err(|_| ())?
        .trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// `git config --local <key> <value>` in the working copy: its commits carry the identity.
/// Not `--global`: with the local provider the agent shares the user's home, whose git
/// config is not ours to change. A failure is logged (commits then use the agent's default
/// identity), never fatal.
async fn set_git_config(work_dir: &std::path::Path, key: &'static str, value: String) {
    // `--` keeps a value starting with `-` from being read as an option.
    let output = tokio::process::Command::new("git")
        .arg("-C")
        .arg(work_dir)
        .args(["config", "--local", "--", key, &value])
        .stdin(std::process::Stdio::null())
        .output()
        .await;
    match output {
        Ok(output) if output.status.success() => {
            tracing::info!(key, "git identity updated");
        }
        Ok(output) => tracing::warn!(
            key,
            status = %output.status,
            stderr = %String::from_utf8_lossy(&output.stderr).trim(),
            "git config failed"
        ),
        Err(err) => tracing::warn!(key, %err, "git could not be run"),
    }
}

#[cfg(test)]
mod tests {
    use discobot_core::credentials::{AuthType, Visibility};
    use discobot_core::secrets::Secret;

    use super::*;

    fn entry(env_var: &str, value: &str, agent_visible: bool) -> AgentCredential {
        AgentCredential {
            credential_id: None,
            session_credential_id: None,
            uses: Vec::new(),
            env_var: env_var.to_owned(),
            value: Secret::new(value),
            provider: "custom:x".to_owned(),
            auth_type: AuthType::ApiKey,
            visibility: Visibility {
                tools: agent_visible,
                ..Visibility::NONE
            },
            expires_at: None,
        }
    }

    #[test]
    fn env_views_of_a_set() {
        let credentials = Credentials::new();
        credentials.apply(
            Some(vec![
                entry("ANTHROPIC_API_KEY", "sk-ant", false),
                entry("GITHUB_TOKEN", "ghp", true),
            ]),
            None,
            None,
        );
        let set = credentials.snapshot();
        assert_eq!(
            set.all_env(),
            HashMap::from([
                ("ANTHROPIC_API_KEY".to_owned(), "sk-ant".to_owned()),
                ("GITHUB_TOKEN".to_owned(), "ghp".to_owned()),
            ])
        );
        assert_eq!(
            set.agent_visible_env(),
            HashMap::from([("GITHUB_TOKEN".to_owned(), "ghp".to_owned())])
        );
        // A request without the header keeps the set; an empty header empties it.
        credentials.apply(None, None, None);
        assert_eq!(credentials.snapshot().entries().len(), 2);
        credentials.apply(Some(Vec::new()), None, None);
        assert!(credentials.snapshot().all_env().is_empty());
        // Snapshots taken before stay as they were.
        assert_eq!(set.entries().len(), 2);
        assert!(!format!("{set:?}").contains("sk-ant"), "Debug hides values");
    }

    #[test]
    fn git_identity_changes_are_reported_once() {
        let credentials = Credentials::new();
        assert_eq!(credentials.snapshot().git_identity(), None);
        let changed = credentials.apply(None, Some("Ada".into()), None);
        assert_eq!(changed, [("user.name", "Ada".to_owned())]);
        assert_eq!(credentials.snapshot().git_identity(), None, "no email yet");
        let changed = credentials.apply(None, Some("Ada".into()), Some("ada@example.com".into()));
        assert_eq!(changed, [("user.email", "ada@example.com".to_owned())]);
        assert_eq!(
            credentials.snapshot().git_identity(),
            Some(("Ada".to_owned(), "ada@example.com".to_owned()))
        );
        assert!(
            credentials
                .apply(None, Some("Ada".into()), Some("ada@example.com".into()))
                .is_empty()
        );
    }
}
