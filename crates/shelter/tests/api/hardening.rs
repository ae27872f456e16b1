//! What an operator and a hostile client found: writes that race, refresh tokens spent
//! twice, control characters, bodies that are not one JSON object, unreadable
//! preconditions, and a database or hasher that stops answering. Each test fails if the
//! fault it names comes back.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sea_orm::ConnectionTrait as _;
use serde_json::{Value, json};
use shelter_test_support::proxy::{Mode, TcpProxy};
use shelter_test_support::{Backend, TestDatabase};

use crate::helpers::{TestApp, TestUser, body, fields, invalid_fields, problem};

async fn parallel_patches_without_if_match_all_succeed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (user, _, token) = app.user_with_token().await;
    let names: Vec<String> = (0..20).map(|i| format!("{}_{i}", user.username)).collect();
    let app = &app;
    let answers = futures::future::join_all(names.iter().map(|name| {
        let token = token.clone();
        async move {
            let response = app
                .patch_as("/users/me", &token, &json!({"username": name}))
                .await;
            (response.status(), body(response).await)
        }
    }))
    .await;
    for (name, (status, answer)) in names.iter().zip(&answers) {
        assert_eq!(*status, StatusCode::OK, "PATCH to {name}: {answer}");
        assert_eq!(
            answer["username"],
            name.as_str(),
            "the answer shows this write"
        );
    }
    let me = body(app.get_as("/users/me", &token).await).await;
    let last = me["username"].as_str().expect("username");
    assert!(names.iter().any(|name| name == last), "final {last}");
    // Every write counted: the revision rose once per PATCH.
    let etag = app
        .get_as("/users/me", &token)
        .await
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("etag");
    assert!(etag.ends_with("-21\""), "{etag}");
}

async fn superusers_demoting_each_other_at_once_never_get_412(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let supers: Vec<(i64, String)> = four_superusers(&app)
        .await
        .into_iter()
        .map(|(_, id, token)| (id, token))
        .collect();
    let (app, supers) = (&app, &supers);
    let answers = futures::future::join_all((0..supers.len()).map(|i| {
        let (_, token) = &supers[i];
        let (victim, _) = supers[(i + 1) % supers.len()];
        async move {
            app.patch_as(
                &format!("/users/{victim}"),
                token,
                &json!({"is_superuser": false}),
            )
            .await
            .status()
        }
    }))
    .await;
    for status in &answers {
        assert!(
            [StatusCode::OK, StatusCode::FORBIDDEN, StatusCode::CONFLICT].contains(status),
            "{answers:?}"
        );
    }
    let mut remaining = 0;
    for (id, token) in supers {
        let user = body(app.get_as(&format!("/users/{id}"), token).await).await;
        if user["is_superuser"] == true {
            remaining += 1;
        }
    }
    assert!(remaining >= 1, "no superuser left after {answers:?}");
}

/// Four superusers, each demoting or deactivating the three others: twelve writes that
/// each lock every active superuser. On PostgreSQL they deadlocked into 500s in about one
/// round of four, so the test plays four rounds.
async fn four_superusers_demoting_and_deactivating_each_other_never_get_500(backend: Backend) {
    for _ in 0..4 {
        let Some(app) = TestApp::spawn(backend).await else {
            return;
        };
        superusers_remove_each_other(&app).await;
    }
}

/// The first superuser and three users promoted by it: each with its id and a token.
async fn four_superusers(app: &TestApp) -> Vec<(TestUser, i64, String)> {
    let admin = app.admin_token().await;
    let me = body(app.get_as("/users/me", &admin).await).await;
    let mut supers = vec![(
        app.admin.clone(),
        me["id"].as_i64().expect("id"),
        admin.clone(),
    )];
    for _ in 0..3 {
        let (user, id, token) = app.user_with_token().await;
        let promoted = app
            .patch_as(
                &format!("/users/{id}"),
                &admin,
                &json!({"is_superuser": true}),
            )
            .await;
        assert_eq!(promoted.status(), StatusCode::OK);
        supers.push((user, id, token));
    }
    supers
}

async fn superusers_remove_each_other(app: &TestApp) {
    let supers = four_superusers(app).await;
    let mut writes = Vec::new();
    for (i, (_, _, token)) in supers.iter().enumerate() {
        for (j, (_, victim, _)) in supers.iter().enumerate() {
            if i != j {
                let change = if (i + j) % 2 == 0 {
                    json!({"is_superuser": false})
                } else {
                    json!({"is_active": false})
                };
                writes.push((token.as_str(), *victim, change));
            }
        }
    }
    let answers =
        futures::future::join_all(writes.iter().map(|(token, victim, change)| async move {
            let response = app
                .patch_as(&format!("/users/{victim}"), token, change)
                .await;
            (response.status(), body(response).await)
        }))
        .await;
    for (status, answer) in &answers {
        assert!(
            [
                StatusCode::OK,
                StatusCode::UNAUTHORIZED,
                StatusCode::FORBIDDEN,
                StatusCode::CONFLICT
            ]
            .contains(status),
            "{status}: {answer}"
        );
    }
    let mut remaining = Vec::new();
    for (user, _, _) in &supers {
        let login = app.login(&user.username, &user.password).await;
        if login.status() == StatusCode::OK {
            let token = body(login).await["access_token"]
                .as_str()
                .map(str::to_owned);
            let me = body(app.get_as("/users/me", &token.expect("a token")).await).await;
            if me["is_superuser"] == true {
                remaining.push(user.username.clone());
            }
        }
    }
    assert_eq!(
        remaining.len(),
        1,
        "one active superuser remains: {remaining:?} after {answers:?}"
    );
}

async fn with_no_grace_a_refresh_token_is_exchanged_exactly_once(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| s.refresh_reuse_grace = Duration::ZERO).await
    else {
        return;
    };
    let (user, _, _) = app.user_with_token().await;
    let refresh = app.tokens(&user).await["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let statuses =
        futures::future::join_all((0..10).map(|_| async { app.refresh(&refresh).await.status() }))
            .await;
    let exchanged = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(exchanged, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| [StatusCode::OK, StatusCode::UNAUTHORIZED].contains(s)),
        "{statuses:?}"
    );
}

async fn control_characters_are_refused_in_every_text_field(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let signup = app
        .post_json(
            "/users",
            &json!({"email": "nul\u{0}@example.com", "username": "ann\u{7f}", "password": "pass\nword1"}),
        )
        .await;
    let (named, answer) = invalid_fields(signup).await;
    assert_eq!(named, ["email", "password", "username"], "{answer}");

    // A login with such a name is refused as input, never a 500, as form and as JSON.
    let form = app.login("root\u{0}", "password1").await;
    let json = app
        .post_json(
            "/auth/token",
            &json!({"username": "root\u{0}", "password": "password1"}),
        )
        .await;
    for response in [form, json] {
        let status = response.status();
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::UNAUTHORIZED,
            "{status}"
        );
        problem(response, status).await;
    }

    let (_, _, token) = app.user_with_token().await;
    for (path, field) in [
        ("/auth/refresh", "refresh_token"),
        ("/auth/logout", "refresh_token"),
        ("/auth/verify-email", "token"),
        ("/auth/password-recovery", "email"),
    ] {
        let response = app
            .post_json(path, &json!({ field: "x\u{1f}y@example.com" }))
            .await;
        let answer = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(fields(&answer), [field], "{path}: {answer}");
    }
    let patch = app
        .patch_as("/users/me", &token, &json!({"username": "tab\there"}))
        .await;
    problem(patch, StatusCode::UNPROCESSABLE_ENTITY).await;
}

async fn bodies_must_be_one_json_object(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let raw = |path: &'static str, body: &'static str| {
        app.post(path)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (path, text, status) in [
        ("/users", r#"{"a":1} trailing"#, StatusCode::BAD_REQUEST),
        (
            "/users",
            r#"{"email": "a@x.com"} {}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "/users",
            r#"["a@x.com","user","password1"]"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/auth/refresh",
            r#"["token"]"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/auth/password-recovery",
            r#"["a@example.com"]"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let response = raw(path, text).await.expect("request");
        let answer = problem(response, status).await;
        // Said in the client's words, not in Rust's (`expected struct SignupRequest`).
        let said = format!("{} {}", answer["detail"], answer["errors"]);
        assert!(
            !said.contains("struct") && !said.contains("Request"),
            "{path} {text}: {said}"
        );
    }
    // Nothing was created from the array.
    let login = app.login("user", "password1").await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
}

async fn an_unreadable_if_match_is_412_not_ignored(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let (_, id, token) = app.user_with_token().await;
    let unreadable = reqwest::header::HeaderValue::from_bytes(b"\"\xff\"").expect("bytes");
    let patch = app
        .patch(&format!("/users/{id}"))
        .bearer_auth(&token)
        .header("if-match", unreadable.clone())
        .json(&json!({"username": "changed_name"}))
        .send()
        .await
        .expect("request");
    problem(patch, StatusCode::PRECONDITION_FAILED).await;
    let delete = app
        .delete(&format!("/users/{id}"))
        .bearer_auth(&admin)
        .header("if-match", unreadable)
        .send()
        .await
        .expect("request");
    problem(delete, StatusCode::PRECONDITION_FAILED).await;
    let user = body(app.get_as(&format!("/users/{id}"), &admin).await).await;
    assert_ne!(user["username"], "changed_name", "the write was applied");
}

async fn skip_beyond_int64_is_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    for skip in ["9223372036854775808", "18446744073709551615"] {
        let response = app.get_as(&format!("/users?skip={skip}"), &admin).await;
        let answer = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(fields(&answer), ["skip"], "{answer}");
    }
    let largest = app.get_as("/users?skip=9223372036854775807", &admin).await;
    assert_eq!(largest.status(), StatusCode::OK);
    assert_eq!(body(largest).await["items"], json!([]));
}

async fn a_422_names_every_bad_field_at_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // What a newcomer sent: one unknown field, and so a missing one.
    let reset = app
        .post_json(
            "/auth/reset-password",
            &json!({"token": "t", "password": "new password"}),
        )
        .await;
    let (named, answer) = invalid_fields(reset).await;
    assert_eq!(named, ["new_password", "password"], "{answer}");
    let signup = app
        .post_json(
            "/users",
            &json!({"email": "not an email", "username": "x", "nickname": "y"}),
        )
        .await;
    let (named, answer) = invalid_fields(signup).await;
    assert_eq!(
        named,
        ["email", "nickname", "password", "username"],
        "{answer}"
    );
}

shelter_test_support::on_both_backends!(
    a_422_names_every_bad_field_at_once,
    parallel_patches_without_if_match_all_succeed,
    superusers_demoting_each_other_at_once_never_get_412,
    four_superusers_demoting_and_deactivating_each_other_never_get_500,
    with_no_grace_a_refresh_token_is_exchanged_exactly_once,
    control_characters_are_refused_in_every_text_field,
    bodies_must_be_one_json_object,
    an_unreadable_if_match_is_412_not_ignored,
    skip_beyond_int64_is_refused,
);

/// A Shelter on a fresh PostgreSQL database reached through a proxy the test controls.
async fn behind_a_proxy(
    configure: impl FnOnce(&mut shelter::config::Settings),
) -> Option<(TestApp, TcpProxy)> {
    let database = TestDatabase::create(Backend::Postgres).await?;
    let mut url = url::Url::parse(&database.url).expect("database url");
    let target = url
        .socket_addrs(|| Some(5432))
        .expect("address")
        .into_iter()
        .next()
        .expect("an address");
    let proxy = TcpProxy::start(target).await;
    url.set_port(Some(proxy.address().port())).expect("port");
    let proxied = url.to_string();
    let app = TestApp::spawn_on(database, |s| {
        s.database.url = proxied.parse().expect("a database URL");
        configure(s);
    })
    .await;
    Some((app, proxy))
}

/// Asserts a 503 problem with `Retry-After`, answered within `limit`.
async fn unavailable_within(request: reqwest::RequestBuilder, limit: Duration, what: &str) {
    let started = Instant::now();
    let response = request.send().await.expect("request");
    let took = started.elapsed();
    assert!(
        response.headers().contains_key("retry-after"),
        "{what}: no Retry-After"
    );
    assert!(
        response.headers().contains_key("x-request-id"),
        "{what}: no X-Request-Id"
    );
    problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(took <= limit, "{what} took {took:?}");
}

/// Waits until `path` answers `status` again, for at most 20 s.
async fn recovers(app: &TestApp, path: &str, token: &str, status: StatusCode) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let current = app.get_as(path, token).await.status();
        if current == status {
            return;
        }
        assert!(Instant::now() < deadline, "{path} still answers {current}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn a_lost_database_is_503_in_bounded_time_and_heals(mode: Mode) {
    let Some((app, proxy)) = behind_a_proxy(|s| s.database.timeout = Duration::from_secs(1)).await
    else {
        return;
    };
    let (user, _, token) = app.user_with_token().await;
    proxy.set(mode);
    // SHELTER_DATABASE_TIMEOUT_SECONDS + 1 s, and a little for a loaded test machine.
    let limit = Duration::from_millis(2_500);
    for round in 0..3 {
        unavailable_within(
            app.get("/users/me").bearer_auth(&token),
            limit,
            &format!("{mode:?} /users/me #{round}"),
        )
        .await;
    }
    unavailable_within(
        app.post("/auth/token")
            .form(&[("username", &user.email), ("password", &user.password)]),
        limit,
        &format!("{mode:?} login"),
    )
    .await;
    unavailable_within(
        app.post("/users")
            .json(&crate::helpers::TestUser::generate().signup_body()),
        limit,
        &format!("{mode:?} signup"),
    )
    .await;
    unavailable_within(app.get("/health/ready"), limit, "readiness").await;
    let live = app.get("/health/live").send().await.expect("liveness");
    assert_eq!(
        live.status(),
        StatusCode::OK,
        "liveness does not need the database"
    );

    proxy.set(Mode::Forward);
    recovers(&app, "/users/me", &token, StatusCode::OK).await;
    recovers(&app, "/health/ready", &token, StatusCode::OK).await;
    let login = app.login(&user.email, &user.password).await;
    assert_eq!(login.status(), StatusCode::OK, "logins work again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_cut_off_is_503_in_bounded_time_and_heals() {
    a_lost_database_is_503_in_bounded_time_and_heals(Mode::Cut).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_black_holed_database_is_503_in_bounded_time_and_heals() {
    a_lost_database_is_503_in_bounded_time_and_heals(Mode::Blackhole).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_past_its_deadline_is_503() {
    let Some((app, proxy)) = behind_a_proxy(|s| {
        s.database.timeout = Duration::from_secs(30);
        s.request_timeout = Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    let (_, _, token) = app.user_with_token().await;
    proxy.set(Mode::Blackhole);
    unavailable_within(
        app.get("/users/me").bearer_auth(&token),
        Duration::from_secs(2),
        "past the deadline",
    )
    .await;
    proxy.set(Mode::Forward);
    recovers(&app, "/users/me", &token, StatusCode::OK).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_locked_sqlite_database_is_503_not_500() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.database.timeout = Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    let (_, _, token) = app.user_with_token().await;
    // Another process holding the write lock, as a backup tool or a stuck writer would.
    let mut options = sea_orm::ConnectOptions::new(app.database_url.clone());
    options.max_connections(1).min_connections(1);
    let holder = sea_orm::Database::connect(options)
        .await
        .expect("second connection");
    holder
        .execute_unprepared("PRAGMA busy_timeout = 0; BEGIN EXCLUSIVE")
        .await
        .expect("take the write lock");
    unavailable_within(
        app.patch("/users/me")
            .bearer_auth(&token)
            .json(&json!({"username": "locked_out"})),
        Duration::from_secs(3),
        "write while locked",
    )
    .await;
    holder
        .execute_unprepared("ROLLBACK")
        .await
        .expect("release");
    let patched = app
        .patch_as("/users/me", &token, &json!({"username": "unlocked"}))
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_saturated_hasher_answers_503_instead_of_queueing_without_bound() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.hashing.threads = NonZeroUsize::new(1);
        s.hashing.queue = NonZeroUsize::new(1);
    })
    .await
    else {
        return;
    };
    let admin = app.admin.clone();
    let answers: Vec<(StatusCode, bool)> = futures::future::join_all((0..16).map(|_| async {
        let response = app.login(&admin.email, &admin.password).await;
        (
            response.status(),
            response.headers().contains_key("retry-after"),
        )
    }))
    .await;
    let busy = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!(busy >= 1, "nothing was refused: {answers:?}");
    for (status, retry_after) in &answers {
        match *status {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => assert!(retry_after, "{answers:?}"),
            other => panic!("unexpected {other}: {answers:?}"),
        }
    }
    let _: Value = app.tokens(&admin).await;
}

/// On PostgreSQL an authenticated request's read goes over a connection that the requests
/// in flight on its worker thread share (tokio-postgres pipelines them), not over a pooled
/// connection each: fifty at once are served by at most one such connection a core, seen
/// by their name.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signed_in_reads_on_postgres_share_a_connection_a_thread() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, |s| s.user_cache = Duration::ZERO).await
    else {
        return;
    };
    let (_, _, token) = app.user_with_token().await;
    let answers =
        futures::future::join_all((0..50).map(|_| app.get("/users/me").bearer_auth(&token).send()))
            .await;
    for answer in answers {
        assert_eq!(answer.expect("an answer").status(), StatusCode::OK);
    }
    let database = sea_orm::Database::connect(&app.database_url)
        .await
        .expect("connect");
    let shared: i64 = database
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND application_name = '{}'",
                shelter_persistence::SHARED_READ_NAME
            ),
        ))
        .await
        .expect("pg_stat_activity")
        .expect("a row")
        .try_get_by_index(0)
        .expect("a count");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(
        (1..=i64::try_from(cores).expect("a count")).contains(&shared),
        "{shared} shared connections for {cores} cores"
    );
}
