//! Passkeys with a software authenticator (`webauthn-authenticator-rs`'s `SoftPasskey`, the
//! one Kanidm's tests use): registration, usernameless sign-in, the second step of a TOTP
//! user, and what must fail: a wrong origin, no user verification, a replayed flow token,
//! an unknown credential, a counter that goes backwards.
//!
//! The soft authenticator keeps no discoverable credentials, so this client plays the part
//! a platform authenticator plays for them: it asks it for a non-resident key, and when
//! signing in names the credential it holds and returns the user handle it was created
//! with (the handle is outside the signed data, so the server's checks are the same).

use reqwest::StatusCode;
use serde_json::{Value, json};
use shelter::config::Settings;
use shelter_crypto::code_at;
use shelter_test_support::Backend;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::helpers::{TestApp, body, problem};
use crate::pages::PageClient;

pub const ORIGIN: &str = "http://localhost:8080";

pub fn with_passkeys(settings: &mut Settings) {
    settings.webauthn.rp_id = Some("localhost".to_owned());
    settings.webauthn.origins = vec![ORIGIN.to_owned()];
}

/// A user's device: the soft authenticator and what it keeps beside its key.
pub struct Device {
    authenticator: SoftPasskey,
    credential_id: Option<String>,
    user_handle: Option<String>,
}

impl Device {
    pub fn new() -> Self {
        Self {
            // `true`: it sets the user-verified flag (a platform authenticator's unlock).
            authenticator: SoftPasskey::new(true),
            credential_id: None,
            user_handle: None,
        }
    }

    /// The registration response to creation options.
    pub fn register(&mut self, options: &Value, origin: &str) -> Value {
        let mut options = options.clone();
        assert_eq!(
            options["authenticatorSelection"]["residentKey"], "required",
            "{options}"
        );
        assert_eq!(
            options["authenticatorSelection"]["userVerification"], "required",
            "{options}"
        );
        options["authenticatorSelection"]["requireResidentKey"] = json!(false);
        options["authenticatorSelection"]["residentKey"] = json!("discouraged");
        self.user_handle = options["user"]["id"].as_str().map(str::to_owned);
        let options = serde_json::from_value(json!({"publicKey": options})).expect("options");
        let response = self
            .authenticator
            .do_registration(Url::parse(origin).expect("origin"), options)
            .expect("registration");
        let response = serde_json::to_value(response).expect("json");
        self.credential_id = response["id"].as_str().map(str::to_owned);
        response
    }

    /// The authentication response to request options, from `origin`.
    pub fn sign(&mut self, options: &Value, origin: &str) -> Value {
        let mut options = options.clone();
        let id = self.credential_id.clone().expect("a registered credential");
        if options["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty)
        {
            options["allowCredentials"] = json!([{"type": "public-key", "id": id}]);
        }
        self.sign_as_given(&options, origin)
    }

    fn sign_as_given(&mut self, options: &Value, origin: &str) -> Value {
        let options = serde_json::from_value(json!({"publicKey": options})).expect("options");
        let response = self
            .authenticator
            .do_authentication(Url::parse(origin).expect("origin"), options)
            .expect("authentication");
        let mut response = serde_json::to_value(response).expect("json");
        response["response"]["userHandle"] = json!(self.user_handle);
        response
    }
}

async fn post(app: &TestApp, path: &str, token: Option<&str>, json: &Value) -> reqwest::Response {
    let request = app.post(path).json(json);
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    request.send().await.expect("request")
}

/// Adds a passkey named `name` to the user of `token`; its id.
pub async fn add_passkey(app: &TestApp, token: &str, device: &mut Device, name: &str) -> String {
    let options =
        body(post(app, "/users/me/passkeys/options", Some(token), &json!({})).await).await;
    let credential = device.register(&options["publicKey"], ORIGIN);
    let response = post(
        app,
        "/users/me/passkeys",
        Some(token),
        &json!({"flow_token": options["flow_token"], "name": name, "credential": credential}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let added = body(response).await;
    assert_eq!(
        location,
        format!("/users/me/passkeys/{}", added["id"].as_str().expect("id"))
    );
    assert_eq!(added["name"], name);
    assert!(added["last_used_at"].is_null(), "{added}");
    added["id"].as_str().expect("id").to_owned()
}

/// Starts a passkey sign-in: the flow token and the request options.
async fn sign_in_options(app: &TestApp) -> (Value, Value) {
    let response = post(app, "/auth/passkey/options", None, &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let options = body(response).await;
    let public_key = options["publicKey"].clone();
    assert!(
        public_key.get("allowCredentials").is_none(),
        "usernameless: no allow list, {public_key}"
    );
    assert_eq!(public_key["userVerification"], "required");
    (options["flow_token"].clone(), public_key)
}

async fn sign_in(app: &TestApp, flow_token: &Value, credential: &Value) -> reqwest::Response {
    post(
        app,
        "/auth/passkey",
        None,
        &json!({"flow_token": flow_token, "credential": credential}),
    )
    .await
}

async fn a_passkey_is_added_named_and_signs_in_without_a_username(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, with_passkeys).await else {
        return;
    };
    let (user, id, token) = app.user_with_token().await;
    let mut device = Device::new();
    let passkey = add_passkey(&app, &token, &mut device, "Laptop").await;

    // The creation options of a second passkey exclude the first.
    let options =
        body(post(&app, "/users/me/passkeys/options", Some(&token), &json!({})).await).await;
    let excluded = options["publicKey"]["excludeCredentials"]
        .as_array()
        .expect("list")
        .len();
    assert_eq!(excluded, 1);

    let (flow_token, options) = sign_in_options(&app).await;
    let credential = device.sign(&options, ORIGIN);
    let response = sign_in(&app, &flow_token, &credential).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens = body(response).await;
    let access = tokens["access_token"].as_str().expect("access token");
    let me = body(app.get_as("/users/me", access).await).await;
    assert_eq!(me["id"], id);
    assert_eq!(me["username"], user.username);

    // The same flow token never works twice, even with a fresh signature.
    let again = device.sign(&options, ORIGIN);
    problem(
        sign_in(&app, &flow_token, &again).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let listed = body(app.get_as("/users/me/passkeys", &token).await).await;
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert!(items[0]["last_used_at"].is_string(), "{listed}");

    let renamed = app
        .patch_as(
            &format!("/users/me/passkeys/{passkey}"),
            &token,
            &json!({"name": "Work laptop"}),
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::OK);
    assert_eq!(body(renamed).await["name"], "Work laptop");
    let empty = app
        .patch_as(
            &format!("/users/me/passkeys/{passkey}"),
            &token,
            &json!({"name": ""}),
        )
        .await;
    problem(empty, StatusCode::UNPROCESSABLE_ENTITY).await;

    // The audit log has the passkey and the method of the sign-in.
    let events = body(app.get_as("/users/me/audit-events", &token).await).await;
    let text = events.to_string();
    assert!(text.contains("passkey_added"), "{text}");
    assert!(text.contains("\"method\":\"passkey\""), "{text}");

    // Removed, it signs nobody in.
    let removed = app
        .delete_as(&format!("/users/me/passkeys/{passkey}"), &token)
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let (flow_token, options) = sign_in_options(&app).await;
    let credential = device.sign(&options, ORIGIN);
    problem(
        sign_in(&app, &flow_token, &credential).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let gone = app
        .delete_as(&format!("/users/me/passkeys/{passkey}"), &token)
        .await;
    problem(gone, StatusCode::NOT_FOUND).await;
}

async fn a_ceremony_that_is_not_right_is_401(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, with_passkeys).await else {
        return;
    };
    let (_, _, token) = app.user_with_token().await;
    let mut device = Device::new();
    add_passkey(&app, &token, &mut device, "Phone").await;

    // Another site's origin in the client data.
    let (flow_token, options) = sign_in_options(&app).await;
    let credential = device.sign(&options, "http://localhost:9999");
    let refused = problem(
        sign_in(&app, &flow_token, &credential).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // No user verification: the authenticator was asked for none and set no flag.
    let (flow_token, mut options) = sign_in_options(&app).await;
    options["userVerification"] = json!("discouraged");
    let mut unverified = Device {
        authenticator: SoftPasskey::new(false),
        credential_id: None,
        user_handle: None,
    };
    let registration =
        body(post(&app, "/users/me/passkeys/options", Some(&token), &json!({})).await).await;
    let mut creation = registration["publicKey"].clone();
    creation["authenticatorSelection"]["userVerification"] = json!("discouraged");
    unverified.user_handle = creation["user"]["id"].as_str().map(str::to_owned);
    creation["authenticatorSelection"]["requireResidentKey"] = json!(false);
    creation["authenticatorSelection"]["residentKey"] = json!("discouraged");
    let creation = serde_json::from_value(json!({"publicKey": creation})).expect("options");
    let answer = unverified
        .authenticator
        .do_registration(Url::parse(ORIGIN).expect("origin"), creation)
        .expect("registration");
    let answer = serde_json::to_value(answer).expect("json");
    let not_added = post(
        &app,
        "/users/me/passkeys",
        Some(&token),
        &json!({"flow_token": registration["flow_token"], "name": "Key", "credential": answer}),
    )
    .await;
    problem(not_added, StatusCode::UNAUTHORIZED).await;
    options["allowCredentials"] = json!([{"type": "public-key", "id": device.credential_id}]);
    let credential = device.sign_as_given(&options, ORIGIN);
    // `device` sets the flag anyway; strip it from the authenticator data to be sure.
    let credential = without_user_verification(credential);
    let no_uv = problem(
        sign_in(&app, &flow_token, &credential).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // A credential this server never registered.
    let mut stranger = Device::new();
    let other = TestApp::spawn_with(backend, with_passkeys)
        .await
        .expect("a second app");
    let (_, _, other_token) = other.user_with_token().await;
    add_passkey(&other, &other_token, &mut stranger, "Elsewhere").await;
    let (flow_token, options) = sign_in_options(&app).await;
    let credential = stranger.sign(&options, ORIGIN);
    let unknown = problem(
        sign_in(&app, &flow_token, &credential).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // One message for every reason.
    assert_eq!(refused["detail"], no_uv["detail"]);
    assert_eq!(refused["detail"], unknown["detail"]);

    // A flow token that was never issued, and a credential that is not an object.
    let (_, options) = sign_in_options(&app).await;
    let credential = device.sign(&options, ORIGIN);
    problem(
        sign_in(&app, &json!("made-up"), &credential).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let (flow_token, _) = sign_in_options(&app).await;
    problem(
        sign_in(&app, &flow_token, &json!("text")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

/// Clears the UV bit (0x04) of the flags byte after the 32-byte RP id hash; the signature
/// then no longer matches either, which is one more reason to refuse.
fn without_user_verification(mut credential: Value) -> Value {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let data = credential["response"]["authenticatorData"]
        .as_str()
        .expect("data");
    let mut bytes = URL_SAFE_NO_PAD.decode(data).expect("base64url");
    bytes[32] &= !0x04;
    credential["response"]["authenticatorData"] = json!(URL_SAFE_NO_PAD.encode(bytes));
    credential
}

async fn a_counter_that_goes_backwards_is_refused_and_audited(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, with_passkeys).await else {
        return;
    };
    let (_, _, token) = app.user_with_token().await;
    let mut device = Device::new();
    add_passkey(&app, &token, &mut device, "Cloned").await;
    // Two ceremonies signed in order (counters n and n+1), presented in reverse: the
    // second looks like a copy of the authenticator that fell behind.
    let (first_token, first_options) = sign_in_options(&app).await;
    let (second_token, second_options) = sign_in_options(&app).await;
    let first = device.sign(&first_options, ORIGIN);
    let second = device.sign(&second_options, ORIGIN);
    let response = sign_in(&app, &second_token, &second).await;
    assert_eq!(response.status(), StatusCode::OK);
    problem(
        sign_in(&app, &first_token, &first).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let admin = app.admin_token().await;
    let events = body(
        app.get_as("/audit-events?type=passkey_counter_regressed", &admin)
            .await,
    )
    .await;
    let items = events["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{events}");
}

#[expect(
    clippy::too_many_lines,
    reason = "one user's second steps, read top to bottom"
)]
async fn a_totp_user_may_take_the_second_step_with_a_passkey(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, with_passkeys).await else {
        return;
    };
    let (user, _, token) = app.user_with_token().await;
    let secret = crate::mfa::turn_on(&app, &user, &token).await.0;

    // Before any passkey the second step offers codes only.
    let first = problem(
        app.login(&user.username, &user.password).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(first["methods"], json!(["totp", "recovery_code"]));
    let options = post(
        &app,
        "/auth/mfa/options",
        None,
        &json!({"mfa_token": first["mfa_token"]}),
    )
    .await;
    problem(options, StatusCode::UNAUTHORIZED).await;

    let mut device = Device::new();
    add_passkey(&app, &token, &mut device, "Key").await;
    let step = problem(
        app.login(&user.username, &user.password).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(step["code"], "mfa_required");
    assert_eq!(step["methods"], json!(["totp", "recovery_code", "passkey"]));
    let options = body(
        post(
            &app,
            "/auth/mfa/options",
            None,
            &json!({"mfa_token": step["mfa_token"]}),
        )
        .await,
    )
    .await;
    let allowed = options["publicKey"]["allowCredentials"]
        .as_array()
        .expect("list");
    assert_eq!(allowed.len(), 1, "the user's passkeys: {options}");
    let credential = device.sign(&options["publicKey"], ORIGIN);
    let done = post(
        &app,
        "/auth/mfa",
        None,
        &json!({"mfa_token": step["mfa_token"], "credential": credential}),
    )
    .await;
    assert_eq!(done.status(), StatusCode::OK);
    assert!(body(done).await["access_token"].is_string());

    // A code and a credential at once is a 422; a wrong origin counts as a failure.
    let step = problem(
        app.login(&user.username, &user.password).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let both = post(
        &app,
        "/auth/mfa",
        None,
        &json!({"mfa_token": step["mfa_token"], "code": "123456", "credential": {}}),
    )
    .await;
    problem(both, StatusCode::UNPROCESSABLE_ENTITY).await;
    let options = body(
        post(
            &app,
            "/auth/mfa/options",
            None,
            &json!({"mfa_token": step["mfa_token"]}),
        )
        .await,
    )
    .await;
    let wrong = device.sign(&options["publicKey"], "http://localhost:9999");
    let refused = post(
        &app,
        "/auth/mfa",
        None,
        &json!({"mfa_token": step["mfa_token"], "credential": wrong}),
    )
    .await;
    problem(refused, StatusCode::UNAUTHORIZED).await;
    // The same token still takes a right TOTP code (the next step's: confirming spent this one).
    let code = code_at(&secret, chrono::Utc::now() + chrono::Duration::seconds(30)).expect("code");
    let done = post(
        &app,
        "/auth/mfa",
        None,
        &json!({"mfa_token": step["mfa_token"], "code": code}),
    )
    .await;
    assert_eq!(done.status(), StatusCode::OK);

    // A passkey alone stands alone: no second step.
    let (flow_token, options) = sign_in_options(&app).await;
    let credential = device.sign(&options, ORIGIN);
    assert_eq!(
        sign_in(&app, &flow_token, &credential).await.status(),
        StatusCode::OK
    );
}

async fn a_superuser_sees_and_removes_a_users_passkeys(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, with_passkeys).await else {
        return;
    };
    let (_, id, token) = app.user_with_token().await;
    let mut device = Device::new();
    let passkey = add_passkey(&app, &token, &mut device, "Lost phone").await;
    let (_, other, other_token) = app.user_with_token().await;
    let forbidden = app
        .get_as(&format!("/users/{id}/passkeys"), &other_token)
        .await;
    problem(forbidden, StatusCode::FORBIDDEN).await;
    let not_theirs = app
        .delete_as(
            &format!("/users/{other}/passkeys/{passkey}"),
            &app.admin_token().await,
        )
        .await;
    problem(not_theirs, StatusCode::NOT_FOUND).await;

    let admin = app.admin_token().await;
    let listed = body(app.get_as(&format!("/users/{id}/passkeys"), &admin).await).await;
    assert_eq!(listed["items"][0]["name"], "Lost phone");
    let removed = app
        .delete_as(&format!("/users/{id}/passkeys/{passkey}"), &admin)
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let listed = body(app.get_as("/users/me/passkeys", &token).await).await;
    assert_eq!(listed["items"], json!([]));
    let events = body(
        app.get_as(
            &format!("/audit-events?type=passkey_removed&user_id={id}"),
            &admin,
        )
        .await,
    )
    .await;
    assert_eq!(
        events["items"].as_array().map(Vec::len),
        Some(1),
        "{events}"
    );
    let missing = app.get_as("/users/999999/passkeys", &admin).await;
    problem(missing, StatusCode::NOT_FOUND).await;
}

async fn without_a_relying_party_passkeys_are_404(backend: Backend) {
    // The test server's public URL is an IP address, which is never an RP id.
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, _, token) = app.user_with_token().await;
    problem(
        post(&app, "/auth/passkey/options", None, &json!({})).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        post(&app, "/users/me/passkeys/options", Some(&token), &json!({})).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let listed = body(app.get_as("/users/me/passkeys", &token).await).await;
    assert_eq!(listed["items"], json!([]));
}

/// The `Content-Security-Policy` of the page at `path`.
async fn policy_of(browser: &mut PageClient, path: &str) -> (String, String) {
    let (status, headers, html) = browser.get(path).await;
    assert_eq!(status, StatusCode::OK, "{path}");
    let policy = headers["content-security-policy"]
        .to_str()
        .expect("policy")
        .to_owned();
    (policy, html)
}

async fn the_script_is_allowed_only_beside_passkey_buttons_hidden_without_it(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, with_passkeys).await else {
        return;
    };
    let mut browser = PageClient::new(&app);
    let (policy, login) = policy_of(&mut browser, "/login").await;
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let form = login
        .split("<form")
        .find(|form| form.contains("data-passkey=\"get\""))
        .expect("a passkey form");
    assert!(
        form.split('>')
            .next()
            .is_some_and(|tag| tag.contains(" hidden")),
        "hidden until the script shows it: {form}"
    );
    let script = login
        .split('"')
        .find(|part| {
            part.strip_prefix("/assets/passkey-")
                .is_some_and(|name| name.split_once('.').is_some_and(|(_, ext)| ext == "js"))
        })
        .expect("the script's hashed name")
        .to_owned();
    assert!(!login.contains("<script>"), "no inline script");
    let (status, headers, source) = browser.get(&script).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["cache-control"]
            .to_str()
            .is_ok_and(|v| v.contains("immutable"))
    );
    assert!(
        source.contains("navigator.credentials"),
        "the ceremony script"
    );
    let (policy, _) = policy_of(&mut browser, "/signup").await;
    assert!(
        !policy.contains("script-src"),
        "no script elsewhere: {policy}"
    );

    // Without a relying party the login page has no button and no script.
    let Some(off) = TestApp::spawn(backend).await else {
        return;
    };
    let (policy, login) = policy_of(&mut PageClient::new(&off), "/login").await;
    assert!(!policy.contains("script-src"), "{policy}");
    assert!(!login.contains("data-passkey"), "{login}");
    let user = crate::helpers::TestUser::generate();
    off.create(&user).await;
    let mut signed_in = PageClient::new(&off);
    signed_in.sign_in(&user.username, &user.password).await;
    let (policy, account) = policy_of(&mut signed_in, "/account").await;
    assert!(!policy.contains("script-src"), "{policy}");
    assert!(!account.contains("/assets/passkey-"), "no script to load");
}

async fn the_second_step_page_takes_a_passkey(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, with_passkeys).await else {
        return;
    };
    let (user, _, token) = app.user_with_token().await;
    crate::mfa::turn_on(&app, &user, &token).await;
    let mut device = Device::new();
    add_passkey(&app, &token, &mut device, "Key").await;
    let mut browser = PageClient::new(&app);
    let (status, _, step) = browser
        .submit(
            "/login",
            "/login",
            &[("username", &user.username), ("password", &user.password)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{step}");
    assert!(
        step.contains("data-options=\"/auth/mfa/options\""),
        "{step}"
    );
    let marker = "name=\"mfa_token\" value=\"";
    let mfa_token = step[step.find(marker).expect("mfa_token") + marker.len()..]
        .split('"')
        .next()
        .expect("value")
        .to_owned();
    let options = body(
        post(
            &app,
            "/auth/mfa/options",
            None,
            &json!({"mfa_token": mfa_token}),
        )
        .await,
    )
    .await;
    let credential = device.sign(&options["publicKey"], ORIGIN).to_string();
    let csrf = crate::pages::csrf_of(&step);
    let (status, headers, html) = browser
        .post(
            "/login/code",
            &[
                ("csrf", csrf.as_str()),
                ("mfa_token", &mfa_token),
                ("passkey", "true"),
                ("credential", &credential),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(headers["location"], "/account");
}

async fn a_superuser_removes_a_passkey_on_the_admin_pages(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, with_passkeys).await else {
        return;
    };
    let (user, id, token) = app.user_with_token().await;
    let mut device = Device::new();
    let passkey = add_passkey(&app, &token, &mut device, "Old phone").await;
    let mut admin = PageClient::new(&app);
    admin
        .sign_in(&app.admin.username, &app.admin.password)
        .await;
    let page = format!("/admin/users/{id}");
    let (status, _, html) = admin.get(&page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Old phone"), "{html}");
    let (status, _, html) = admin
        .submit(
            &page,
            &format!("/admin/users/{id}/passkeys/{passkey}/remove"),
            &[],
        )
        .await;
    assert!(
        status.is_success() || status.is_redirection(),
        "{status}: {html}"
    );
    let (_, _, html) = admin.get(&page).await;
    assert!(!html.contains("Old phone"), "removed: {html}");
    let listed = body(app.get_as("/users/me/passkeys", &token).await).await;
    assert_eq!(listed["items"], json!([]), "{}", user.username);
    // The lost passkey no longer signs in.
    let (flow_token, options) = sign_in_options(&app).await;
    let credential = device.sign(&options, ORIGIN);
    let refused = sign_in(&app, &flow_token, &credential).await;
    problem(refused, StatusCode::UNAUTHORIZED).await;
}

shelter_test_support::on_both_backends!(
    a_superuser_removes_a_passkey_on_the_admin_pages,
    the_second_step_page_takes_a_passkey,
    the_script_is_allowed_only_beside_passkey_buttons_hidden_without_it,
    a_passkey_is_added_named_and_signs_in_without_a_username,
    a_ceremony_that_is_not_right_is_401,
    a_counter_that_goes_backwards_is_refused_and_audited,
    a_totp_user_may_take_the_second_step_with_a_passkey,
    a_superuser_sees_and_removes_a_users_passkeys,
    without_a_relying_party_passkeys_are_404,
);
