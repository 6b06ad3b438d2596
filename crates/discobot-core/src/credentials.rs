//! Credentials: the stored record, its decrypted content, per-session assignments, the
//! provider → environment variable mapping, the small embedded catalogues (credential types,
//! models), and the pure functions that turn a project's credentials into the entries of the
//! agent's `X-Discobot-Credentials` header.
//!
//! Secret values only ever live in [`Secret`]s here; every `Debug` output is redacted.

use std::fmt;

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::ids::{CredentialId, ProjectId, SessionId};
use crate::model::string_enum;
use crate::secrets::Secret;

string_enum!(
    /// How a credential authenticates: an API key, an OAuth token, or an identifier-like
    /// secret (e.g. a Discobot ID).
    AuthType, "authType" { ApiKey => "api_key", OAuth => "oauth", Id => "id" }
);

/// Where a credential's environment variables are visible inside a sandbox: the agent's
/// tools (`agentVisible`), the terminal and SSH (`console`), services, and hooks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Visibility {
    pub tools: bool,
    pub console: bool,
    pub services: bool,
    pub hooks: bool,
}

impl Visibility {
    pub const NONE: Visibility = Visibility {
        tools: false,
        console: false,
        services: false,
        hooks: false,
    };

    /// Visible in a context when either side says so (global OR session).
    pub fn or(self, other: Visibility) -> Visibility {
        Visibility {
            tools: self.tools || other.tools,
            console: self.console || other.console,
            services: self.services || other.services,
            hooks: self.hooks || other.hooks,
        }
    }
}

/// A stored credential. The secret part is only ever held sealed (`sealed`), bound to the
/// credential id; `App` opens it when it needs the values.
#[derive(Clone, PartialEq)]
pub struct Credential {
    pub id: CredentialId,
    pub project_id: ProjectId,
    /// A known provider id, `custom:<uuid>` (a bundle of env vars) or `mcp:<url>`.
    pub provider: String,
    pub name: String,
    pub description: Option<String>,
    pub auth_type: AuthType,
    /// `nonce ‖ ciphertext ‖ tag` of the JSON of [`CredentialData`].
    pub sealed: Option<Vec<u8>>,
    pub is_configured: bool,
    pub inactive: bool,
    pub visibility: Visibility,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("id", &self.id)
            .field("project_id", &self.project_id)
            .field("provider", &self.provider)
            .field("name", &self.name)
            .field("auth_type", &self.auth_type)
            .field(
                "sealed",
                &self
                    .sealed
                    .as_ref()
                    .map(|bytes| format!("<{} bytes>", bytes.len())),
            )
            .field("is_configured", &self.is_configured)
            .field("inactive", &self.inactive)
            .field("visibility", &self.visibility)
            .finish_non_exhaustive()
    }
}

/// One environment variable of a credential.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvVar {
    pub key: String,
    pub value: Secret,
}

/// An OAuth token set (from a provider's flow, or imported from the server's environment).
#[derive(Clone, Debug, PartialEq)]
pub struct OAuthToken {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub token_type: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub scope: Option<String>,
}

/// An MCP server's OAuth token, pushed by the agent.
#[derive(Clone, Debug, PartialEq)]
pub struct McpToken {
    pub url: String,
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
}

/// The decrypted content of a credential.
#[derive(Clone, Debug, PartialEq)]
pub enum CredentialData {
    /// API keys, IDs and custom credentials: `{"envVars": [{key, value}]}`.
    EnvVars(Vec<EnvVar>),
    /// `{"access_token", "refresh_token"?, "token_type"?, "expires_at"? (RFC 3339), "scope"?}`.
    OAuth(OAuthToken),
    /// `{"url", "accessToken", "refreshToken"?, "expiresAt"? (unix seconds)}`.
    Mcp(McpToken),
}

impl CredentialData {
    /// The JSON that gets sealed. The caller seals and drops it at once.
    pub fn to_json(&self) -> Vec<u8> {
        let value = match self {
            CredentialData::EnvVars(vars) => json!({
                "envVars": vars
                    .iter()
                    .map(|var| json!({"key": var.key, "value": var.value.expose()}))
                    .collect::<Vec<_>>()
            }),
            CredentialData::OAuth(token) => {
                let mut map = Map::new();
                map.insert("access_token".into(), json!(token.access_token.expose()));
                if let Some(refresh) = &token.refresh_token {
                    map.insert("refresh_token".into(), json!(refresh.expose()));
                }
                if let Some(token_type) = &token.token_type {
                    map.insert("token_type".into(), json!(token_type));
                }
                if let Some(expires_at) = token.expires_at {
                    map.insert("expires_at".into(), json!(expires_at.to_rfc3339()));
                }
                if let Some(scope) = &token.scope {
                    map.insert("scope".into(), json!(scope));
                }
                Value::Object(map)
            }
            CredentialData::Mcp(token) => mcp_json(token),
        };
        serde_json::to_vec(&value).unwrap_or_default()
    }

    /// Reads the JSON of a sealed credential. Errors never quote the content.
    pub fn from_json(provider: &str, auth_type: AuthType, bytes: &[u8]) -> Result<Self> {
        let corrupt = |what: &str| Error::internal(format!("credential data is corrupt: {what}"));
        let value: Value = serde_json::from_slice(bytes).map_err(|_| corrupt("not JSON"))?;
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        if is_mcp(provider) {
            return Ok(CredentialData::Mcp(McpToken {
                url: text("url").ok_or_else(|| corrupt("no url"))?,
                access_token: Secret::new(
                    text("accessToken").ok_or_else(|| corrupt("no access token"))?,
                ),
                refresh_token: text("refreshToken").map(Secret::new),
                expires_at: value.get("expiresAt").and_then(Value::as_i64),
            }));
        }
        if auth_type == AuthType::OAuth {
            return Ok(CredentialData::OAuth(OAuthToken {
                access_token: Secret::new(
                    text("access_token").ok_or_else(|| corrupt("no access token"))?,
                ),
                refresh_token: text("refresh_token").map(Secret::new),
                token_type: text("token_type"),
                expires_at: text("expires_at")
                    .and_then(|at| DateTime::parse_from_rfc3339(&at).ok())
                    .map(|at| at.with_timezone(&Utc)),
                scope: text("scope"),
            }));
        }
        if let Some(vars) = value.get("envVars").and_then(Value::as_array) {
            let vars = vars
                .iter()
                .map(|var| {
                    let key = var.get("key").and_then(Value::as_str);
                    let value = var.get("value").and_then(Value::as_str);
                    match (key, value) {
                        (Some(key), Some(value)) => Ok(EnvVar {
                            key: key.to_owned(),
                            value: Secret::new(value),
                        }),
                        _ => Err(corrupt("malformed env var")),
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(CredentialData::EnvVars(vars));
        }
        // Upstream's legacy form: `{"api_key": "…"}` under the provider's first env var.
        if let Some(key) = text("api_key") {
            let name = provider_info(provider)
                .and_then(|info| info.env.first().copied())
                .unwrap_or("VALUE");
            return Ok(CredentialData::EnvVars(vec![EnvVar {
                key: name.to_owned(),
                value: Secret::new(key),
            }]));
        }
        Err(corrupt("unknown shape"))
    }

    /// The env var names of a secret-type credential (shown as `envKeys`).
    pub fn env_keys(&self) -> Option<Vec<String>> {
        match self {
            CredentialData::EnvVars(vars) => Some(vars.iter().map(|var| var.key.clone()).collect()),
            _ => None,
        }
    }

    /// When an OAuth token expires, if known.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        match self {
            CredentialData::OAuth(token) => token.expires_at,
            CredentialData::Mcp(token) => token
                .expires_at
                .and_then(|secs| DateTime::from_timestamp(secs, 0)),
            CredentialData::EnvVars(_) => None,
        }
    }
}

fn mcp_json(token: &McpToken) -> Value {
    let mut map = Map::new();
    map.insert("url".into(), json!(token.url));
    map.insert("accessToken".into(), json!(token.access_token.expose()));
    if let Some(refresh) = &token.refresh_token {
        map.insert("refreshToken".into(), json!(refresh.expose()));
    }
    if let Some(expires_at) = token.expires_at {
        map.insert("expiresAt".into(), json!(expires_at));
    }
    Value::Object(map)
}

/// A use of a credential the user approved for a session (asked for by the agent).
#[derive(Clone, Debug, PartialEq)]
pub struct SessionCredentialUse {
    /// `use_s_<base32>`.
    pub id: String,
    pub description: String,
    pub created_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_tool_call_id: Option<String>,
}

impl SessionCredentialUse {
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("id".into(), json!(self.id));
        map.insert("description".into(), json!(self.description));
        if let Some(at) = self.created_at {
            map.insert("createdAt".into(), json!(rfc3339(at)));
        }
        if let Some(at) = self.last_used_at {
            map.insert("lastUsedAt".into(), json!(rfc3339(at)));
        }
        if let Some(id) = &self.last_used_tool_call_id {
            map.insert("lastUsedToolCallId".into(), json!(id));
        }
        Value::Object(map)
    }

    pub fn from_json(value: &Value) -> Option<Self> {
        let time = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                .map(|at| at.with_timezone(&Utc))
        };
        Some(SessionCredentialUse {
            id: value.get("id")?.as_str()?.to_owned(),
            description: value.get("description")?.as_str()?.to_owned(),
            created_at: time("createdAt"),
            last_used_at: time("lastUsedAt"),
            last_used_tool_call_id: value
                .get("lastUsedToolCallId")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// The stored form of a list of uses (`uses_json`).
    pub fn list_to_json(uses: &[SessionCredentialUse]) -> String {
        Value::Array(uses.iter().map(SessionCredentialUse::to_json).collect()).to_string()
    }

    /// Reads `uses_json`; entries that do not parse are dropped.
    pub fn list_from_json(text: &str) -> Vec<SessionCredentialUse> {
        serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|value| value.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(SessionCredentialUse::from_json)
            .collect()
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A credential's settings for one session: extra visibility, an env var rename, approved uses.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionCredentialAssignment {
    pub id: String,
    pub session_id: SessionId,
    pub credential_id: CredentialId,
    /// `cred_s_<base32>`: how the agent refers to this assignment.
    pub session_credential_id: String,
    /// Binds the credential to another env var name in this session.
    pub env_var: Option<String>,
    /// Which of the credential's env vars `env_var` takes its value from.
    pub source_env_var: Option<String>,
    pub visibility: Visibility,
    pub uses: Vec<SessionCredentialUse>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A built-in provider: its display name, env vars and OAuth env var.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProviderInfo {
    pub id: &'static str,
    pub name: &'static str,
    /// The first one holds an API key set through `apiKey`.
    pub env: &'static [&'static str],
    /// Where an OAuth access token goes, when not the first env var.
    pub oauth_env: Option<&'static str>,
}

/// The providers credentials can be stored for (besides `custom:*` and `mcp:*`).
pub const PROVIDERS: &[ProviderInfo] = &[
    ProviderInfo {
        id: "anthropic",
        name: "Anthropic",
        env: &["ANTHROPIC_API_KEY"],
        oauth_env: Some("CLAUDE_CODE_OAUTH_TOKEN"),
    },
    ProviderInfo {
        id: "openai",
        name: "OpenAI",
        env: &["OPENAI_API_KEY"],
        oauth_env: None,
    },
    ProviderInfo {
        id: "codex",
        name: "OpenAI Codex",
        env: &["CODEX_TOKEN"],
        oauth_env: None,
    },
    ProviderInfo {
        id: "github-copilot",
        name: "GitHub Copilot",
        env: &["GITHUB_TOKEN"],
        oauth_env: None,
    },
    ProviderInfo {
        id: "github-git",
        name: "GitHub",
        env: &["GITHUB_TOKEN"],
        oauth_env: None,
    },
    ProviderInfo {
        id: "tavily",
        name: "Tavily",
        env: &["TAVILY_API_KEY"],
        oauth_env: None,
    },
    ProviderInfo {
        id: "discobot",
        name: "Discobot",
        env: &["DISCOBOT_TOKEN"],
        oauth_env: None,
    },
];

pub fn provider_info(provider: &str) -> Option<&'static ProviderInfo> {
    PROVIDERS.iter().find(|info| info.id == provider)
}

/// Prefix of the provider of a custom credential (`custom:<uuid>`).
pub const CUSTOM_PREFIX: &str = "custom:";
/// Prefix of the provider of an MCP token (`mcp:<url>`).
pub const MCP_PREFIX: &str = "mcp:";
/// The env var carrying every MCP token to the agent, as a JSON array.
pub const MCP_TOKENS_ENV: &str = "MCP_OAUTH_TOKENS";
/// The provider name of the MCP bundle entry.
pub const MCP_TOKENS_PROVIDER: &str = "mcp-oauth-tokens";

pub fn is_custom(provider: &str) -> bool {
    provider.starts_with(CUSTOM_PREFIX)
}

pub fn is_mcp(provider: &str) -> bool {
    provider.starts_with(MCP_PREFIX)
}

/// The env var an OAuth access token of `provider` is handed over as.
pub fn oauth_env_var(provider: &str) -> Option<&'static str> {
    let info = provider_info(provider)?;
    info.oauth_env.or_else(|| info.env.first().copied())
}

/// Credentials the server imports from its own environment at start, into project `local`:
/// `(env var, provider, auth type)`, in order of preference.
pub const ENV_IMPORTS: &[(&str, &str, AuthType)] = &[
    ("ANTHROPIC_API_KEY", "anthropic", AuthType::ApiKey),
    ("CLAUDE_CODE_OAUTH_TOKEN", "anthropic", AuthType::OAuth),
    ("OPENAI_API_KEY", "openai", AuthType::ApiKey),
    ("CODEX_TOKEN", "codex", AuthType::OAuth),
    ("TAVILY_API_KEY", "tavily", AuthType::ApiKey),
    ("DISCOBOT_TOKEN", "discobot", AuthType::Id),
];

/// Env vars imported along with an API key of the same provider (base URLs of compatible
/// vendors and proxies).
pub const ENV_IMPORT_COMPANIONS: &[(&str, &str)] = &[
    ("anthropic", "ANTHROPIC_BASE_URL"),
    ("openai", "OPENAI_BASE_URL"),
];

/// Every env var name the start-up import reads.
pub fn importable_env_vars() -> Vec<&'static str> {
    ENV_IMPORTS
        .iter()
        .map(|(name, _, _)| *name)
        .chain(ENV_IMPORT_COMPANIONS.iter().map(|(_, name)| *name))
        .collect()
}

/// Longest accepted env var name.
pub const MAX_ENV_NAME: usize = 128;

/// Checks an env var name: `^[A-Za-z_][A-Za-z0-9_]*$`, at most [`MAX_ENV_NAME`] characters.
pub fn check_env_var_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        // The name is not repeated: a value pasted into the wrong field would come back.
        return Err(Error::invalid(
            "invalid environment variable name: use letters, digits and '_', not starting \
             with a digit",
        ));
    }
    if name.len() > MAX_ENV_NAME {
        return Err(Error::invalid(format!(
            "environment variable names must be at most {MAX_ENV_NAME} characters"
        )));
    }
    Ok(())
}

/// `prefix` + 16 characters of lower-case base32 of 10 random bytes (`cred_s_…`, `use_s_…`).
pub fn random_id(prefix: &str) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = [0u8; 10];
    rand::rng().fill_bytes(&mut bytes);
    let mut bits: u64 = 0;
    let mut n_bits = 0;
    let mut out = String::from(prefix);
    for byte in bytes {
        bits = (bits << 8) | u64::from(byte);
        n_bits += 8;
        while n_bits >= 5 {
            n_bits -= 5;
            out.push(ALPHABET[((bits >> n_bits) & 31) as usize] as char);
        }
    }
    out
}

/// A choice the UI offers when adding a credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CredentialType {
    pub id: &'static str,
    pub provider: &'static str,
    pub backend_provider: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub secret_label: &'static str,
    pub env: &'static [&'static str],
    /// `llm` or `vcs`.
    pub category: &'static str,
    /// `model-providers`, `git-version-control` or `tools`.
    pub group: &'static str,
    pub group_name: &'static str,
    pub auth_type: AuthType,
}

/// The credential types of `GET …/credentials/types`. OAuth types arrive with the OAuth
/// flows.
pub const CREDENTIAL_TYPES: &[CredentialType] = &[
    CredentialType {
        id: "anthropic:api_key",
        provider: "anthropic",
        backend_provider: "anthropic",
        name: "Anthropic",
        description: "Claude models through an Anthropic API key",
        secret_label: "API key",
        env: &["ANTHROPIC_API_KEY"],
        category: "llm",
        group: "model-providers",
        group_name: "Model Providers",
        auth_type: AuthType::ApiKey,
    },
    CredentialType {
        id: "openai:api_key",
        provider: "openai",
        backend_provider: "openai",
        name: "OpenAI",
        description: "GPT models through an OpenAI API key",
        secret_label: "API key",
        env: &["OPENAI_API_KEY"],
        category: "llm",
        group: "model-providers",
        group_name: "Model Providers",
        auth_type: AuthType::ApiKey,
    },
    CredentialType {
        id: "github-git:api_key",
        provider: "github-git",
        backend_provider: "github-git",
        name: "GitHub",
        description: "A GitHub token for git over HTTPS and the gh CLI",
        secret_label: "Personal access token",
        env: &["GITHUB_TOKEN"],
        category: "vcs",
        group: "git-version-control",
        group_name: "Git Version Control",
        auth_type: AuthType::ApiKey,
    },
    CredentialType {
        id: "tavily:api_key",
        provider: "tavily",
        backend_provider: "tavily",
        name: "Tavily",
        description: "Web search for the agent",
        secret_label: "API key",
        env: &["TAVILY_API_KEY"],
        category: "llm",
        group: "tools",
        group_name: "Tools",
        auth_type: AuthType::ApiKey,
    },
    CredentialType {
        id: "custom",
        provider: "custom",
        backend_provider: "custom",
        name: "Custom",
        description: "Any environment variables, e.g. a token for another service",
        secret_label: "Value",
        env: &[],
        category: "llm",
        group: "tools",
        group_name: "Tools",
        auth_type: AuthType::ApiKey,
    },
];

/// A model the UI can pick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// `<provider>/<model>`.
    pub id: String,
    pub name: &'static str,
    /// The provider's display name.
    pub provider: &'static str,
    pub reasoning: bool,
}

/// The embedded model catalogue: `(provider, model id, name, reasoning)`.
pub const MODELS: &[(&str, &str, &str, bool)] = &[
    ("anthropic", "claude-sonnet-4-5", "Claude Sonnet 4.5", true),
    ("anthropic", "claude-opus-4-1", "Claude Opus 4.1", true),
    ("anthropic", "claude-haiku-4-5", "Claude Haiku 4.5", true),
    ("openai", "gpt-5", "GPT-5", true),
    ("openai", "gpt-5-mini", "GPT-5 Mini", true),
];

/// The catalogue's models of the given credential providers (`codex` counts as `openai`),
/// in catalogue order.
pub fn models_for_providers<'a>(providers: impl IntoIterator<Item = &'a str>) -> Vec<ModelInfo> {
    let providers: Vec<&str> = providers
        .into_iter()
        .map(|provider| {
            if provider == "codex" {
                "openai"
            } else {
                provider
            }
        })
        .collect();
    MODELS
        .iter()
        .filter(|(provider, ..)| providers.contains(provider))
        .map(|(provider, model, name, reasoning)| ModelInfo {
            id: format!("{provider}/{model}"),
            name,
            provider: provider_info(provider).map_or(provider, |info| info.name),
            reasoning: *reasoning,
        })
        .collect()
}

/// One entry of the `X-Discobot-Credentials` header: an env var the agent may use.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentCredential {
    pub credential_id: Option<CredentialId>,
    pub session_credential_id: Option<String>,
    pub uses: Vec<SessionCredentialUse>,
    pub env_var: String,
    pub value: Secret,
    pub provider: String,
    pub auth_type: AuthType,
    /// `tools` is the header's `agentVisible`.
    pub visibility: Visibility,
    /// Unix seconds.
    pub expires_at: Option<i64>,
}

/// The header entries of a session: every configured, active credential of its project (the
/// agent's own provider code uses them all), each with the visibility of global OR session
/// assignment per context; an assignment's `envVar` re-binds the value; all MCP tokens are
/// bundled into one `MCP_OAUTH_TOKENS` entry.
pub fn build_agent_credentials(
    credentials: &[(Credential, CredentialData)],
    assignments: &[SessionCredentialAssignment],
) -> Vec<AgentCredential> {
    let mut entries = Vec::new();
    let mut mcp_tokens = Vec::new();
    for (credential, data) in credentials {
        if !credential.is_configured || credential.inactive {
            continue;
        }
        let assignment = assignments
            .iter()
            .find(|assignment| assignment.credential_id == credential.id);
        let visibility = credential
            .visibility
            .or(assignment.map_or(Visibility::NONE, |a| a.visibility));
        let rebound = assignment
            .and_then(|a| a.env_var.as_deref())
            .filter(|name| !name.is_empty());
        let entry = |env_var: &str, value: &Secret, expires_at: Option<i64>| AgentCredential {
            credential_id: Some(credential.id.clone()),
            session_credential_id: assignment.map(|a| a.session_credential_id.clone()),
            uses: assignment.map(|a| a.uses.clone()).unwrap_or_default(),
            env_var: env_var.to_owned(),
            value: value.clone(),
            provider: credential.provider.clone(),
            auth_type: credential.auth_type,
            visibility,
            expires_at,
        };
        match data {
            CredentialData::Mcp(token) => mcp_tokens.push(mcp_json(token)),
            CredentialData::EnvVars(vars) => match rebound {
                Some(target) => {
                    let source = assignment
                        .and_then(|a| a.source_env_var.as_deref())
                        .filter(|name| !name.is_empty());
                    let var = match source {
                        Some(source) => vars.iter().find(|var| var.key == source),
                        None => vars.first(),
                    };
                    if let Some(var) = var {
                        entries.push(entry(target, &var.value, None));
                    }
                }
                None => {
                    for var in vars {
                        entries.push(entry(&var.key, &var.value, None));
                    }
                }
            },
            CredentialData::OAuth(token) => {
                let env_var = rebound.or_else(|| oauth_env_var(&credential.provider));
                if let Some(env_var) = env_var {
                    let expires_at = token.expires_at.map(|at| at.timestamp());
                    entries.push(entry(env_var, &token.access_token, expires_at));
                }
            }
        }
    }
    if !mcp_tokens.is_empty() {
        entries.push(AgentCredential {
            credential_id: None,
            session_credential_id: None,
            uses: Vec::new(),
            env_var: MCP_TOKENS_ENV.to_owned(),
            value: Secret::new(Value::Array(mcp_tokens).to_string()),
            provider: MCP_TOKENS_PROVIDER.to_owned(),
            auth_type: AuthType::OAuth,
            visibility: Visibility {
                tools: true,
                ..Visibility::NONE
            },
            expires_at: None,
        });
    }
    entries
}

/// The value of the `X-Discobot-Credentials` header: a JSON array of `{credentialId?,
/// sessionCredentialId?, uses?, envVar, value, provider, authType, agentVisible,
/// consoleVisible, serviceVisible, hookVisible, expiresAt?}`, as pure ASCII (characters
/// beyond it are `\u` escapes) so that it is always a valid header value.
pub fn encode_credentials_header(entries: &[AgentCredential]) -> String {
    let array: Vec<Value> = entries
        .iter()
        .map(|entry| {
            let mut map = Map::new();
            if let Some(id) = &entry.credential_id {
                map.insert("credentialId".into(), json!(id.as_str()));
            }
            if let Some(id) = &entry.session_credential_id {
                map.insert("sessionCredentialId".into(), json!(id));
            }
            if !entry.uses.is_empty() {
                map.insert(
                    "uses".into(),
                    Value::Array(
                        entry
                            .uses
                            .iter()
                            .map(SessionCredentialUse::to_json)
                            .collect(),
                    ),
                );
            }
            map.insert("envVar".into(), json!(entry.env_var));
            map.insert("value".into(), json!(entry.value.expose()));
            map.insert("provider".into(), json!(entry.provider));
            map.insert("authType".into(), json!(entry.auth_type.as_str()));
            map.insert("agentVisible".into(), json!(entry.visibility.tools));
            map.insert("consoleVisible".into(), json!(entry.visibility.console));
            map.insert("serviceVisible".into(), json!(entry.visibility.services));
            map.insert("hookVisible".into(), json!(entry.visibility.hooks));
            if let Some(expires_at) = entry.expires_at {
                map.insert("expiresAt".into(), json!(expires_at));
            }
            Value::Object(map)
        })
        .collect();
    ascii_json(&Value::Array(array).to_string())
}

/// Escapes every non-ASCII character of a JSON text as `\uXXXX` (surrogate pairs beyond the
/// BMP). serde_json already escapes control characters, and non-ASCII characters can only
/// occur inside strings, so the result is the same JSON value.
fn ascii_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// Reads an `X-Discobot-Credentials` value (the inverse of [`encode_credentials_header`]; the
/// agent's side). `agentVisible` defaults to true and the other visibilities to false, as in
/// the sandbox protocol; `uses` entries that do not parse are dropped. Errors name the entry
/// and the field, never a value.
pub fn decode_credentials_header(header: &str) -> Result<Vec<AgentCredential>> {
    let invalid = |what: String| Error::invalid(format!("invalid credentials header: {what}"));
    // serde_json's own messages can quote the input, so they are not passed on.
    let value: Value =
        serde_json::from_str(header).map_err(|_| invalid("not a JSON value".to_owned()))?;
    let Value::Array(items) = value else {
        return Err(invalid("not a JSON array".to_owned()));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let field = |name: &str| -> Result<Option<&Value>> {
                match item.get(name) {
                    None | Some(Value::Null) => Ok(None),
                    Some(value) => Ok(Some(value)),
                }
            };
            let text = |name: &str| -> Result<Option<String>> {
                match field(name)? {
                    None => Ok(None),
                    Some(Value::String(text)) => Ok(Some(text.clone())),
                    Some(_) => Err(invalid(format!("entry {index}: {name} is not a string"))),
                }
            };
            let required = |name: &str| -> Result<String> {
                text(name)?.ok_or_else(|| invalid(format!("entry {index}: {name} is missing")))
            };
            let flag = |name: &str, default: bool| -> Result<bool> {
                match field(name)? {
                    None => Ok(default),
                    Some(Value::Bool(flag)) => Ok(*flag),
                    Some(_) => Err(invalid(format!("entry {index}: {name} is not a boolean"))),
                }
            };
            if !item.is_object() {
                return Err(invalid(format!("entry {index} is not an object")));
            }
            let auth_type = AuthType::parse(&required("authType")?)
                .map_err(|_| invalid(format!("entry {index}: unknown authType")))?;
            let expires_at = match field("expiresAt")? {
                None => None,
                Some(value) => Some(value.as_i64().ok_or_else(|| {
                    invalid(format!("entry {index}: expiresAt is not an integer"))
                })?),
            };
            let uses = match field("uses")? {
                None => Vec::new(),
                Some(Value::Array(uses)) => uses
                    .iter()
                    .filter_map(SessionCredentialUse::from_json)
                    .collect(),
                Some(_) => return Err(invalid(format!("entry {index}: uses is not an array"))),
            };
            Ok(AgentCredential {
                credential_id: text("credentialId")?.map(CredentialId::new),
                session_credential_id: text("sessionCredentialId")?,
                uses,
                env_var: required("envVar")?,
                value: Secret::new(required("value")?),
                provider: required("provider")?,
                auth_type,
                visibility: Visibility {
                    tools: flag("agentVisible", true)?,
                    console: flag("consoleVisible", false)?,
                    services: flag("serviceVisible", false)?,
                    hooks: flag("hookVisible", false)?,
                },
                expires_at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn credential(id: &str, provider: &str, auth_type: AuthType) -> Credential {
        Credential {
            id: CredentialId::new(id),
            project_id: ProjectId::local(),
            provider: provider.to_owned(),
            name: id.to_owned(),
            description: None,
            auth_type,
            sealed: Some(vec![1, 2, 3]),
            is_configured: true,
            inactive: false,
            visibility: Visibility::NONE,
            created_at: at(0),
            updated_at: at(0),
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> CredentialData {
        CredentialData::EnvVars(
            pairs
                .iter()
                .map(|(key, value)| EnvVar {
                    key: (*key).to_owned(),
                    value: Secret::new(*value),
                })
                .collect(),
        )
    }

    fn oauth(token: &str, expires_at: Option<i64>) -> CredentialData {
        CredentialData::OAuth(OAuthToken {
            access_token: Secret::new(token),
            refresh_token: Some(Secret::new("refresh")),
            token_type: Some("Bearer".into()),
            expires_at: expires_at.map(at),
            scope: None,
        })
    }

    fn assignment(credential: &str, visibility: Visibility) -> SessionCredentialAssignment {
        SessionCredentialAssignment {
            id: "a1".into(),
            session_id: SessionId::new("s1"),
            credential_id: CredentialId::new(credential),
            session_credential_id: "cred_s_abc".into(),
            env_var: None,
            source_env_var: None,
            visibility,
            uses: Vec::new(),
            created_at: at(0),
            updated_at: at(0),
        }
    }

    fn by_env<'a>(entries: &'a [AgentCredential], env: &str) -> &'a AgentCredential {
        entries
            .iter()
            .find(|entry| entry.env_var == env)
            .unwrap_or_else(|| panic!("no {env} in {entries:?}"))
    }

    #[test]
    fn env_var_mapping_of_providers() {
        let creds = vec![
            (
                credential("c1", "anthropic", AuthType::ApiKey),
                vars(&[
                    ("ANTHROPIC_API_KEY", "sk-ant"),
                    ("ANTHROPIC_BASE_URL", "http://fake"),
                ]),
            ),
            (
                credential("c2", "openai", AuthType::ApiKey),
                vars(&[("OPENAI_API_KEY", "sk-oai")]),
            ),
            (
                credential("c3", "codex", AuthType::OAuth),
                oauth("codex-token", Some(1_900_000_000)),
            ),
            (
                credential("c4", "tavily", AuthType::ApiKey),
                vars(&[("TAVILY_API_KEY", "tvly")]),
            ),
            (
                credential("c5", "github-git", AuthType::OAuth),
                oauth("gho", None),
            ),
            (
                credential("c6", "discobot", AuthType::Id),
                vars(&[("DISCOBOT_TOKEN", "db")]),
            ),
            (
                credential("c7", "custom:1234", AuthType::ApiKey),
                vars(&[("MY_TOKEN", "mine"), ("OTHER", "o")]),
            ),
        ];
        let entries = build_agent_credentials(&creds, &[]);
        let envs: Vec<&str> = entries.iter().map(|e| e.env_var.as_str()).collect();
        assert_eq!(
            envs,
            [
                "ANTHROPIC_API_KEY",
                "ANTHROPIC_BASE_URL",
                "OPENAI_API_KEY",
                "CODEX_TOKEN",
                "TAVILY_API_KEY",
                "GITHUB_TOKEN",
                "DISCOBOT_TOKEN",
                "MY_TOKEN",
                "OTHER"
            ]
        );
        assert_eq!(
            by_env(&entries, "ANTHROPIC_BASE_URL").value.expose(),
            "http://fake"
        );
        let codex = by_env(&entries, "CODEX_TOKEN");
        assert_eq!(codex.value.expose(), "codex-token");
        assert_eq!(codex.auth_type, AuthType::OAuth);
        assert_eq!(codex.expires_at, Some(1_900_000_000));
        assert_eq!(codex.credential_id.as_ref().unwrap().as_str(), "c3");
        assert_eq!(by_env(&entries, "MY_TOKEN").provider, "custom:1234");
        assert_eq!(by_env(&entries, "DISCOBOT_TOKEN").auth_type, AuthType::Id);
    }

    #[test]
    fn anthropic_oauth_goes_to_claude_code_oauth_token() {
        let creds = vec![(
            credential("c1", "anthropic", AuthType::OAuth),
            oauth("oat", None),
        )];
        let entries = build_agent_credentials(&creds, &[]);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].env_var, "CLAUDE_CODE_OAUTH_TOKEN");
        assert_eq!(entries[0].value.expose(), "oat");
        assert_eq!(entries[0].expires_at, None);
        // An OAuth credential of a provider without env vars has nowhere to go.
        let creds = vec![(
            credential("c2", "custom:x", AuthType::OAuth),
            oauth("t", None),
        )];
        assert!(build_agent_credentials(&creds, &[]).is_empty());
    }

    #[test]
    fn inactive_and_unconfigured_credentials_are_skipped() {
        let mut inactive = credential("c1", "anthropic", AuthType::ApiKey);
        inactive.inactive = true;
        let mut unconfigured = credential("c2", "openai", AuthType::ApiKey);
        unconfigured.is_configured = false;
        let creds = vec![
            (inactive, vars(&[("ANTHROPIC_API_KEY", "a")])),
            (unconfigured, vars(&[("OPENAI_API_KEY", "b")])),
            (
                credential("c3", "tavily", AuthType::ApiKey),
                vars(&[("TAVILY_API_KEY", "c")]),
            ),
        ];
        let entries = build_agent_credentials(&creds, &[]);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].env_var, "TAVILY_API_KEY");
    }

    #[test]
    fn visibility_is_global_or_session() {
        let mut global = credential("c1", "custom:a", AuthType::ApiKey);
        global.visibility = Visibility {
            tools: true,
            hooks: true,
            ..Visibility::NONE
        };
        let hidden = credential("c2", "custom:b", AuthType::ApiKey);
        let assigned = credential("c3", "custom:c", AuthType::ApiKey);
        let creds = vec![
            (global, vars(&[("A", "1")])),
            (hidden, vars(&[("B", "2")])),
            (assigned, vars(&[("C", "3")])),
        ];
        let assignments = vec![
            // Session settings add to the global ones, never take away.
            assignment("c1", Visibility::NONE),
            assignment(
                "c3",
                Visibility {
                    console: true,
                    services: true,
                    ..Visibility::NONE
                },
            ),
        ];
        let entries = build_agent_credentials(&creds, &assignments);
        let a = by_env(&entries, "A");
        assert_eq!(
            a.visibility,
            Visibility {
                tools: true,
                hooks: true,
                ..Visibility::NONE
            }
        );
        assert_eq!(a.session_credential_id.as_deref(), Some("cred_s_abc"));
        let b = by_env(&entries, "B");
        assert_eq!(b.visibility, Visibility::NONE, "still sent, but hidden");
        assert_eq!(b.session_credential_id, None);
        let c = by_env(&entries, "C");
        assert_eq!(
            c.visibility,
            Visibility {
                console: true,
                services: true,
                ..Visibility::NONE
            }
        );
        // An assignment of another session's credential set changes nothing here.
        let other = vec![assignment(
            "zz",
            Visibility {
                tools: true,
                ..Visibility::NONE
            },
        )];
        let entries = build_agent_credentials(&creds, &other);
        assert!(!by_env(&entries, "B").visibility.tools);
    }

    #[test]
    fn assignment_env_var_rebinds_one_value() {
        let creds = vec![
            (
                credential("c1", "custom:a", AuthType::ApiKey),
                vars(&[("FIRST", "1"), ("SECOND", "2")]),
            ),
            (
                credential("c2", "custom:b", AuthType::ApiKey),
                vars(&[("X", "x1"), ("Y", "y1")]),
            ),
            (
                credential("c3", "anthropic", AuthType::OAuth),
                oauth("oat", Some(5)),
            ),
            (
                credential("c4", "custom:d", AuthType::ApiKey),
                vars(&[("D", "d")]),
            ),
        ];
        let mut by_source = assignment("c1", Visibility::NONE);
        by_source.env_var = Some("RENAMED".into());
        by_source.source_env_var = Some("SECOND".into());
        let mut by_first = assignment("c2", Visibility::NONE);
        by_first.env_var = Some("ONLY".into());
        let mut token = assignment("c3", Visibility::NONE);
        token.env_var = Some("MY_OAUTH".into());
        let mut missing = assignment("c4", Visibility::NONE);
        missing.env_var = Some("NOPE".into());
        missing.source_env_var = Some("ABSENT".into());
        let entries = build_agent_credentials(&creds, &[by_source, by_first, token, missing]);
        let envs: Vec<&str> = entries.iter().map(|e| e.env_var.as_str()).collect();
        assert_eq!(envs, ["RENAMED", "ONLY", "MY_OAUTH"]);
        assert_eq!(entries[0].value.expose(), "2");
        assert_eq!(entries[1].value.expose(), "x1");
        assert_eq!(entries[2].value.expose(), "oat");
        assert_eq!(entries[2].expires_at, Some(5));
    }

    #[test]
    fn mcp_tokens_are_bundled() {
        let mcp = |id: &str, url: &str, token: &str| {
            (
                credential(id, &format!("mcp:{url}"), AuthType::OAuth),
                CredentialData::Mcp(McpToken {
                    url: url.to_owned(),
                    access_token: Secret::new(token),
                    refresh_token: None,
                    expires_at: Some(42),
                }),
            )
        };
        let mut inactive = mcp("m3", "https://c.example/mcp", "t3");
        inactive.0.inactive = true;
        let creds = vec![
            mcp("m1", "https://a.example/mcp", "t1"),
            (
                credential("c1", "openai", AuthType::ApiKey),
                vars(&[("OPENAI_API_KEY", "k")]),
            ),
            mcp("m2", "https://b.example/mcp", "t2"),
            inactive,
        ];
        let entries = build_agent_credentials(&creds, &[]);
        assert_eq!(entries.len(), 2);
        let bundle = by_env(&entries, MCP_TOKENS_ENV);
        assert_eq!(bundle.provider, MCP_TOKENS_PROVIDER);
        assert_eq!(bundle.auth_type, AuthType::OAuth);
        assert_eq!(bundle.credential_id, None);
        assert_eq!(
            bundle.visibility,
            Visibility {
                tools: true,
                ..Visibility::NONE
            }
        );
        let tokens: Value = serde_json::from_str(bundle.value.expose()).unwrap();
        assert_eq!(
            tokens,
            json!([
                {"url": "https://a.example/mcp", "accessToken": "t1", "expiresAt": 42},
                {"url": "https://b.example/mcp", "accessToken": "t2", "expiresAt": 42},
            ])
        );
    }

    #[test]
    fn header_encoding() {
        let mut assigned = assignment(
            "c1",
            Visibility {
                console: true,
                ..Visibility::NONE
            },
        );
        assigned.uses = vec![SessionCredentialUse {
            id: "use_s_x".into(),
            description: "deploy".into(),
            created_at: Some(at(0)),
            last_used_at: None,
            last_used_tool_call_id: None,
        }];
        let mut global = credential("c1", "custom:a", AuthType::ApiKey);
        global.visibility.tools = true;
        let creds = vec![
            (global, vars(&[("TOKEN", "välue\n\"quoted\" 🔑")])),
            (
                credential("c2", "codex", AuthType::OAuth),
                oauth("tok", Some(100)),
            ),
        ];
        let entries = build_agent_credentials(&creds, &[assigned]);
        let header = encode_credentials_header(&entries);
        assert!(header.is_ascii(), "{header}");
        assert!(!header.contains('\n'));
        let parsed: Value = serde_json::from_str(&header).unwrap();
        assert_eq!(
            parsed,
            json!([
                {
                    "credentialId": "c1",
                    "sessionCredentialId": "cred_s_abc",
                    "uses": [{"id": "use_s_x", "description": "deploy", "createdAt": "1970-01-01T00:00:00Z"}],
                    "envVar": "TOKEN",
                    "value": "välue\n\"quoted\" 🔑",
                    "provider": "custom:a",
                    "authType": "api_key",
                    "agentVisible": true,
                    "consoleVisible": true,
                    "serviceVisible": false,
                    "hookVisible": false,
                },
                {
                    "credentialId": "c2",
                    "envVar": "CODEX_TOKEN",
                    "value": "tok",
                    "provider": "codex",
                    "authType": "oauth",
                    "agentVisible": false,
                    "consoleVisible": false,
                    "serviceVisible": false,
                    "hookVisible": false,
                    "expiresAt": 100,
                },
            ])
        );
        assert_eq!(encode_credentials_header(&[]), "[]");
        // Debug output of the entries never shows a value.
        let debug = format!("{entries:?}");
        assert!(
            !debug.contains("välue") && !debug.contains("tok\""),
            "{debug}"
        );
    }

    #[test]
    fn header_decoding_inverts_encoding() {
        let mut assigned = assignment("c1", Visibility::NONE);
        assigned.uses = vec![SessionCredentialUse {
            id: "use_s_x".into(),
            description: "deploy".into(),
            created_at: Some(at(0)),
            last_used_at: None,
            last_used_tool_call_id: None,
        }];
        let creds = vec![
            (
                credential("c1", "custom:a", AuthType::ApiKey),
                vars(&[("TOKEN", "välue\n\"quoted\" 🔑")]),
            ),
            (
                credential("c2", "codex", AuthType::OAuth),
                oauth("tok", Some(100)),
            ),
        ];
        let entries = build_agent_credentials(&creds, &[assigned]);
        let decoded = decode_credentials_header(&encode_credentials_header(&entries)).unwrap();
        assert_eq!(decoded, entries);
        assert_eq!(decode_credentials_header("[]").unwrap(), []);

        // The older protocol's minimal entry: agentVisible defaults to true.
        let minimal = decode_credentials_header(
            r#"[{"envVar":"A","value":"v","provider":"anthropic","authType":"api_key"}]"#,
        )
        .unwrap();
        assert!(minimal[0].visibility.tools);
        assert!(!minimal[0].visibility.console);

        for (header, expected) in [
            ("{}", "not a JSON array"),
            ("[1", "not a JSON value"),
            ("[1]", "entry 0 is not an object"),
            (
                r#"[{"value":"sk-secret","provider":"p","authType":"api_key"}]"#,
                "envVar is missing",
            ),
            (
                r#"[{"envVar":"A","value":"sk-secret","provider":"p","authType":"sk-secret"}]"#,
                "unknown authType",
            ),
            (
                r#"[{"envVar":"A","value":7,"provider":"p","authType":"oauth"}]"#,
                "value is not a string",
            ),
            (
                r#"[{"envVar":"A","value":"sk-secret","provider":"p","authType":"oauth","agentVisible":"sk-secret"}]"#,
                "agentVisible is not a boolean",
            ),
        ] {
            let err = decode_credentials_header(header).unwrap_err().to_string();
            assert!(err.contains(expected), "{header}: {err}");
            assert!(!err.contains("sk-secret"), "{err}");
        }
    }

    #[test]
    fn data_json_round_trips() {
        let cases = [
            (
                "anthropic",
                AuthType::ApiKey,
                vars(&[("ANTHROPIC_API_KEY", "k"), ("B", "")]),
            ),
            ("codex", AuthType::OAuth, oauth("t", Some(1_700_000_000))),
            (
                "mcp:https://x/mcp",
                AuthType::OAuth,
                CredentialData::Mcp(McpToken {
                    url: "https://x/mcp".into(),
                    access_token: Secret::new("a"),
                    refresh_token: Some(Secret::new("r")),
                    expires_at: None,
                }),
            ),
        ];
        for (provider, auth_type, data) in cases {
            let json = data.to_json();
            assert_eq!(
                CredentialData::from_json(provider, auth_type, &json).unwrap(),
                data
            );
        }
        // Upstream's legacy `{"api_key": …}` maps to the provider's first env var.
        let legacy =
            CredentialData::from_json("openai", AuthType::ApiKey, br#"{"api_key":"k"}"#).unwrap();
        assert_eq!(legacy, vars(&[("OPENAI_API_KEY", "k")]));
        let error = CredentialData::from_json("openai", AuthType::ApiKey, b"{\"nope\":\"sk-x\"}")
            .unwrap_err();
        assert!(!error.message.contains("sk-x"));
        assert!(CredentialData::from_json("openai", AuthType::ApiKey, b"sk-x").is_err());
        assert_eq!(
            vars(&[("A", "1"), ("B", "2")]).env_keys(),
            Some(vec!["A".to_owned(), "B".to_owned()])
        );
        assert_eq!(oauth("t", None).env_keys(), None);
        assert_eq!(oauth("t", Some(7)).expires_at(), Some(at(7)));
    }

    #[test]
    fn env_var_names() {
        for good in ["A", "_", "ANTHROPIC_API_KEY", "a1_b2", "_X9"] {
            check_env_var_name(good).unwrap();
        }
        for bad in ["", "1A", "A-B", "A B", "Ä", "A=B", "A\0"] {
            assert!(check_env_var_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_env_var_name(&"A".repeat(MAX_ENV_NAME)).is_ok());
        assert!(check_env_var_name(&"A".repeat(MAX_ENV_NAME + 1)).is_err());
    }

    #[test]
    fn random_ids() {
        let id = random_id("cred_s_");
        assert!(id.starts_with("cred_s_"));
        assert_eq!(id.len(), "cred_s_".len() + 16);
        assert!(
            id["cred_s_".len()..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        );
        assert_ne!(random_id("x"), random_id("x"));
    }

    #[test]
    fn model_catalogue() {
        assert!(models_for_providers([]).is_empty());
        assert!(models_for_providers(["tavily", "custom:x"]).is_empty());
        let models = models_for_providers(["anthropic"]);
        assert_eq!(models.len(), 3);
        assert_eq!(models[0].id, "anthropic/claude-sonnet-4-5");
        assert_eq!(models[0].provider, "Anthropic");
        let models = models_for_providers(["codex"]);
        let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["openai/gpt-5", "openai/gpt-5-mini"]);
        assert_eq!(models[0].provider, "OpenAI");
    }

    #[test]
    fn uses_json_round_trip() {
        let uses = vec![SessionCredentialUse {
            id: "use_s_1".into(),
            description: "push".into(),
            created_at: Some(at(10)),
            last_used_at: Some(at(20)),
            last_used_tool_call_id: Some("call_1".into()),
        }];
        let text = SessionCredentialUse::list_to_json(&uses);
        assert_eq!(SessionCredentialUse::list_from_json(&text), uses);
        assert!(SessionCredentialUse::list_from_json("garbage").is_empty());
    }

    #[test]
    fn debug_of_records_hides_values() {
        let data = vars(&[("KEY", "super-secret-value")]);
        assert!(!format!("{data:?}").contains("super-secret-value"));
        let token = oauth("super-secret-token", None);
        assert!(!format!("{token:?}").contains("super-secret-token"));
        let debug = format!("{:?}", credential("c1", "openai", AuthType::ApiKey));
        assert!(debug.contains("<3 bytes>"), "{debug}");
    }
}
