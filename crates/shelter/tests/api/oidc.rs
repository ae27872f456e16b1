//! The OpenID Connect provider over HTTP, as a relying party and a browser use it:
//! discovery, authorize with PKCE and consent, the token endpoint's three grants, ID
//! tokens checked against the JWKS, userinfo, revocation, introspection, logout, and the
//! refusals the contract names. `openid-client` (Node) drives the same flows in CI
//! (`.ci/oidc`), as a library nobody here wrote.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::header::{self, HeaderMap};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use shelter_test_support::Backend;

use crate::helpers::{TestApp, TestUser, body};
use crate::pages::{PageClient, csrf_of};

const CALLBACK: &str = "http://127.0.0.1:9/callback";

/// A registered client: its id, and its secret when it is confidential.
struct Rp {
    id: String,
    secret: Option<String>,
}

async fn register(app: &TestApp, settings: &Value) -> Rp {
    let admin = app.admin_token().await;
    let response = app
        .client
        .post(app.url("/oauth/clients"))
        .bearer_auth(admin)
        .json(settings)
        .send()
        .await
        .expect("POST /oauth/clients");
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = body(response).await;
    Rp {
        id: created["client_id"].as_str().expect("client_id").to_owned(),
        secret: created["client_secret"].as_str().map(str::to_owned),
    }
}

fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_path(client: &str, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.extend_pairs([
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile email offline_access"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]);
    query.extend_pairs(extra.iter().copied());
    format!("/oauth/authorize?{}", query.finish())
}

/// The query of a redirect to the client, as pairs.
fn callback_query(headers: &HeaderMap) -> Vec<(String, String)> {
    let location = headers[header::LOCATION].to_str().expect("location");
    assert!(location.starts_with(CALLBACK), "{location}");
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

async fn token(app: &TestApp, rp: &Rp, form: &[(&str, &str)]) -> Response {
    let mut request = app.client.post(app.url("/oauth/token")).form(form);
    if let Some(secret) = &rp.secret {
        request = request.basic_auth(&rp.id, Some(secret));
    }
    request.send().await.expect("POST /oauth/token")
}

async fn oauth_error(response: Response, status: StatusCode, error: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .is_ok_and(|kind| kind.starts_with("application/json")),
        "RFC 6749 JSON, not problem+json"
    );
    let answer = body(response).await;
    assert_eq!(answer["error"], error, "{answer}");
    answer
}

/// Signs `user` in in a page client, then walks authorize → consent (if asked) → the
/// redirect back, returning the code.
async fn code_for(browser: &mut PageClient, client: &str, challenge: &str) -> String {
    let (status, headers, html) = browser.get(&authorize_path(client, challenge, &[])).await;
    let headers = if status == StatusCode::OK {
        assert!(html.contains("name=\"decision\" value=\"allow\""), "{html}");
        let csrf = csrf_of(&html);
        let mut form: Vec<(String, String)> = hidden_fields(&html);
        form.push(("csrf".into(), csrf));
        form.push(("decision".into(), "allow".into()));
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (status, headers, html) = browser.post("/oauth/consent", &form).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
        headers
    } else {
        assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
        headers
    };
    let query = callback_query(&headers);
    assert_eq!(param(&query, "state"), Some("st-123"));
    param(&query, "code").expect("a code").to_owned()
}

/// The hidden fields of the consent form, CSRF aside.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .filter_map(|input| {
            let name = input.split("name=\"").nth(1)?.split('"').next()?;
            let value = input.split("value=\"").nth(1)?.split('"').next()?;
            (name != "csrf").then(|| {
                (
                    name.to_owned(),
                    value.replace("&amp;", "&").replace("&quot;", "\""),
                )
            })
        })
        .collect()
}

/// Verifies an ID token with the JWKS, as a relying party does.
async fn verified_id_token(app: &TestApp, id_token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(id_token).expect("a JWT header");
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.expect("kid");
    let jwks = body(
        app.get("/.well-known/jwks.json")
            .send()
            .await
            .expect("jwks"),
    )
    .await;
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|key| key["kid"] == kid.as_str())
        .expect("the token's key in the JWKS")
        .clone();
    assert_eq!(jwk["kty"], "RSA");
    let key = DecodingKey::from_rsa_components(
        jwk["n"].as_str().expect("n"),
        jwk["e"].as_str().expect("e"),
    )
    .expect("an RSA key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&["http://127.0.0.1:8000"]);
    jsonwebtoken::decode::<Value>(id_token, &key, &validation)
        .expect("a valid ID token")
        .claims
}

fn at_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(access_token.as_bytes())[..16])
}

async fn userinfo(app: &TestApp, access_token: &str) -> Response {
    app.get("/oauth/userinfo")
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo")
}

#[expect(
    clippy::too_many_lines,
    reason = "one relying party's whole life, read top to bottom"
)]
async fn a_relying_party_signs_a_user_in_with_pkce_and_gets_verified_tokens(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let discovery = body(
        app.get("/.well-known/openid-configuration")
            .send()
            .await
            .expect("discovery"),
    )
    .await;
    assert_eq!(discovery["issuer"], "http://127.0.0.1:8000");
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        json!(["S256"])
    );
    let rp = register(
        &app,
        &json!({"name": "Grafana", "redirect_uris": [CALLBACK],
                "post_logout_redirect_uris": ["http://127.0.0.1:9/bye"]}),
    )
    .await;
    let user = TestUser::generate();
    let user_id = app.create(&user).await;
    let mut browser = PageClient::new(&app);

    // Not signed in: off to the login page, and back to this very request.
    let (verifier, challenge) = pkce();
    let (status, headers, _) = browser.get(&authorize_path(&rp.id, &challenge, &[])).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let login = headers[header::LOCATION].to_str().expect("location");
    assert!(
        login.starts_with("/login?next=%2Foauth%2Fauthorize"),
        "{login}"
    );

    browser.sign_in(&user.email, &user.password).await;
    let code = code_for(&mut browser, &rp.id, &challenge).await;
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier.as_str()),
    ];
    let response = token(&app, &rp, &exchange).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let tokens = body(response).await;
    assert_eq!(tokens["token_type"], "Bearer");
    let access = tokens["access_token"].as_str().expect("access_token");
    let refresh = tokens["refresh_token"].as_str().expect("refresh_token");
    let claims =
        verified_id_token(&app, tokens["id_token"].as_str().expect("id_token"), &rp.id).await;
    assert_eq!(claims["sub"], user_id.to_string());
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(claims["azp"], rp.id.as_str());
    assert_eq!(claims["at_hash"], at_hash(access));
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["email"], user.email.as_str());
    assert!(claims["auth_time"].as_i64().is_some() && claims["sid"].is_string());

    // The access token: at+jwt for this client, which Shelter's own API refuses.
    let header = jsonwebtoken::decode_header(access).expect("header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let own_api = app.get_as("/users/me", access).await;
    assert_eq!(own_api.status(), StatusCode::UNAUTHORIZED);

    // Userinfo three ways, each with the ID token's subject.
    let info = body(userinfo(&app, access).await).await;
    assert_eq!(info["sub"], user_id.to_string());
    assert_eq!(info["preferred_username"], user.username.as_str());
    let posted = app
        .post("/oauth/userinfo")
        .bearer_auth(access)
        .send()
        .await
        .expect("POST userinfo");
    assert_eq!(body(posted).await["sub"], user_id.to_string());
    let in_form = app
        .post("/oauth/userinfo")
        .form(&[("access_token", access)])
        .send()
        .await
        .expect("POST userinfo with a form");
    assert_eq!(body(in_form).await["email"], user.email.as_str());

    // Introspection by the client itself.
    let introspected = app
        .client
        .post(app.url("/oauth/introspect"))
        .basic_auth(&rp.id, rp.secret.as_ref())
        .form(&[("token", access)])
        .send()
        .await
        .expect("introspect");
    let introspected = body(introspected).await;
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["username"], user.username.as_str());
    assert_eq!(introspected["client_id"], rp.id.as_str());

    // Refresh: a new pair; the old token then is spent.
    let response = token(
        &app,
        &rp,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let renewed = body(response).await;
    let new_access = renewed["access_token"].as_str().expect("access").to_owned();
    assert_ne!(renewed["refresh_token"], tokens["refresh_token"]);

    // The code a second time: refused, and the tokens issued from it revoked.
    let again = token(&app, &rp, &exchange).await;
    oauth_error(again, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(
        userinfo(&app, &new_access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let refused = token(
        &app,
        &rp,
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                renewed["refresh_token"].as_str().expect("rt"),
            ),
        ],
    )
    .await;
    oauth_error(refused, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // Consent is remembered: the next request comes straight back with a code.
    let (verifier, challenge) = pkce();
    let (status, headers, _) = browser.get(&authorize_path(&rp.id, &challenge, &[])).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "no consent page the second time"
    );
    let query = callback_query(&headers);
    assert_eq!(param(&query, "iss"), Some("http://127.0.0.1:8000"));
    let code = param(&query, "code").expect("code").to_owned();
    let grants = app
        .get_as("/users/me/grants", &app.token_for(&user).await)
        .await;
    let grants = body(grants).await;
    assert_eq!(grants["items"][0]["client_id"], rp.id.as_str(), "{grants}");

    // A wrong verifier is refused; the right one still works (the code was not spent).
    let (wrong, _) = pkce();
    let response = token(
        &app,
        &rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", wrong.as_str()),
        ],
    )
    .await;
    oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let response = token(
        &app,
        &rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier.as_str()),
        ],
    )
    .await;
    let tokens = body(response).await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let id_token = tokens["id_token"].as_str().expect("id_token").to_owned();

    // RP-initiated logout with the ID token: the sign-in ends, its tokens with it, and the
    // browser goes to the registered URI with its state.
    let logout = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("id_token_hint", id_token.as_str()),
            ("post_logout_redirect_uri", "http://127.0.0.1:9/bye"),
            ("state", "bye-1"),
        ])
        .finish();
    let (status, headers, _) = browser.get(&format!("/oauth/logout?{logout}")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers[header::LOCATION],
        "http://127.0.0.1:9/bye?state=bye-1"
    );
    assert_eq!(
        userinfo(&app, &access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let response = token(
        &app,
        &rp,
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                tokens["refresh_token"].as_str().expect("rt"),
            ),
        ],
    )
    .await;
    oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[expect(clippy::too_many_lines, reason = "the contract's list, in its order")]
async fn the_refusals_the_contract_names(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let rp = register(&app, &json!({"name": "App", "redirect_uris": [CALLBACK]})).await;
    let other = register(&app, &json!({"name": "Other", "redirect_uris": [CALLBACK]})).await;
    let public = register(
        &app,
        &json!({"name": "SPA", "type": "public", "redirect_uris": [CALLBACK]}),
    )
    .await;
    let (_, challenge) = pkce();
    let mut browser = PageClient::new(&app);

    // An unregistered redirect URI or an unknown client: a page, never a redirect.
    let path = authorize_path(&rp.id, &challenge, &[])
        .replace("127.0.0.1%3A9%2Fcallback", "127.0.0.1%3A9%2Fevil");
    let (status, headers, html) = browser.get(&path).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(!headers.contains_key(header::LOCATION));
    let (status, _, _) = browser
        .get(&authorize_path("nobody", &challenge, &[]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // prompt=none without a session, and plain PKCE: errors sent back to the client.
    let (status, headers, _) = browser
        .get(&authorize_path(&rp.id, &challenge, &[("prompt", "none")]))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let query = callback_query(&headers);
    assert_eq!(param(&query, "error"), Some("login_required"));
    assert_eq!(param(&query, "state"), Some("st-123"));
    assert_eq!(param(&query, "iss"), Some("http://127.0.0.1:8000"));
    let plain = authorize_path(&rp.id, &challenge, &[]).replace("method=S256", "method=plain");
    let (_, headers, _) = browser.get(&plain).await;
    assert_eq!(
        param(&callback_query(&headers), "error"),
        Some("invalid_request")
    );
    // A public client without PKCE.
    let (_, headers, _) = browser
        .get(&format!(
            "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid",
            public.id,
            form_urlencoded::byte_serialize(CALLBACK.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(
        param(&callback_query(&headers), "error"),
        Some("invalid_request")
    );

    // A wrong secret, by Basic: 401 with the challenge.
    let wrong = Rp {
        id: rp.id.clone(),
        secret: Some("not-the-secret".into()),
    };
    let response = token(&app, &wrong, &[("grant_type", "client_credentials")]).await;
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        "Basic realm=\"shelter\""
    );
    oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;

    // A refresh token of another client.
    let user = TestUser::generate();
    app.create(&user).await;
    browser.sign_in(&user.email, &user.password).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&mut browser, &rp.id, &challenge).await;
    let tokens = body(
        token(
            &app,
            &rp,
            &[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", CALLBACK),
                ("code_verifier", verifier.as_str()),
            ],
        )
        .await,
    )
    .await;
    let refresh = tokens["refresh_token"].as_str().expect("refresh_token");
    let stolen = token(
        &app,
        &other,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    oauth_error(stolen, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // Another client's code.
    let (verifier, challenge) = pkce();
    let code = code_for(&mut browser, &rp.id, &challenge).await;
    let response = token(
        &app,
        &other,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier.as_str()),
        ],
    )
    .await;
    oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // The user takes the consent back: the refresh token stops working.
    let forgotten = app
        .delete_as(
            &format!("/users/me/grants/{}", rp.id),
            &app.token_for(&user).await,
        )
        .await;
    assert_eq!(forgotten.status(), StatusCode::NO_CONTENT);
    let response = token(
        &app,
        &rp,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

async fn a_machine_client_gets_its_own_token_and_revokes_it(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let machine = register(
        &app,
        &json!({"name": "Cron", "grant_types": ["client_credentials"]}),
    )
    .await;
    let secret = machine.secret.clone().expect("a secret");
    // client_secret_post this time.
    let response = app
        .post("/oauth/token")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", machine.id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), StatusCode::OK);
    let tokens = body(response).await;
    assert!(tokens.get("refresh_token").is_none() && tokens.get("id_token").is_none());
    let access = tokens["access_token"].as_str().expect("access_token");
    let introspect = || async {
        body(
            app.client
                .post(app.url("/oauth/introspect"))
                .basic_auth(&machine.id, Some(&secret))
                .form(&[("token", access)])
                .send()
                .await
                .expect("introspect"),
        )
        .await
    };
    let active = introspect().await;
    assert_eq!(active["active"], true);
    assert_eq!(active["sub"], machine.id.as_str());
    // Userinfo is for users' tokens.
    assert_eq!(
        userinfo(&app, access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let revoked = app
        .client
        .post(app.url("/oauth/revoke"))
        .basic_auth(&machine.id, Some(&secret))
        .form(&[("token", access)])
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(introspect().await, json!({"active": false}));
    // An unknown token is revoked just as well.
    let unknown = app
        .client
        .post(app.url("/oauth/revoke"))
        .basic_auth(&machine.id, Some(&secret))
        .form(&[("token", "whatever")])
        .send()
        .await
        .expect("revoke");
    assert_eq!(unknown.status(), StatusCode::OK);
}

#[expect(
    clippy::too_many_lines,
    reason = "a registered client's life, read top to bottom"
)]
async fn dynamic_registration_makes_public_pkce_clients_only_when_on(backend: Backend) {
    let Some(off) = TestApp::spawn(backend).await else {
        return;
    };
    let request = json!({"client_name": "An agent", "redirect_uris": [CALLBACK]});
    let refused = off.post_json("/oauth/register", &request).await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND, "off by default");
    let discovery = body(
        off.get("/.well-known/openid-configuration")
            .send()
            .await
            .expect("discovery"),
    )
    .await;
    assert!(discovery.get("registration_endpoint").is_none());

    let Some(app) = TestApp::spawn_with(backend, |settings| {
        settings.oauth_dynamic_registration = true;
    })
    .await
    else {
        return;
    };
    let discovery = body(
        app.get("/.well-known/openid-configuration")
            .send()
            .await
            .expect("discovery"),
    )
    .await;
    assert_eq!(
        discovery["registration_endpoint"],
        "http://127.0.0.1:8000/oauth/register"
    );
    let response = app.post_json("/oauth/register", &request).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = body(response).await;
    assert_eq!(created["token_endpoint_auth_method"], "none");
    assert!(created.get("client_secret").is_none());
    let client = created["client_id"].as_str().expect("client_id").to_owned();

    // It must use PKCE: without a challenge, the error goes back to it.
    let mut browser = PageClient::new(&app);
    let (_, headers, _) = browser
        .get(&format!(
            "/oauth/authorize?response_type=code&client_id={client}&redirect_uri={}&scope=openid",
            form_urlencoded::byte_serialize(CALLBACK.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(
        param(&callback_query(&headers), "error"),
        Some("invalid_request")
    );
    // And with one, a user signs in to it like to any client, with no secret at the end.
    let user = TestUser::generate();
    app.create(&user).await;
    browser.sign_in(&user.email, &user.password).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&mut browser, &client, &challenge).await;
    let public = Rp {
        id: client.clone(),
        secret: None,
    };
    let response = token(
        &app,
        &public,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier.as_str()),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);

    // What it may not ask for.
    for (bad, error) in [
        (
            json!({"redirect_uris": ["http://example.com/cb"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "client_secret_basic"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [CALLBACK], "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ] {
        let response = app.post_json("/oauth/register", &bad).await;
        oauth_error(response, StatusCode::BAD_REQUEST, error).await;
    }

    // The account page lists the application, and removing it there forgets the consent.
    let (_, _, html) = browser.get("/account").await;
    assert!(html.contains("An agent"), "{html}");
    let (status, _, _) = browser
        .submit("/account", &format!("/account/apps/{client}/revoke"), &[])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let grants = body(
        app.get_as("/users/me/grants", &app.token_for(&user).await)
            .await,
    )
    .await;
    assert_eq!(grants["items"], json!([]));
}

/// A relying party's back-channel logout endpoint: answers 200 to every POST and hands
/// over the `logout_token`s it receives.
async fn logout_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::AsyncWriteExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let uri = format!(
        "http://{}/backchannel",
        listener.local_addr().expect("addr")
    );
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let sender = sender.clone();
            tokio::spawn(async move {
                let Some((_, body)) = crate::helpers::read_request(&mut socket).await else {
                    return;
                };
                for (name, value) in form_urlencoded::parse(body.as_bytes()) {
                    if name == "logout_token" {
                        let _ = sender.send(value.into_owned());
                    }
                }
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (uri, receiver)
}

async fn ending_a_sign_in_sends_a_back_channel_logout_token(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (uri, mut received) = logout_receiver().await;
    let rp = register(
        &app,
        &json!({"name": "Listener", "redirect_uris": [CALLBACK], "backchannel_logout_uri": uri}),
    )
    .await;
    let quiet = register(&app, &json!({"name": "Quiet", "redirect_uris": [CALLBACK]})).await;
    let user = TestUser::generate();
    let user_id = app.create(&user).await;
    let mut browser = PageClient::new(&app);
    browser.sign_in(&user.email, &user.password).await;
    let mut sid = String::new();
    for client in [&rp, &quiet] {
        let (verifier, challenge) = pkce();
        let code = code_for(&mut browser, &client.id, &challenge).await;
        let tokens = body(
            token(
                &app,
                client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", CALLBACK),
                    ("code_verifier", verifier.as_str()),
                ],
            )
            .await,
        )
        .await;
        let claims =
            verified_id_token(&app, tokens["id_token"].as_str().expect("id"), &client.id).await;
        claims["sid"].as_str().expect("sid").clone_into(&mut sid);
    }
    // Signing out of Shelter's pages ends the sign-in.
    let (status, _, _) = browser.submit("/logout", "/logout", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let logout_token = tokio::time::timeout(std::time::Duration::from_secs(15), received.recv())
        .await
        .expect("a logout token within 15 s")
        .expect("a logout token");
    let header = jsonwebtoken::decode_header(&logout_token).expect("a JWT");
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let claims = verified_id_token(&app, &logout_token, &rp.id).await;
    assert_eq!(claims["sub"], user_id.to_string());
    assert_eq!(claims["sid"], sid.as_str());
    assert!(claims.get("nonce").is_none());
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims["jti"].is_string());
    // One client listened, so one token came.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(
        received.try_recv().is_err(),
        "only the listening client is told"
    );
}

shelter_test_support::on_both_backends!(
    ending_a_sign_in_sends_a_back_channel_logout_token,
    dynamic_registration_makes_public_pkce_clients_only_when_on,
    a_relying_party_signs_a_user_in_with_pkce_and_gets_verified_tokens,
    the_refusals_the_contract_names,
    a_machine_client_gets_its_own_token_and_revokes_it,
);
