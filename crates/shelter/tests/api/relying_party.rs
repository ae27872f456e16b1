//! An independent relying party drives the provider: panva's `openid-client` (Node, OpenID
//! certified), run from `.ci/oidc/rp.mjs` against the real binary's HTTP, on both databases.
//! Discovery, code + PKCE with the ID token checked by the library (signature from the JWKS,
//! `nonce`, `iss`, `aud`), userinfo, introspection, refresh, revocation, client credentials
//! and RP-initiated logout.
//!
//! `.ci/run` installs the library (`npm ci --prefix .ci/oidc`). Without Node or the library
//! the test skips with a reason, unless `CI=true`, where it fails.

use std::net::TcpListener;
use std::path::PathBuf;

use serde_json::{Value, json};
use shelter_test_support::Backend;

use crate::helpers::{TestApp, TestUser, body};

fn relying_party() -> Option<PathBuf> {
    crate::helpers::node_peers("openid-client")
}

async fn register(app: &TestApp, admin: &str, settings: &Value) -> (String, String) {
    let response = app
        .client
        .post(app.url("/oauth/clients"))
        .bearer_auth(admin)
        .json(settings)
        .send()
        .await
        .expect("register a client");
    let created = body(response).await;
    (
        created["client_id"].as_str().expect("client_id").to_owned(),
        created["client_secret"]
            .as_str()
            .expect("client_secret")
            .to_owned(),
    )
}

async fn openid_client_drives_every_flow(backend: Backend) {
    let Some(folder) = relying_party() else {
        return;
    };
    // The issuer must be the address the library discovers it at, port included.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let issuer = format!("http://127.0.0.1:{port}");
    let Some(app) = TestApp::spawn_with(backend, |settings| {
        settings.port = port;
        settings.jwt.issuer = Some(issuer.clone());
    })
    .await
    else {
        return;
    };
    let admin = app.admin_token().await;
    let redirect = "http://127.0.0.1:9/callback";
    let bye = "http://127.0.0.1:9/signed-out";
    let (client_id, client_secret) = register(
        &app,
        &admin,
        &json!({"name": "openid-client", "redirect_uris": [redirect],
                "post_logout_redirect_uris": [bye]}),
    )
    .await;
    let (machine_id, machine_secret) = register(
        &app,
        &admin,
        &json!({"name": "machine", "grant_types": ["client_credentials"]}),
    )
    .await;
    let user = TestUser::generate();
    app.create(&user).await;
    let output = tokio::process::Command::new("node")
        .arg("rp.mjs")
        .current_dir(folder)
        .env("ISSUER", &issuer)
        .env("CLIENT_ID", client_id)
        .env("CLIENT_SECRET", client_secret)
        .env("MACHINE_ID", machine_id)
        .env("MACHINE_SECRET", machine_secret)
        .env("USERNAME", &user.email)
        .env("PASSWORD", &user.password)
        .env("REDIRECT_URI", redirect)
        .env("POST_LOGOUT_URI", bye)
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "openid-client failed:\n{stdout}\n{stderr}"
    );
    let flows: Vec<String> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["ok"] == true)
        .filter_map(|line| line["flow"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        flows,
        [
            "discovery",
            "authorization_code+pkce",
            "userinfo",
            "introspection",
            "refresh_token",
            "revocation",
            "client_credentials",
            "rp_initiated_logout",
        ],
        "{stdout}"
    );
}

shelter_test_support::on_both_backends!(openid_client_drives_every_flow);
