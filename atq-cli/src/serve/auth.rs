//! Who calls: bearer tokens, stored hashed in a tokens file, each with a name, scopes and an
//! optional policy; the [`Caller`] extractor that every route starts with.
//!
//! A token is `atq_` and 64 hex digits (32 random bytes from the OS), shown once by `atq token
//! add`; the file keeps only its SHA-256 (hex). A presented token is hashed and compared with
//! every stored hash in constant time (`subtle`), so neither the comparison's time nor the log
//! (tokens are never logged) tells anything about a stored token.

use std::path::Path;
use std::sync::Arc;

use atq_core::policy::Policy;
use atq_core::runs::Client;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::problem::Problem;
use super::AppState;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Read runs, their events, logs, artifacts and reports; list data bundles.
    #[serde(rename = "runs:read")]
    RunsRead,
    /// Submit and abort runs.
    #[serde(rename = "runs:write")]
    RunsWrite,
    /// Upload and remove data bundles.
    #[serde(rename = "data:write")]
    DataWrite,
    /// Everything, on every client's runs.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    /// Its name in the tokens file and in errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::RunsRead => "runs:read",
            Scope::RunsWrite => "runs:write",
            Scope::DataWrite => "data:write",
            Scope::Admin => "admin",
        }
    }

    /// The scope named `name`.
    pub fn parse(name: &str) -> Option<Scope> {
        [Scope::RunsRead, Scope::RunsWrite, Scope::DataWrite, Scope::Admin].into_iter().find(|s| s.as_str() == name)
    }
}

/// One token of the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Its name: the owner of the runs it submits.
    pub name: String,
    /// SHA-256 of the token, hex.
    pub sha256: String,
    /// What it allows.
    pub scopes: Vec<Scope>,
    /// Its own policy (None: the file's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
}

/// The tokens file: the tokens and the policy of those without their own.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensFile {
    /// The policy of every token without its own.
    #[serde(default)]
    pub policy: Policy,
    /// The tokens.
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
}

impl TokensFile {
    /// Reads `path` (a missing file is an empty one).
    pub fn load(path: &Path) -> Result<TokensFile, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| format!("tokens file {}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokensFile::default()),
            Err(e) => Err(format!("cannot read the tokens file {}: {e}", path.display())),
        }
    }

    /// Writes it to `path` (readable by its owner only), through a temporary file.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).expect("tokens files serialise");
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file =
                std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| format!("cannot write the tokens file {}: {e}", path.display()))
    }
}

/// SHA-256 of `token`, hex.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token: `atq_` and 64 hex digits.
pub fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the OS: {e}"))?;
    Ok(format!("atq_{}", hex::encode(bytes)))
}

/// How callers are authenticated.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Bearer tokens from the tokens file.
    Tokens(Arc<TokensFile>),
    /// `--insecure-no-auth` on loopback: every caller is an admin named `anonymous`.
    Disabled,
}

impl Auth {
    /// The caller presenting `token`, if any entry matches (every entry is compared).
    fn identify(&self, token: &str) -> Option<Caller> {
        let Auth::Tokens(file) = self else { return Some(Caller::anonymous()) };
        let presented = hash_token(token);
        let mut found = None;
        for entry in &file.tokens {
            if bool::from(presented.as_bytes().ct_eq(entry.sha256.as_bytes())) {
                found = Some(entry);
            }
        }
        found.map(|entry| Caller {
            client: Client {
                name: entry.name.clone(),
                admin: entry.scopes.contains(&Scope::Admin),
                policy: entry.policy.clone().unwrap_or_else(|| file.policy.clone()),
            },
            scopes: entry.scopes.clone(),
        })
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// As the core sees it: name, admin, policy.
    pub client: Client,
    /// What it may do.
    pub scopes: Vec<Scope>,
}

impl Caller {
    fn anonymous() -> Caller {
        Caller {
            client: Client { name: "anonymous".into(), admin: true, policy: Policy::default() },
            scopes: vec![Scope::Admin],
        }
    }

    /// Refuses (403) unless the caller has `scope` (or `admin`).
    pub fn require(&self, scope: Scope) -> Result<(), Problem> {
        if self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin) {
            Ok(())
        } else {
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this token (`{}`) lacks the scope `{}`", self.client.name, scope.as_str()),
            ))
        }
    }
}

fn unauthorized(detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = axum::response::Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let challenge = |problem: Problem| {
            let mut response = problem.into_response();
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            response
        };
        if matches!(state.auth, Auth::Disabled) {
            return Ok(Caller::anonymous());
        }
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(challenge(unauthorized("a bearer token is required: `Authorization: Bearer atq_…`")));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(challenge(unauthorized("the Authorization header must be `Bearer <token>`")));
        };
        state.auth.identify(token).ok_or_else(|| challenge(unauthorized("the token is not known to this service")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_found_by_its_hash_and_only_by_it() {
        let token = new_token().unwrap();
        assert!(token.starts_with("atq_") && token.len() == 68);
        let file = TokensFile {
            policy: Policy::default(),
            tokens: vec![TokenEntry {
                name: "ci".into(),
                sha256: hash_token(&token),
                scopes: vec![Scope::RunsRead],
                policy: None,
            }],
        };
        let auth = Auth::Tokens(Arc::new(file));
        let caller = auth.identify(&token).unwrap();
        assert_eq!(caller.client.name, "ci");
        assert!(!caller.client.admin);
        assert!(caller.require(Scope::RunsRead).is_ok());
        assert_eq!(caller.require(Scope::RunsWrite).unwrap_err().status, 403);
        assert!(auth.identify("atq_wrong").is_none());
    }
}
