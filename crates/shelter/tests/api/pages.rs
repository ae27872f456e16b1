//! The hosted pages over HTTP: CSRF, the GET that must not spend a token, cookie flags,
//! the security headers, and errors as pages. The browser tests (`browser.rs`) drive the
//! same pages through Chromium.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{self, HeaderMap};
use reqwest::{Client, Response, StatusCode, redirect};
use serde_json::json;
use shelter_test_support::Backend;

use crate::helpers::{TestApp, TestUser, body};

const WAIT: Duration = Duration::from_secs(20);

/// A browser without a browser: keeps the cookies it is given, follows no redirect.
pub struct PageClient {
    base: String,
    client: Client,
    cookies: BTreeMap<String, String>,
    /// The `Set-Cookie` lines of the last answer.
    pub last_set_cookies: Vec<String>,
}

impl PageClient {
    pub fn new(app: &TestApp) -> Self {
        Self {
            base: app.url(""),
            client: Client::builder()
                .redirect(redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
            last_set_cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, headers: &HeaderMap) {
        self.last_set_cookies = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        for line in &self.last_set_cookies {
            let pair = line.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> (StatusCode, HeaderMap, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header(header::COOKIE, self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.read(response).await
    }

    pub async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header(header::COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("POST");
        self.read(response).await
    }

    async fn read(&mut self, response: Response) -> (StatusCode, HeaderMap, String) {
        let status = response.status();
        let headers = response.headers().clone();
        self.keep(&headers);
        (status, headers, response.text().await.expect("body"))
    }

    /// Opens `page` and posts its form back with `fields` and the page's CSRF token.
    pub async fn submit(
        &mut self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let (_, _, html) = self.get(page).await;
        let csrf = csrf_of(&html);
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post(action, &form).await
    }

    pub async fn sign_in(&mut self, login: &str, password: &str) {
        let (status, headers, html) = self
            .submit(
                "/login",
                "/login",
                &[("username", login), ("password", password)],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
        assert_eq!(headers[header::LOCATION], "/account");
    }

    pub fn has_cookie(&self, name: &str) -> bool {
        self.cookies.contains_key(name)
    }

    /// The same client at another server (its own cookies start empty).
    pub fn rebase(&mut self, base: &str) {
        base.clone_into(&mut self.base);
        self.cookies.clear();
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }
}

/// The CSRF token of the first form of a page.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a form with a CSRF token") + marker.len();
    html[start..].split('"').next().expect("token").to_owned()
}

fn is_page(headers: &HeaderMap) -> bool {
    headers[header::CONTENT_TYPE]
        .to_str()
        .is_ok_and(|v| v.starts_with("text/html"))
}

async fn pages_carry_the_security_headers_and_cookie_flags(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut browser = PageClient::new(&app);
    let (status, headers, html) = browser.get("/login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(is_page(&headers));
    let policy = headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("csp");
    assert!(
        policy.contains("default-src 'none'") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert!(
        html.starts_with("<!DOCTYPE html><html lang=\"en\">"),
        "{html}"
    );
    let csrf_cookie = browser.last_set_cookies.join("\n");
    for flag in ["shelter_csrf=", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(csrf_cookie.contains(flag), "{flag} in {csrf_cookie}");
    }
    assert!(!csrf_cookie.contains("Secure"), "plain http: {csrf_cookie}");

    browser
        .sign_in(&app.admin.username, &app.admin.password)
        .await;
    let session_cookies = browser.last_set_cookies.clone();
    assert_eq!(session_cookies.len(), 2, "{session_cookies:?}");
    for cookie in &session_cookies {
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Lax")
                && !cookie.contains("Secure"),
            "{cookie}"
        );
    }
    let (status, _, html) = browser.get("/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&app.admin.email),
        "the account page shows the email"
    );

    // The stylesheet: named by its content, kept for a year.
    let start = html.find("/assets/shelter-").expect("stylesheet link");
    let href = html[start..].split('"').next().expect("href").to_owned();
    let (status, headers, css) = browser.get(&href).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(css.contains(":root"), "{css}");

    // Behind https the cookies are Secure.
    let Some(https) = TestApp::spawn_with(backend, |settings| {
        settings.public_url = "https://auth.example.com".parse().expect("url");
    })
    .await
    else {
        return;
    };
    let mut browser = PageClient::new(&https);
    browser
        .sign_in(&https.admin.username, &https.admin.password)
        .await;
    for cookie in &browser.last_set_cookies {
        assert!(cookie.contains("; Secure"), "{cookie}");
    }
}

async fn a_form_without_or_with_a_wrong_csrf_token_is_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (login, password) = (app.admin.username.as_str(), app.admin.password.as_str());
    let mut browser = PageClient::new(&app);
    let (_, _, html) = browser.get("/login").await;
    let token = csrf_of(&html);
    let mut other = PageClient::new(&app);
    let (_, _, other_html) = other.get("/login").await;
    let others_token = csrf_of(&other_html);
    assert_ne!(token, others_token, "each browser has its own token");
    for (case, csrf) in [
        ("no token", None),
        ("a wrong token", Some("AAAA")),
        ("another browser's token", Some(others_token.as_str())),
    ] {
        let mut form = vec![("username", login), ("password", password)];
        if let Some(csrf) = csrf {
            form.push(("csrf", csrf));
        }
        let (status, headers, html) = browser.post("/login", &form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{case}");
        assert!(is_page(&headers), "{case}: a page, not problem+json");
        assert!(html.contains("Request id:"), "{case}: {html}");
        assert!(
            !browser.has_cookie("shelter_access"),
            "{case}: not signed in"
        );
    }
    let (status, _, _) = browser
        .post(
            "/login",
            &[
                ("username", login),
                ("password", password),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the right token");
    // Signed in, a form still needs the token: no sign-out by a forged form.
    let (status, _, _) = browser.post("/logout", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        browser.get("/account").await.0,
        StatusCode::OK,
        "still signed in"
    );
}

async fn opening_an_email_link_does_not_spend_its_token(backend: Backend) {
    let Some((app, smtp)) = TestApp::spawn_with_smtp(backend, |_| {}).await else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    let token = smtp
        .email_to(&user.email, WAIT)
        .await
        .and_then(|email| email.token())
        .expect("welcome token");
    let mut browser = PageClient::new(&app);
    let link = format!("/verify-email?token={token}");
    for _ in 0..2 {
        let (status, _, html) = browser.get(&link).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Confirm my email"), "{html}");
    }
    let me = body(app.get_as("/users/me", &app.token_for(&user).await).await).await;
    assert_eq!(me["email_verified"], false, "the GETs spent nothing");
    let (status, _, html) = browser
        .submit(&link, "/verify-email", &[("token", &token)])
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("is verified"), "{html}");
    let (status, _, html) = browser
        .submit(&link, "/verify-email", &[("token", &token)])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("This link was already used") && html.contains("/verify-email/resend"),
        "{html}"
    );
    let (status, _, html) = browser.get("/verify-email").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no token: {html}");

    // The reset page likewise: the token still works after the page was opened.
    let recovery = app
        .post_json("/auth/password-recovery", &json!({"email": user.email}))
        .await;
    assert_eq!(recovery.status(), StatusCode::ACCEPTED);
    let reset = loop {
        let received = smtp.wait_for(2, WAIT).await;
        if let Some(token) = received
            .iter()
            .find(|e| e.subject().is_some_and(|s| s.contains("Reset")))
            .and_then(shelter_test_support::smtp::ReceivedEmail::token)
        {
            break token;
        }
    };
    let (status, _, html) = browser.get(&format!("/reset-password?token={reset}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("new_password"), "{html}");
    let done = app
        .post_json(
            "/auth/reset-password",
            &json!({"token": reset, "new_password": "a-new-password"}),
        )
        .await;
    assert_eq!(
        done.status(),
        StatusCode::NO_CONTENT,
        "the GET left the token unspent"
    );
}

async fn errors_are_pages_and_signing_out_ends_the_page_session(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    let mut browser = PageClient::new(&app);
    let (status, headers, _) = browser.get("/account").await;
    assert_eq!(
        (status, &headers[header::LOCATION]),
        (StatusCode::SEE_OTHER, &"/login".parse().expect("value"))
    );
    browser.sign_in(&user.username, &user.password).await;
    let (status, headers, html) = browser.get("/admin/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(is_page(&headers) && html.contains("Request id:"), "{html}");
    let (status, _, html) = browser
        .submit(
            "/account",
            "/login",
            &[("username", &user.username), ("password", "wrong-password")],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(html.contains("Incorrect username or password"), "{html}");
    let (status, _, _) = browser.submit("/logout", "/logout", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!browser.has_cookie("shelter_access") && !browser.has_cookie("shelter_refresh"));
    assert_eq!(browser.get("/account").await.0, StatusCode::SEE_OTHER);
    // A page route answers a wrong method with a page, and says what it allows.
    let put = app
        .client
        .put(app.url("/login"))
        .send()
        .await
        .expect("request");
    assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(is_page(put.headers()), "{:?}", put.headers());
    assert!(put.headers().contains_key(header::ALLOW));
    // The JSON API is unchanged: its errors, and unknown paths, are problem+json.
    for path in ["/users/me", "/no-such-page"] {
        let api = app.get(path).send().await.expect("request");
        assert_eq!(
            api.headers()[header::CONTENT_TYPE],
            "application/problem+json",
            "{path}"
        );
    }
}

/// The second factor through the pages alone: set-up with the key of the page, recovery
/// codes, then a sign-in that asks for a code and takes a recovery code.
async fn two_step_sign_in_is_set_up_and_used_on_the_pages(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    let mut browser = PageClient::new(&app);
    browser.sign_in(&user.username, &user.password).await;
    let (status, _, html) = browser
        .submit(
            "/account",
            "/account/totp",
            &[("current_password", "wrong-password")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("Your password is not right"), "{html}");
    let (status, _, html) = browser
        .submit(
            "/account",
            "/account/totp",
            &[("current_password", &user.password)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("<svg") && html.contains("QR code"), "{html}");
    let marker = "Or type in this key: <code>";
    let start = html.find(marker).expect("the key") + marker.len();
    let secret = html[start..].split('<').next().expect("key").to_owned();
    let csrf = csrf_of(&html);
    let code = shelter_crypto::code_at(&secret, chrono::Utc::now()).expect("code");
    let (status, _, html) = browser
        .post("/account/totp/confirm", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let codes: Vec<String> = html
        .split("<li>")
        .skip(1)
        .filter_map(|item| item.split('<').next())
        .filter(|item| item.len() > 6 && !item.contains(' '))
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len(), 10, "ten recovery codes: {html}");

    let mut other = PageClient::new(&app);
    let (status, _, html) = other
        .submit(
            "/login",
            "/login",
            &[("username", &user.email), ("password", &user.password)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "a second step, not a session");
    assert!(!other.has_cookie("shelter_access"));
    let mfa_marker = "name=\"mfa_token\" value=\"";
    let start = html.find(mfa_marker).expect("the second step's token") + mfa_marker.len();
    let mfa_token = html[start..].split('"').next().expect("token").to_owned();
    let csrf = csrf_of(&html);
    let (status, _, html) = other
        .post(
            "/login/code",
            &[
                ("csrf", &csrf),
                ("mfa_token", &mfa_token),
                ("code", "000000"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(html.contains("That code is not right"), "{html}");
    let (status, headers, _) = other
        .post(
            "/login/code",
            &[
                ("csrf", &csrf),
                ("mfa_token", &mfa_token),
                ("code", &codes[0]),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/account");
    assert_eq!(other.get("/account").await.0, StatusCode::OK);
}

/// `/login?next=`: a page that sends a visitor to sign in says where to come back to, and
/// only a path on this host is ever followed.
async fn signing_in_returns_to_a_local_next_and_ignores_any_other(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    let mut browser = PageClient::new(&app);
    let (status, headers, _) = browser.get("/admin/users?q=ann").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers[header::LOCATION],
        "/login?next=%2Fadmin%2Fusers%3Fq%3Dann"
    );
    let (_, _, html) = browser.get("/login?next=%2Faccount%3Fdone%3Dprofile").await;
    assert!(
        html.contains(r#"name="next" value="/account?done=profile""#),
        "the form carries next: {html}"
    );
    let cases = [
        ("/account?done=profile", "/account?done=profile"),
        ("/admin/users?q=a&page=2", "/admin/users?q=a&page=2"),
        ("https://evil.example/", "/account"),
        ("//evil.example/", "/account"),
        ("/\\evil.example/", "/account"),
        ("javascript:alert(1)", "/account"),
        ("/account\r\nSet-Cookie: x=y", "/account"),
        ("/caf\u{e9}", "/account"),
        ("", "/account"),
    ];
    for (next, landing) in cases {
        let mut browser = PageClient::new(&app);
        let (status, headers, html) = browser
            .submit(
                "/login",
                "/login",
                &[
                    ("username", &user.username),
                    ("password", &user.password),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "next {next:?}: {html}");
        assert_eq!(headers[header::LOCATION], landing, "next {next:?}");
        // Signed in already, the login page sends the visitor on the same way.
        let (status, headers, _) = browser
            .get(&format!("/login?next={}", urlencoding(next)))
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "next {next:?}");
        assert_eq!(headers[header::LOCATION], landing, "next {next:?}");
    }
    let (_, _, html) = PageClient::new(&app)
        .get("/login?next=%2F%2Fevil.example")
        .await;
    assert!(
        !html.contains("evil.example"),
        "a foreign next is not carried: {html}"
    );
}

fn urlencoding(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

/// The text of the element with `id` (its first text node), or `None`.
fn element_text(html: &str, id: &str) -> Option<String> {
    let start = html.find(&format!("id=\"{id}\""))?;
    let rest = &html[start..];
    let open = rest.find('>')? + 1;
    let close = rest[open..].find('<')?;
    Some(rest[open..open + close].to_owned())
}

/// `/admin/clients`: a superuser registers an application, sees its secret once, edits its
/// redirect URIs (a refused one shown with the API's words), makes a new secret, deletes it.
async fn superusers_manage_applications_on_the_admin_pages(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut admin = PageClient::new(&app);
    admin
        .sign_in(&app.admin.username, &app.admin.password)
        .await;
    let (status, _, html) = admin
        .submit(
            "/admin/clients",
            "/admin/clients",
            &[
                ("name", "Grafana"),
                (
                    "redirect_uris",
                    "https://grafana.example.com/cb\r\n\r\nhttp://127.0.0.1:3000/cb",
                ),
                ("type", "confidential"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let id = element_text(&html, "client-id").expect("the client id on the page");
    let secret = element_text(&html, "client-secret").expect("the secret, this once");
    assert_eq!((id.len(), secret.len()), (22, 43), "{html}");
    let token = app.admin_token().await;
    let api = body(app.get_as(&format!("/oauth/clients/{id}"), &token).await).await;
    assert_eq!(
        api["redirect_uris"],
        json!(["https://grafana.example.com/cb", "http://127.0.0.1:3000/cb"]),
        "one URI a line, blank lines ignored"
    );
    let (_, _, html) = admin.get(&format!("/admin/clients/{id}")).await;
    assert!(!html.contains(&secret), "the secret is shown once only");

    let page = format!("/admin/clients/{id}");
    let (status, _, html) = admin
        .submit(
            &page,
            &format!("{page}/redirect-uris"),
            &[("redirect_uris", "http://grafana.example.com/cb")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("must be https"), "the API's words: {html}");
    let (status, headers, _) = admin
        .submit(
            &page,
            &format!("{page}/redirect-uris"),
            &[("redirect_uris", "https://grafana.example.com/new")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers[header::LOCATION],
        format!("/admin/clients/{id}?done=saved")
    );

    let (status, _, html) = admin.submit(&page, &format!("{page}/secret"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    let new_secret = element_text(&html, "client-secret").expect("a new secret");
    assert_ne!(new_secret, secret);

    let (status, headers, _) = admin.submit(&page, &format!("{page}/delete"), &[]).await;
    assert_eq!(
        (status, &headers[header::LOCATION]),
        (
            StatusCode::SEE_OTHER,
            &"/admin/clients".parse().expect("value")
        )
    );
    assert_eq!(
        app.get_as(&format!("/oauth/clients/{id}"), &token)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    let user = TestUser::generate();
    app.create(&user).await;
    let mut member = PageClient::new(&app);
    member.sign_in(&user.username, &user.password).await;
    let (status, headers, _) = member.get("/admin/clients").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(is_page(&headers));
}

shelter_test_support::on_both_backends!(
    superusers_manage_applications_on_the_admin_pages,
    signing_in_returns_to_a_local_next_and_ignores_any_other,
    two_step_sign_in_is_set_up_and_used_on_the_pages,
    pages_carry_the_security_headers_and_cookie_flags,
    a_form_without_or_with_a_wrong_csrf_token_is_refused,
    opening_an_email_link_does_not_spend_its_token,
    errors_are_pages_and_signing_out_ends_the_page_session,
);
