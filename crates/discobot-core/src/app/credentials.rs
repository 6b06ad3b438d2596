//! Credential use cases: the encryption key check, create-or-update, list, get, delete,
//! session assignments, MCP tokens pushed by the agent, the start-up import from the
//! server's environment, the models the project's credentials unlock, and the entries of
//! the agent's credentials header.
//!
//! Secrets are sealed here, before they reach a port, and opened here; no error message or
//! log line built in this file ever contains a secret value.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::{App, ProjectAccess, check_text};
use crate::credentials::{
    AgentCredential, AuthType, CREDENTIAL_TYPES, Credential, CredentialData, CredentialType,
    ENV_IMPORT_COMPANIONS, ENV_IMPORTS, EnvVar, McpToken, ModelInfo, OAuthToken,
    SessionCredentialAssignment, SessionCredentialUse, Visibility, build_agent_credentials,
    check_env_var_name, is_custom, is_mcp, models_for_providers, provider_info, random_id,
};
use crate::error::{Error, ErrorKind, Result};
use crate::ids::{CredentialId, ProjectId, SessionId};
use crate::secrets::{Sealer, Secret};

/// The settings key of the encryption key check value.
const KEY_CHECK_SETTING: &str = "encryption_key_check";

const MAX_NAME_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Largest secret value (an API key, a token, one env var's value).
const MAX_SECRET_BYTES: usize = 64 * 1024;
const MAX_ENV_VARS: usize = 100;
const MAX_URL_CHARS: usize = 2048;
const MAX_ASSIGNMENTS: usize = 1000;
const MAX_USES: usize = 100;
const MAX_USE_CHARS: usize = 500;
const MAX_ID_CHARS: usize = 100;

const NOT_FOUND: &str = "Credential not found";

/// A credential as the API shows it: which fields are set, never their values.
#[derive(Clone, Debug, PartialEq)]
pub struct CredentialInfo {
    pub credential: Credential,
    /// The env var names of a secret-type credential.
    pub env_keys: Option<Vec<String>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// One env var of a create-or-update request; a blank value keeps the stored one.
#[derive(Clone, Debug)]
pub struct EnvVarInput {
    pub key: String,
    pub value: Secret,
}

/// `POST …/credentials`: create, or update with `credential_id` (or a known provider that
/// already has a credential).
#[derive(Clone, Debug, Default)]
pub struct CredentialInput {
    pub provider: Option<String>,
    pub credential_id: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub auth_type: Option<String>,
    pub api_key: Option<Secret>,
    pub env_vars: Vec<EnvVarInput>,
    pub agent_visible: Option<bool>,
    pub visibility: Option<Visibility>,
    pub inactive: Option<bool>,
}

/// One entry of `PUT …/sessions/{id}/credentials`.
#[derive(Clone, Debug, Default)]
pub struct AssignmentInput {
    pub credential_id: String,
    pub session_credential_id: Option<String>,
    pub env_var: Option<String>,
    pub source_env_var: Option<String>,
    pub agent_visible: bool,
    /// Overrides `agent_visible` when given.
    pub visibility: Option<Visibility>,
    /// Descriptions of the approved uses; `None` keeps the previous ones.
    pub uses: Option<Vec<String>>,
}

/// An MCP server's OAuth token, pushed by the agent.
#[derive(Clone, Debug)]
pub struct McpTokenInput {
    pub url: String,
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub expires_at: Option<i64>,
}

/// A project credential as one session sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionCredentialView {
    pub credential: CredentialInfo,
    pub assignment: Option<SessionCredentialAssignment>,
    /// The session-level visibility: the assignment's, else the credential's global one;
    /// nothing for an inactive credential.
    pub visibility: Visibility,
}

/// What the start-up key check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyCheck {
    /// A new database: the key's check value was stored.
    Created,
    /// The key is the one the database was created with.
    Matched,
}

impl App {
    fn sealer(&self) -> &Sealer {
        &self.config.sealer
    }

    fn seal(&self, id: &CredentialId, data: &CredentialData) -> Vec<u8> {
        self.sealer().seal(&data.to_json(), id.as_str().as_bytes())
    }

    /// Opens a credential's sealed data (`None` when it has none).
    fn open(&self, credential: &Credential) -> Result<Option<CredentialData>> {
        let Some(sealed) = &credential.sealed else {
            return Ok(None);
        };
        let plaintext = self
            .sealer()
            .open(sealed, credential.id.as_str().as_bytes())?;
        CredentialData::from_json(&credential.provider, credential.auth_type, &plaintext).map(Some)
    }

    /// Opens a credential, logging (without any value) when that fails.
    fn open_logged(&self, credential: &Credential) -> Option<CredentialData> {
        match self.open(credential) {
            Ok(data) => data,
            Err(error) => {
                tracing::error!(
                    credential.id = %credential.id,
                    credential.provider = credential.provider,
                    error = error.message,
                    "cannot open a stored credential"
                );
                None
            }
        }
    }

    fn info(&self, credential: Credential) -> CredentialInfo {
        let data = self.open_logged(&credential);
        CredentialInfo {
            env_keys: data.as_ref().and_then(CredentialData::env_keys),
            expires_at: data.as_ref().and_then(CredentialData::expires_at),
            credential,
        }
    }

    /// Checks the encryption key against the database at start-up: a new database stores
    /// the key's check value; an existing one must have been created with this key.
    pub async fn check_encryption_key(&self) -> Result<KeyCheck> {
        let candidate = self.sealer().key_check_value();
        let stored = self
            .ports
            .settings
            .insert_setting_if_absent(KEY_CHECK_SETTING, &candidate, Utc::now())
            .await?;
        if stored == candidate {
            return Ok(KeyCheck::Created);
        }
        self.sealer().verify_key_check(&stored)?;
        Ok(KeyCheck::Matched)
    }

    pub async fn list_credentials(&self, access: &ProjectAccess) -> Result<Vec<CredentialInfo>> {
        let credentials = self
            .ports
            .credentials
            .list_credentials(&access.project_id)
            .await?;
        Ok(credentials
            .into_iter()
            .map(|credential| self.info(credential))
            .collect())
    }

    /// `key` is a provider (`anthropic`, `custom:…`) or a credential id.
    pub async fn get_credential(
        &self,
        access: &ProjectAccess,
        key: &str,
    ) -> Result<CredentialInfo> {
        let credential = self.find_credential(&access.project_id, key).await?;
        Ok(self.info(credential))
    }

    async fn find_credential(&self, project: &ProjectId, key: &str) -> Result<Credential> {
        let key = key.trim();
        // No provider or id is empty or holds NUL (which PostgreSQL cannot even compare).
        if key.is_empty() || key.contains('\0') {
            return Err(Error::not_found(NOT_FOUND));
        }
        let repo = &self.ports.credentials;
        if let Some(credential) = repo.get_credential_by_provider(project, key).await? {
            return Ok(credential);
        }
        repo.get_credential(&CredentialId::new(key))
            .await?
            .filter(|credential| &credential.project_id == project)
            .ok_or_else(|| Error::not_found(NOT_FOUND))
    }

    /// Deletes the credential (by provider or id) and its session assignments.
    pub async fn delete_credential(&self, access: &ProjectAccess, key: &str) -> Result<()> {
        let credential = self.find_credential(&access.project_id, key).await?;
        if !self
            .ports
            .credentials
            .delete_credential(&credential.id)
            .await?
        {
            return Err(Error::not_found(NOT_FOUND));
        }
        tracing::info!(credential.id = %credential.id, credential.provider = credential.provider, "credential deleted");
        Ok(())
    }

    /// The credential types the UI offers.
    pub fn credential_types(&self) -> &'static [CredentialType] {
        CREDENTIAL_TYPES
    }

    /// The models of the providers that have a configured, active credential.
    pub async fn project_models(&self, access: &ProjectAccess) -> Result<Vec<ModelInfo>> {
        let credentials = self
            .ports
            .credentials
            .list_credentials(&access.project_id)
            .await?;
        Ok(models_for_providers(
            credentials
                .iter()
                .filter(|c| c.is_configured && !c.inactive)
                .filter(|c| !is_custom(&c.provider) && !is_mcp(&c.provider))
                .map(|c| c.provider.as_str()),
        ))
    }

    /// Creates or updates a credential (upstream's `CreateCredential` semantics):
    /// - with `credential_id`, that credential is updated (its provider cannot change);
    /// - env vars (or a custom or missing provider) make an env var bundle: new ones get
    ///   provider `custom:<uuid>` unless a known provider is named; a blank value keeps the
    ///   stored one and keys not listed are dropped;
    /// - otherwise `api_key`/`id` store `api_key` under the provider's first env var (other
    ///   stored env vars, like a base URL, stay); without a key and with `credential_id` it
    ///   is a metadata-only update;
    /// - OAuth credentials come only from the OAuth flows (metadata updates aside).
    pub async fn save_credential(
        &self,
        access: &ProjectAccess,
        input: CredentialInput,
    ) -> Result<CredentialInfo> {
        let name = input.name.trim().to_owned();
        if name.is_empty() {
            return Err(Error::invalid("name is required"));
        }
        check_text(&name, "name", MAX_NAME_CHARS)?;
        let description = input
            .description
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_owned);
        if let Some(description) = &description {
            check_text(description, "description", MAX_DESCRIPTION_CHARS)?;
        }
        let auth_type = match input.auth_type.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(AuthType::parse(raw)?),
        };
        let provider = input
            .provider
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        let credential_id = input
            .credential_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(CredentialId::new);
        if let Some(provider) = &provider {
            let known =
                provider == "custom" || is_custom(provider) || provider_info(provider).is_some();
            if !known {
                return Err(Error::invalid("Invalid provider"));
            }
        }

        // Two requests creating the same provider at once: the loser updates instead.
        for attempt in 0..2 {
            let existing = self
                .existing_for(access, credential_id.as_ref(), provider.as_deref())
                .await?;
            let plan = self.plan_save(
                &input,
                existing.as_ref(),
                provider.as_deref(),
                auth_type,
                credential_id.is_some(),
            )?;
            let now = Utc::now();
            let mut visibility = existing.as_ref().map_or(Visibility::NONE, |c| c.visibility);
            if let Some(tools) = input.agent_visible {
                visibility.tools = tools;
            }
            if let Some(given) = input.visibility {
                visibility = given;
            }
            let inactive = input
                .inactive
                .or(existing.as_ref().map(|c| c.inactive))
                .unwrap_or(false);
            match existing {
                Some(mut credential) => {
                    credential.name = name.clone();
                    credential.description = description.clone();
                    credential.visibility = visibility;
                    credential.inactive = inactive;
                    credential.updated_at = now;
                    if let Some((auth_type, data)) = &plan.data {
                        credential.sealed = Some(self.seal(&credential.id, data));
                        credential.auth_type = *auth_type;
                        credential.is_configured = true;
                    }
                    self.ports
                        .credentials
                        .update_credential(&credential)
                        .await?;
                    tracing::info!(credential.id = %credential.id, credential.provider = credential.provider, "credential updated");
                    return Ok(self.info(credential));
                }
                None => {
                    let Some((auth_type, data)) = plan.data else {
                        return Err(Error::internal("a new credential without data"));
                    };
                    let id = CredentialId::generate();
                    let credential = Credential {
                        sealed: Some(self.seal(&id, &data)),
                        id,
                        project_id: access.project_id.clone(),
                        provider: plan.provider,
                        name: name.clone(),
                        description: description.clone(),
                        auth_type,
                        is_configured: true,
                        inactive,
                        visibility,
                        created_at: now,
                        updated_at: now,
                    };
                    match self.ports.credentials.insert_credential(&credential).await {
                        Ok(()) => {
                            tracing::info!(credential.id = %credential.id, credential.provider = credential.provider, "credential created");
                            return Ok(CredentialInfo {
                                env_keys: data.env_keys(),
                                expires_at: data.expires_at(),
                                credential,
                            });
                        }
                        Err(error) if error.kind == ErrorKind::Conflict && attempt == 0 => continue,
                        Err(error) => return Err(error),
                    }
                }
            }
        }
        Err(Error::conflict(
            "the credential changed meanwhile; try again",
        ))
    }

    /// The credential a save applies to: the one named by id, else the one of the named
    /// provider (known providers and existing `custom:*` keys).
    async fn existing_for(
        &self,
        access: &ProjectAccess,
        credential_id: Option<&CredentialId>,
        provider: Option<&str>,
    ) -> Result<Option<Credential>> {
        let repo = &self.ports.credentials;
        if let Some(id) = credential_id {
            let credential = repo
                .get_credential(id)
                .await?
                .filter(|credential| credential.project_id == access.project_id)
                .ok_or_else(|| Error::not_found(NOT_FOUND))?;
            if let Some(provider) = provider {
                let matches = if provider == "custom" {
                    is_custom(&credential.provider)
                } else {
                    provider == credential.provider
                };
                if !matches {
                    return Err(Error::invalid("Credential provider mismatch"));
                }
            }
            return Ok(Some(credential));
        }
        match provider {
            None | Some("custom") => Ok(None),
            Some(provider) if is_custom(provider) => repo
                .get_credential_by_provider(&access.project_id, provider)
                .await?
                .map(Some)
                .ok_or_else(|| Error::not_found(NOT_FOUND)),
            Some(provider) => {
                repo.get_credential_by_provider(&access.project_id, provider)
                    .await
            }
        }
    }

    /// What a save writes: the provider of a new credential, and the new data (`None`:
    /// metadata only).
    fn plan_save(
        &self,
        input: &CredentialInput,
        existing: Option<&Credential>,
        provider: Option<&str>,
        auth_type: Option<AuthType>,
        by_id: bool,
    ) -> Result<SavePlan> {
        let provider = existing.map(|c| c.provider.as_str()).or(provider);
        let custom = provider.is_none_or(|p| p == "custom" || is_custom(p));
        if !input.env_vars.is_empty() || custom {
            let new_provider = match provider {
                Some(p) if p != "custom" => p.to_owned(),
                _ => format!("custom:{}", uuid::Uuid::new_v4()),
            };
            if input.env_vars.is_empty() {
                return match existing {
                    Some(_) => Ok(SavePlan {
                        provider: new_provider,
                        data: None,
                    }),
                    None => Err(Error::invalid(
                        "at least one environment variable is required",
                    )),
                };
            }
            let old = existing.and_then(|c| self.open_logged(c));
            let old = match &old {
                Some(CredentialData::EnvVars(vars)) => vars.as_slice(),
                _ => &[],
            };
            let vars = merge_env_vars(old, &input.env_vars)?;
            return Ok(SavePlan {
                provider: new_provider,
                data: Some((AuthType::ApiKey, CredentialData::EnvVars(vars))),
            });
        }
        let provider = provider.unwrap_or_default();
        match auth_type.unwrap_or(AuthType::ApiKey) {
            kind @ (AuthType::ApiKey | AuthType::Id) => {
                let key = input
                    .api_key
                    .as_ref()
                    .map(Secret::trimmed)
                    .filter(|key| !key.is_empty());
                let Some(key) = key else {
                    if by_id && existing.is_some() {
                        return Ok(SavePlan {
                            provider: provider.to_owned(),
                            data: None,
                        });
                    }
                    return Err(Error::invalid(format!(
                        "api_key is required for {kind} auth type"
                    )));
                };
                check_secret(&key, "apiKey")?;
                let env_name = provider_info(provider)
                    .and_then(|info| info.env.first())
                    .ok_or_else(|| Error::invalid("Invalid provider"))?;
                // Keep the other stored env vars (a base URL, say); replace the key.
                let mut vars: Vec<EnvVar> = match existing.and_then(|c| self.open_logged(c)) {
                    Some(CredentialData::EnvVars(vars)) => vars,
                    _ => Vec::new(),
                };
                match vars.iter_mut().find(|var| var.key == *env_name) {
                    Some(var) => var.value = key,
                    None => vars.insert(
                        0,
                        EnvVar {
                            key: (*env_name).to_owned(),
                            value: key,
                        },
                    ),
                }
                Ok(SavePlan {
                    provider: provider.to_owned(),
                    data: Some((kind, CredentialData::EnvVars(vars))),
                })
            }
            AuthType::OAuth if by_id && existing.is_some() => Ok(SavePlan {
                provider: provider.to_owned(),
                data: None,
            }),
            AuthType::OAuth => Err(Error::invalid(
                "OAuth credentials must be set via OAuth flow endpoints",
            )),
        }
    }

    /// Every project credential with this session's settings for it.
    pub async fn list_session_credentials(
        &self,
        access: &ProjectAccess,
        session: &SessionId,
    ) -> Result<Vec<SessionCredentialView>> {
        self.get_session(access, session).await?;
        let credentials = self.list_credentials(access).await?;
        let assignments = self
            .ports
            .credentials
            .list_session_assignments(session)
            .await?;
        Ok(session_views(credentials, assignments))
    }

    /// Replaces the session's assignments. Unnamed session credential ids, env vars and
    /// source env vars keep their previous values; uses are matched to the previous ones by
    /// description (case-insensitive).
    pub async fn set_session_credentials(
        &self,
        access: &ProjectAccess,
        session: &SessionId,
        inputs: Vec<AssignmentInput>,
    ) -> Result<Vec<SessionCredentialView>> {
        self.get_session(access, session).await?;
        if inputs.len() > MAX_ASSIGNMENTS {
            return Err(Error::invalid(format!(
                "at most {MAX_ASSIGNMENTS} credentials can be assigned"
            )));
        }
        let credentials = self
            .ports
            .credentials
            .list_credentials(&access.project_id)
            .await?;
        let previous = self
            .ports
            .credentials
            .list_session_assignments(session)
            .await?;
        let now = Utc::now();
        let mut seen = HashSet::new();
        let mut assignments = Vec::with_capacity(inputs.len());
        for input in inputs {
            let id = input.credential_id.trim();
            let credential = credentials
                .iter()
                .find(|credential| credential.id.as_str() == id)
                .ok_or_else(|| Error::not_found(NOT_FOUND))?;
            if !seen.insert(credential.id.clone()) {
                return Err(Error::invalid(format!(
                    "credential {id} is listed more than once"
                )));
            }
            let before = previous
                .iter()
                .find(|assignment| assignment.credential_id == credential.id);
            let visibility = input.visibility.unwrap_or(Visibility {
                tools: input.agent_visible,
                ..Visibility::NONE
            });
            let session_credential_id = match non_empty(input.session_credential_id.as_deref()) {
                Some(given) => {
                    check_identifier(given, "sessionCredentialId")?;
                    given.to_owned()
                }
                None => before
                    .map(|b| b.session_credential_id.clone())
                    .unwrap_or_else(|| random_id("cred_s_")),
            };
            let env_var = env_name_or(
                input.env_var.as_deref(),
                before.and_then(|b| b.env_var.clone()),
            )?;
            let source_env_var = env_name_or(
                input.source_env_var.as_deref(),
                before.and_then(|b| b.source_env_var.clone()),
            )?;
            let uses = match input.uses {
                None => before.map(|b| b.uses.clone()).unwrap_or_default(),
                Some(descriptions) => {
                    merge_uses(before.map_or(&[], |b| &b.uses), descriptions, now)?
                }
            };
            assignments.push(SessionCredentialAssignment {
                id: before.map_or_else(|| uuid::Uuid::new_v4().to_string(), |b| b.id.clone()),
                session_id: session.clone(),
                credential_id: credential.id.clone(),
                session_credential_id,
                env_var,
                source_env_var,
                visibility,
                uses,
                created_at: before.map_or(now, |b| b.created_at),
                updated_at: now,
            });
        }
        self.ports
            .credentials
            .replace_session_assignments(session, &assignments)
            .await?;
        let infos = credentials
            .into_iter()
            .map(|credential| self.info(credential))
            .collect();
        Ok(session_views(infos, assignments))
    }

    /// Stores (or replaces) an MCP server's OAuth token as credential `mcp:<url>`, visible to
    /// the agent.
    pub async fn store_mcp_token(
        &self,
        access: &ProjectAccess,
        input: McpTokenInput,
    ) -> Result<()> {
        let url = input.url.trim().to_owned();
        if url.is_empty() {
            return Err(Error::invalid("url is required"));
        }
        check_text(&url, "url", MAX_URL_CHARS)?;
        if input.access_token.is_blank() {
            return Err(Error::invalid("accessToken is required"));
        }
        check_secret(&input.access_token, "accessToken")?;
        if let Some(refresh) = &input.refresh_token {
            check_secret(refresh, "refreshToken")?;
        }
        let provider = format!("mcp:{url}");
        let data = CredentialData::Mcp(McpToken {
            url: url.clone(),
            access_token: input.access_token,
            refresh_token: input.refresh_token.filter(|token| !token.is_empty()),
            expires_at: input.expires_at,
        });
        for attempt in 0..2 {
            let now = Utc::now();
            let existing = self
                .ports
                .credentials
                .get_credential_by_provider(&access.project_id, &provider)
                .await?;
            let result = match existing {
                Some(mut credential) => {
                    credential.sealed = Some(self.seal(&credential.id, &data));
                    credential.auth_type = AuthType::OAuth;
                    credential.is_configured = true;
                    credential.updated_at = now;
                    self.ports.credentials.update_credential(&credential).await
                }
                None => {
                    let id = CredentialId::generate();
                    let credential = Credential {
                        sealed: Some(self.seal(&id, &data)),
                        id,
                        project_id: access.project_id.clone(),
                        provider: provider.clone(),
                        name: format!("MCP OAuth: {url}"),
                        description: None,
                        auth_type: AuthType::OAuth,
                        is_configured: true,
                        inactive: false,
                        visibility: Visibility {
                            tools: true,
                            ..Visibility::NONE
                        },
                        created_at: now,
                        updated_at: now,
                    };
                    self.ports.credentials.insert_credential(&credential).await
                }
            };
            match result {
                Err(error) if error.kind == ErrorKind::Conflict && attempt == 0 => continue,
                other => {
                    if other.is_ok() {
                        tracing::info!(credential.provider = provider, "MCP token stored");
                    }
                    return other;
                }
            }
        }
        Err(Error::conflict(
            "the MCP token changed meanwhile; try again",
        ))
    }

    /// The entries of the `X-Discobot-Credentials` header for a request to this session's
    /// agent: every configured, active credential of its project with the visibility of
    /// global OR session assignment (see `credentials::build_agent_credentials`). A
    /// credential that cannot be opened is left out (and logged, without its content).
    pub async fn agent_credentials(&self, session: &SessionId) -> Result<Vec<AgentCredential>> {
        let session = self
            .ports
            .sessions
            .get_session(session)
            .await?
            .ok_or_else(|| Error::not_found("Session not found"))?;
        let credentials = self
            .ports
            .credentials
            .list_credentials(&session.project_id)
            .await?;
        let assignments = self
            .ports
            .credentials
            .list_session_assignments(&session.id)
            .await?;
        let opened: Vec<(Credential, CredentialData)> = credentials
            .into_iter()
            .filter(|credential| credential.is_configured && !credential.inactive)
            .filter_map(|credential| {
                let data = self.open_logged(&credential)?;
                Some((credential, data))
            })
            .collect();
        Ok(build_agent_credentials(&opened, &assignments))
    }

    /// Imports credentials found in the server's environment into project `local`, for
    /// each provider that has none yet (`credentials::ENV_IMPORTS`). `vars` are the values
    /// of those env vars the binary read. Returns the names of the env vars imported.
    pub async fn import_env_credentials(&self, vars: &[(String, Secret)]) -> Result<Vec<String>> {
        let project = ProjectId::local();
        let value = |name: &str| {
            vars.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.trimmed())
                .filter(|value| !value.is_empty())
        };
        let mut imported = Vec::new();
        for (env, provider, auth_type) in ENV_IMPORTS {
            let Some(secret) = value(env) else { continue };
            if check_secret(&secret, env).is_err() {
                tracing::warn!(
                    env.var = env,
                    "not importing a credential from the environment: the value is too long or holds NUL characters"
                );
                continue;
            }
            if self
                .ports
                .credentials
                .get_credential_by_provider(&project, provider)
                .await?
                .is_some()
            {
                continue;
            }
            let data = match auth_type {
                AuthType::OAuth => CredentialData::OAuth(OAuthToken {
                    access_token: secret,
                    refresh_token: None,
                    token_type: None,
                    expires_at: None,
                    scope: None,
                }),
                AuthType::ApiKey | AuthType::Id => {
                    let mut env_vars = vec![EnvVar {
                        key: (*env).to_owned(),
                        value: secret,
                    }];
                    for (companion_provider, companion) in ENV_IMPORT_COMPANIONS {
                        if companion_provider == provider
                            && let Some(value) = value(companion)
                            && check_secret(&value, companion).is_ok()
                        {
                            env_vars.push(EnvVar {
                                key: (*companion).to_owned(),
                                value,
                            });
                        }
                    }
                    CredentialData::EnvVars(env_vars)
                }
            };
            let now = Utc::now();
            let id = CredentialId::generate();
            let display = provider_info(provider).map_or(*provider, |info| info.name);
            let credential = Credential {
                sealed: Some(self.seal(&id, &data)),
                id,
                project_id: project.clone(),
                provider: (*provider).to_owned(),
                name: format!("{display} (from environment)"),
                description: Some(format!("Imported from {env} at server start")),
                auth_type: *auth_type,
                is_configured: true,
                inactive: false,
                visibility: Visibility::NONE,
                created_at: now,
                updated_at: now,
            };
            match self.ports.credentials.insert_credential(&credential).await {
                Ok(()) => {
                    tracing::info!(
                        env.var = env,
                        credential.provider = provider,
                        "imported a credential from the server's environment"
                    );
                    imported.push((*env).to_owned());
                }
                // Another replica imported it first.
                Err(error) if error.kind == ErrorKind::Conflict => {}
                Err(error) => return Err(error),
            }
        }
        Ok(imported)
    }
}

/// What a save writes.
struct SavePlan {
    /// The provider of a new credential.
    provider: String,
    /// The auth type and data to seal; `None` for a metadata-only update.
    data: Option<(AuthType, CredentialData)>,
}

fn session_views(
    credentials: Vec<CredentialInfo>,
    assignments: Vec<SessionCredentialAssignment>,
) -> Vec<SessionCredentialView> {
    credentials
        .into_iter()
        .map(|info| {
            let assignment = assignments
                .iter()
                .find(|a| a.credential_id == info.credential.id)
                .cloned();
            let visibility = if info.credential.inactive {
                Visibility::NONE
            } else {
                assignment
                    .as_ref()
                    .map_or(info.credential.visibility, |a| a.visibility)
            };
            SessionCredentialView {
                credential: info,
                assignment,
                visibility,
            }
        })
        .collect()
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|value| !value.is_empty())
}

/// A checked env var name, or `previous` when none is given.
fn env_name_or(given: Option<&str>, previous: Option<String>) -> Result<Option<String>> {
    match non_empty(given) {
        Some(name) => {
            check_env_var_name(name)?;
            Ok(Some(name.to_owned()))
        }
        None => Ok(previous),
    }
}

/// A client-chosen identifier: 1 to 100 characters of letters, digits, `_`, `-`, `.`.
fn check_identifier(value: &str, field: &str) -> Result<()> {
    let valid = value.len() <= MAX_ID_CHARS
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{field} must be at most {MAX_ID_CHARS} letters, digits, '_', '-' or '.'"
        )))
    }
}

/// Size and content limits of a secret value; the error names the field, never the value.
fn check_secret(value: &Secret, field: &str) -> Result<()> {
    if value.len() > MAX_SECRET_BYTES {
        return Err(Error::invalid(format!(
            "{field} must be at most {MAX_SECRET_BYTES} bytes"
        )));
    }
    if value.expose().contains('\0') {
        return Err(Error::invalid(format!(
            "{field} must not contain NUL characters"
        )));
    }
    Ok(())
}

/// The new env vars of a bundle: names trimmed and checked, duplicates dropped (the first
/// wins), a blank value keeps the stored one, names not listed are dropped.
fn merge_env_vars(old: &[EnvVar], input: &[EnvVarInput]) -> Result<Vec<EnvVar>> {
    if input.len() > MAX_ENV_VARS {
        return Err(Error::invalid(format!(
            "at most {MAX_ENV_VARS} environment variables are allowed"
        )));
    }
    let mut vars: Vec<EnvVar> = Vec::with_capacity(input.len());
    for entry in input {
        let key = entry.key.trim();
        check_env_var_name(key)?;
        if vars.iter().any(|var| var.key == key) {
            continue;
        }
        let value = if entry.value.is_blank() {
            old.iter()
                .find(|var| var.key == key)
                .map(|var| var.value.clone())
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "a value is required for the new environment variable {key}"
                    ))
                })?
        } else {
            check_secret(&entry.value, key)?;
            entry.value.clone()
        };
        vars.push(EnvVar {
            key: key.to_owned(),
            value,
        });
    }
    Ok(vars)
}

/// The uses of an assignment: listed descriptions, matched to the previous uses
/// case-insensitively (keeping their ids and times), new ones with fresh ids.
fn merge_uses(
    previous: &[SessionCredentialUse],
    descriptions: Vec<String>,
    now: DateTime<Utc>,
) -> Result<Vec<SessionCredentialUse>> {
    if descriptions.len() > MAX_USES {
        return Err(Error::invalid(format!(
            "at most {MAX_USES} uses are allowed"
        )));
    }
    let mut uses: Vec<SessionCredentialUse> = Vec::with_capacity(descriptions.len());
    for description in descriptions {
        let description = description.trim();
        if description.is_empty() {
            return Err(Error::invalid("a use needs a description"));
        }
        check_text(description, "use description", MAX_USE_CHARS)?;
        let lower = description.to_lowercase();
        if uses.iter().any(|u| u.description.to_lowercase() == lower) {
            continue;
        }
        let kept = previous
            .iter()
            .find(|u| u.description.to_lowercase() == lower)
            .cloned();
        uses.push(kept.unwrap_or_else(|| SessionCredentialUse {
            id: random_id("use_s_"),
            description: description.to_owned(),
            created_at: Some(now),
            last_used_at: None,
            last_used_tool_call_id: None,
        }));
    }
    Ok(uses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old(pairs: &[(&str, &str)]) -> Vec<EnvVar> {
        pairs
            .iter()
            .map(|(key, value)| EnvVar {
                key: (*key).to_owned(),
                value: Secret::new(*value),
            })
            .collect()
    }

    fn input(pairs: &[(&str, &str)]) -> Vec<EnvVarInput> {
        pairs
            .iter()
            .map(|(key, value)| EnvVarInput {
                key: (*key).to_owned(),
                value: Secret::new(*value),
            })
            .collect()
    }

    fn pairs(vars: &[EnvVar]) -> Vec<(String, String)> {
        vars.iter()
            .map(|var| (var.key.clone(), var.value.expose().to_owned()))
            .collect()
    }

    #[test]
    fn env_var_merge() {
        let stored = old(&[("A", "1"), ("B", "2"), ("C", "3")]);
        let merged = merge_env_vars(
            &stored,
            &input(&[(" A ", ""), ("B", "20"), ("D", "4"), ("A", "x")]),
        )
        .unwrap();
        assert_eq!(
            pairs(&merged),
            [
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "20".to_owned()),
                ("D".to_owned(), "4".to_owned()),
            ],
            "blank keeps, given replaces, new is added, unlisted C is dropped, duplicates ignored"
        );
        let error = merge_env_vars(&stored, &input(&[("NEW", " ")])).unwrap_err();
        assert!(error.message.contains("NEW"), "{error}");
        assert!(merge_env_vars(&[], &input(&[("1BAD", "v")])).is_err());
        let error = merge_env_vars(&[], &input(&[("K", "sk-\0-secret")])).unwrap_err();
        assert!(!error.message.contains("sk-"), "{error}");
        let big = "x".repeat(MAX_SECRET_BYTES + 1);
        let error = merge_env_vars(&[], &input(&[("K", &big)])).unwrap_err();
        assert!(!error.message.contains("xxxx"), "{error}");
        let many: Vec<(String, String)> = (0..=MAX_ENV_VARS)
            .map(|i| (format!("K{i}"), "v".into()))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert!(merge_env_vars(&[], &input(&many)).is_err());
    }

    #[test]
    fn uses_merge_by_description() {
        let now = Utc::now();
        let before = vec![SessionCredentialUse {
            id: "use_s_old".into(),
            description: "Deploy to staging".into(),
            created_at: None,
            last_used_at: None,
            last_used_tool_call_id: Some("call".into()),
        }];
        let merged = merge_uses(
            &before,
            vec![
                "deploy TO staging".into(),
                "Run tests".into(),
                "run TESTS".into(),
            ],
            now,
        )
        .unwrap();
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0], before[0]);
        assert!(merged[1].id.starts_with("use_s_"));
        assert_eq!(merged[1].description, "Run tests");
        assert_eq!(merged[1].created_at, Some(now));
        assert!(merge_uses(&before, vec![" ".into()], now).is_err());
    }

    #[test]
    fn identifiers() {
        assert!(check_identifier("cred_s_abc-1.2", "x").is_ok());
        assert!(check_identifier("a/b", "x").is_err());
        assert!(check_identifier(&"a".repeat(101), "x").is_err());
    }
}
