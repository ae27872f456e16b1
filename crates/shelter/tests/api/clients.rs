//! The OAuth client registry: `/oauth/clients` for superusers and `shelter clients` on the
//! command line. A secret is shown once and stored only as its SHA-256.

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait as _, Statement};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use shelter_test_support::{Backend, TestDatabase};

use crate::cli::shelter;
use crate::helpers::{TestApp, body, fields, problem};

async fn create(app: &TestApp, token: &str, settings: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/oauth/clients"))
        .bearer_auth(token)
        .json(settings)
        .send()
        .await
        .expect("POST /oauth/clients")
}

/// What the database holds for `client_id`: every column, as text.
async fn stored_row(app: &TestApp, client_id: &str) -> String {
    let db = sea_orm::Database::connect(&app.database_url)
        .await
        .expect("connect");
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => {
            "SELECT secret_hash, redirect_uris, name FROM oauth_clients WHERE client_id = $1"
        }
        _ => "SELECT secret_hash, redirect_uris, name FROM oauth_clients WHERE client_id = ?",
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [client_id.into()],
        ))
        .await
        .expect("query")
        .expect("a row");
    let text = |i: usize| row.try_get_by_index::<Option<String>>(i).expect("column");
    format!("{:?}|{:?}|{:?}", text(0), text(1), text(2))
}

#[expect(
    clippy::too_many_lines,
    reason = "one client's life, read top to bottom"
)]
async fn superusers_register_read_change_rotate_and_delete_clients(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let created = create(
        &app,
        &admin,
        &json!({"name": "Grafana", "redirect_uris": ["https://grafana.example.com/login/generic_oauth"]}),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["cache-control"], "no-store");
    let client = body(created).await;
    let id = client["client_id"].as_str().expect("client_id").to_owned();
    let secret = client["client_secret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    assert_eq!(id.len(), 22, "128 random bits: {client}");
    assert_eq!(secret.len(), 43, "256 random bits: {client}");
    assert_eq!(client["type"], "confidential");
    assert_eq!(
        client["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        client["scopes"],
        json!(["openid", "profile", "email", "offline_access"])
    );
    assert_eq!(
        (
            &client["trusted"],
            &client["require_pkce"],
            &client["introspection"]
        ),
        (&json!(false), &json!(false), &json!(false))
    );

    // Stored as its SHA-256, never in clear.
    let row = stored_row(&app, &id).await;
    let hash = format!("{:x}", Sha256::digest(secret.as_bytes()));
    assert!(row.contains(&hash) && !row.contains(&secret), "{row}");

    let listed = body(app.get_as("/oauth/clients", &admin).await).await;
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["client_id"], id.as_str());
    assert!(
        items[0].get("client_secret").is_none(),
        "no secret: {listed}"
    );
    let read = body(app.get_as(&format!("/oauth/clients/{id}"), &admin).await).await;
    assert_eq!(read["name"], "Grafana");
    assert!(read.get("client_secret").is_none(), "no secret: {read}");

    let uris = json!(["https://grafana.example.com/a", "http://127.0.0.1:3000/b"]);
    let changed = app
        .patch_as(
            &format!("/oauth/clients/{id}"),
            &admin,
            &json!({"redirect_uris": uris, "trusted": true}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let changed = body(changed).await;
    assert_eq!(changed["redirect_uris"], uris);
    assert_eq!(
        (&changed["trusted"], &changed["name"]),
        (&json!(true), &json!("Grafana"))
    );

    let rotated = app
        .client
        .post(app.url(&format!("/oauth/clients/{id}/secret")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("rotate");
    assert_eq!(rotated.status(), StatusCode::OK);
    let new_secret = body(rotated).await["client_secret"]
        .as_str()
        .expect("a new secret")
        .to_owned();
    assert_ne!(new_secret, secret);
    let row = stored_row(&app, &id).await;
    assert!(
        row.contains(&format!("{:x}", Sha256::digest(new_secret.as_bytes()))),
        "the new secret replaces the old: {row}"
    );

    let events = body(
        app.get_as("/audit-events?type=oauth_client_created", &admin)
            .await,
    )
    .await;
    assert_eq!(
        events["items"][0]["details"]["client_id"],
        id.as_str(),
        "{events}"
    );
    for kind in ["oauth_client_updated", "oauth_client_secret_rotated"] {
        let events = body(
            app.get_as(&format!("/audit-events?type={kind}"), &admin)
                .await,
        )
        .await;
        assert_eq!(
            events["items"].as_array().map(Vec::len),
            Some(1),
            "{kind}: {events}"
        );
    }

    let deleted = app.delete_as(&format!("/oauth/clients/{id}"), &admin).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    for gone in [
        app.get_as(&format!("/oauth/clients/{id}"), &admin).await,
        app.delete_as(&format!("/oauth/clients/{id}"), &admin).await,
        app.get_as("/oauth/clients/not%20an%20id", &admin).await,
    ] {
        problem(gone, StatusCode::NOT_FOUND).await;
    }
}

async fn only_superusers_manage_clients(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, _, token) = app.user_with_token().await;
    let settings = json!({"name": "App", "redirect_uris": ["https://app.example.com/cb"]});
    problem(create(&app, &token, &settings).await, StatusCode::FORBIDDEN).await;
    problem(
        app.get_as("/oauth/clients", &token).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let anonymous = app
        .post("/oauth/clients")
        .json(&settings)
        .send()
        .await
        .expect("request");
    problem(anonymous, StatusCode::UNAUTHORIZED).await;
    let admin = app.admin_token().await;
    let listed = body(app.get_as("/oauth/clients", &admin).await).await;
    assert_eq!(listed["items"], json!([]), "nothing was created");
}

async fn client_settings_are_refused_field_by_field(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let every_bad_field = create(
        &app,
        &admin,
        &json!({
            "redirect_uris": ["http://app.example.com/cb", "https://app.example.com/cb#top"],
            "type": "weird",
            "grant_types": ["implicit"],
            "scopes": ["admin"],
            "backchannel_logout_uri": "ftp://app.example.com/logout",
        }),
    )
    .await;
    let refused = problem(every_bad_field, StatusCode::UNPROCESSABLE_ENTITY).await;
    let mut named = fields(&refused);
    named.sort();
    assert_eq!(
        named,
        [
            "backchannel_logout_uri",
            "grant_types[0]",
            "name",
            "redirect_uris[0]",
            "redirect_uris[1]",
            "scopes[0]",
            "type"
        ],
        "{refused}"
    );
    for (settings, field) in [
        (json!({"name": "No URIs"}), "redirect_uris"),
        (
            json!({"name": "Public machine", "type": "public", "grant_types": ["client_credentials"]}),
            "grant_types",
        ),
        (
            json!({"name": "Too many", "redirect_uris": vec!["https://a.example.com/cb"; 21]}),
            "redirect_uris",
        ),
    ] {
        let refused = problem(
            create(&app, &admin, &settings).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(fields(&refused), [field], "{settings}: {refused}");
    }
    // A machine client needs no redirect URI; a public one gets no secret and has none to rotate.
    let machine = create(
        &app,
        &admin,
        &json!({"name": "Cron", "grant_types": ["client_credentials"]}),
    )
    .await;
    assert_eq!(machine.status(), StatusCode::CREATED);
    assert!(body(machine).await["client_secret"].is_string());
    let public = create(
        &app,
        &admin,
        &json!({"name": "SPA", "type": "public", "redirect_uris": ["http://localhost:5173/cb"]}),
    )
    .await;
    assert_eq!(public.status(), StatusCode::CREATED);
    let public = body(public).await;
    assert!(public.get("client_secret").is_none(), "{public}");
    let id = public["client_id"].as_str().expect("id");
    let rotate = app
        .client
        .post(app.url(&format!("/oauth/clients/{id}/secret")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("rotate");
    let refused = problem(rotate, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&refused), ["type"]);
    let renamed = app
        .patch_as(
            &format!("/oauth/clients/{id}"),
            &admin,
            &json!({"type": "confidential"}),
        )
        .await;
    problem(renamed, StatusCode::UNPROCESSABLE_ENTITY).await;
}

/// The first client of a deployment, from the command line.
async fn the_command_line_registers_shows_rotates_and_removes_clients(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let run = |args: &[&str]| {
        let output = shelter(&database.url)
            .args(args)
            .output()
            .expect("run shelter");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let line = |out: &str, key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .map_or_else(
                || panic!("no {key} in {out}"),
                |v| v.split(' ').next().unwrap_or_default().to_owned(),
            )
    };
    let (code, out, err) = run(&[
        "clients",
        "add",
        "--name",
        "Grafana",
        "--redirect-uri",
        "https://grafana.example.com/login/generic_oauth",
        "--scope",
        "openid",
        "--scope",
        "email",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let id = line(&out, "client_id");
    let secret = line(&out, "client_secret");
    assert_eq!((id.len(), secret.len()), (22, 43), "{out}");
    assert_eq!(line(&out, "scopes"), "openid", "{out}");
    assert!(out.contains("scopes: openid email"), "{out}");

    let (code, out, _) = run(&["clients", "list"]);
    assert_eq!(code, Some(0));
    assert!(out.contains(&id) && out.contains("Grafana"), "{out}");
    let (code, out, _) = run(&["clients", "show", &id]);
    assert_eq!(code, Some(0));
    assert!(
        !out.contains(&secret) && !out.contains("client_secret"),
        "{out}"
    );
    let (code, out, _) = run(&["clients", "rotate-secret", &id]);
    assert_eq!(code, Some(0));
    assert_ne!(line(&out, "client_secret"), secret);

    let (code, _, err) = run(&[
        "clients",
        "add",
        "--name",
        "Bad",
        "--redirect-uri",
        "http://example.com/cb",
    ]);
    assert_eq!(code, Some(2), "clap refuses an insecure URI: {err}");
    assert!(err.contains("https"), "{err}");

    let (code, _, _) = run(&["clients", "remove", &id]);
    assert_eq!(code, Some(0));
    let (code, _, err) = run(&["clients", "show", &id]);
    assert_eq!(code, Some(1), "gone: {err}");
    assert!(err.contains("not found"), "{err}");
}

shelter_test_support::on_both_backends!(
    superusers_register_read_change_rotate_and_delete_clients,
    only_superusers_manage_clients,
    client_settings_are_refused_field_by_field,
    the_command_line_registers_shows_rotates_and_removes_clients,
);
