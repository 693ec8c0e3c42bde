//! API keys: created once, stored as hashes, required on every route but health checks;
//! missing, wrong or revoked → 401, wrong scope → 403.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code: a panic is a failed test")]

use std::sync::Arc;

use keel::config::Config;
use keel::gateway::Gateway;
use keel::http::ServerState;
use keel::store::Store;

#[tokio::test]
async fn keys_scopes_and_revocation() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_embedded(tmp.path()).await.unwrap();
    let (query_rec, query_key) = keel::auth::create_key(&store, "acme", &["query".into()]).await.unwrap();
    let (_, admin_key) = keel::auth::create_key(&store, "acme", &["admin".into()]).await.unwrap();

    // Only a hash is stored.
    let listed = store.keys.list_keys().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(!format!("{listed:?}").contains(&query_key));

    let gateway = Arc::new(Gateway::new(&Config::default().gateway, &Default::default()).unwrap());
    let state = ServerState::proxy_only(1 << 20, gateway).with_auth(store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { keel::http::serve(listener, state, std::future::pending()).await.unwrap() });
    let c = reqwest::Client::new();
    let get = |path: &str, key: Option<&str>| {
        let mut r = c.get(format!("http://{addr}{path}"));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send()
    };

    assert_eq!(get("/healthz", None).await.unwrap().status(), 200, "health checks are public");
    assert_eq!(get("/readyz", None).await.unwrap().status(), 200);
    let r = get("/v1/models", None).await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert!(body["error"]["message"].as_str().unwrap().contains("missing API key"));
    assert_eq!(get("/v1/models", Some("kl_nope_nope")).await.unwrap().status(), 401);
    assert_eq!(get("/v1/models", Some(&query_key)).await.unwrap().status(), 200);
    let r = c.get(format!("http://{addr}/v1/models")).header("x-api-key", &query_key).send().await.unwrap();
    assert_eq!(r.status(), 200, "x-api-key works too");

    let r = get("/v1/admin/breakers", Some(&query_key)).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"]["code"], "insufficient_scope");
    assert_eq!(get("/v1/admin/breakers", Some(&admin_key)).await.unwrap().status(), 200);
    assert_eq!(get("/v1/models", Some(&admin_key)).await.unwrap().status(), 200, "admin implies query");

    assert!(store.keys.revoke_key(&query_rec.id).await.unwrap());
    assert!(!store.keys.revoke_key(&query_rec.id).await.unwrap(), "already revoked");
    let r = get("/v1/models", Some(&query_key)).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("revoked"));
}

#[tokio::test]
async fn bad_key_requests_are_refused_with_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_embedded(tmp.path()).await.unwrap();
    let e = keel::auth::create_key(&store, "acme", &["query,root".into()]).await.unwrap_err();
    assert!(e.to_string().contains("unknown scope `root`"));
    let e = keel::auth::create_key(&store, "bad tenant!", &[]).await.unwrap_err();
    assert!(e.to_string().contains("tenant"));
    let (rec, _) = keel::auth::create_key(&store, "acme", &[]).await.unwrap();
    assert_eq!(rec.scopes, vec!["query"], "default scope");
}
