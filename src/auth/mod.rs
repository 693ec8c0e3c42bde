//! API keys and scopes: creation (the key is shown once, only its hash is kept), and checking
//! a presented key. HTTP decides which scope a route needs (`http/auth.rs`).

use crate::store::{KeyRecord, Store, StoreError};

pub const SCOPES: [&str; 3] = ["query", "feedback", "admin"];

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing API key: send `Authorization: Bearer <key>`")]
    Missing,
    #[error("invalid API key")]
    Invalid,
    #[error("this API key was revoked")]
    Revoked,
    #[error("this API key lacks the `{0}` scope")]
    Scope(&'static str),
    #[error("unknown scope `{0}` (scopes: query, feedback, admin)")]
    UnknownScope(String),
    #[error("the tenant name must be 1-64 characters of letters, digits, `-`, `_` or `.`")]
    BadTenant,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn hash_key(key: &str) -> String {
    crate::digest::sha256_hex(key.as_bytes())
}

/// Creates a key; returns the record and the key itself (to print once).
pub async fn create_key(store: &Store, tenant: &str, scopes: &[String]) -> Result<(KeyRecord, String), AuthError> {
    if tenant.is_empty() || tenant.len() > 64 || !tenant.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(AuthError::BadTenant);
    }
    let mut clean: Vec<String> = Vec::new();
    for s in scopes.iter().flat_map(|s| s.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
        if !SCOPES.contains(&s) {
            return Err(AuthError::UnknownScope(s.to_string()));
        }
        if !clean.iter().any(|c| c == s) {
            clean.push(s.to_string());
        }
    }
    if clean.is_empty() {
        clean.push("query".into());
    }
    let id = format!("key_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let key = format!("kl_{}_{}", &id[4..], secret);
    let rec = KeyRecord {
        id,
        tenant: tenant.to_string(),
        scopes: clean,
        created_at_ms: crate::trace::now_ms(),
        revoked_at_ms: None,
    };
    store.keys.create_key(&rec, &hash_key(&key)).await?;
    Ok((rec, key))
}

/// Checks a presented key and the scope the route needs.
pub async fn authorize(store: &Store, presented: Option<&str>, scope: &'static str) -> Result<KeyRecord, AuthError> {
    let key = presented.map(str::trim).filter(|k| !k.is_empty()).ok_or(AuthError::Missing)?;
    let rec = store.keys.key_by_hash(&hash_key(key)).await?.ok_or(AuthError::Invalid)?;
    if rec.revoked_at_ms.is_some() {
        return Err(AuthError::Revoked);
    }
    if !rec.scopes.iter().any(|s| s == scope || s == "admin") {
        return Err(AuthError::Scope(scope));
    }
    Ok(rec)
}
