//! The one layout of every page, and the small pieces forms are made of.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;
use maud::{DOCTYPE, Markup, html};
use shelter_domain::User;

use super::assets::{PASSKEY_SCRIPT, STYLESHEET};
use crate::edge::browser::CSRF_FIELD;
use crate::edge::refusal::FieldError;

/// A whole page: `title`, the navigation for `user` (signed in or not), and `body`.
pub fn page(title: &str, user: Option<&User>, body: &Markup) -> Markup {
    document(title, &navigation(user), body, false)
}

/// A page with passkey buttons: the script that reveals and runs them. Its response must
/// [`allow_script`].
pub fn page_with_passkeys(title: &str, user: Option<&User>, body: &Markup) -> Markup {
    document(title, &navigation(user), body, true)
}

fn navigation(user: Option<&User>) -> Markup {
    html! {
        @if let Some(user) = user {
            a href="/account" { "Account" }
            @if user.is_superuser() {
                a href="/admin/users" { "Users" }
                a href="/admin/clients" { "Applications" }
            }
            a href="/logout" { "Sign out" }
        } @else {
            a href="/login" { "Sign in" }
            a href="/signup" { "Create an account" }
        }
    }
}

/// An error page, which does not know who is asking, so it offers no navigation that
/// would pretend to.
pub fn error_page(title: &str, body: &Markup) -> Markup {
    document(title, &html! { a href="/" { "Start" } }, body, false)
}

fn document(title: &str, nav: &Markup, body: &Markup, passkeys: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Shelter" }
                link rel="stylesheet" href=(STYLESHEET.route());
                @if passkeys { script src=(PASSKEY_SCRIPT.route()) defer {} }
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header.top {
                    a.brand href="/" { "Shelter" }
                    nav aria-label="Main" { (nav) }
                }
                main #main { (body) }
                footer { "Shelter" }
            }
        }
    }
}

/// Every page's content security policy: nothing from elsewhere, forms post only here.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Lets this page's form end at `uri`'s origin as well as here. A browser checks
/// `form-action` on every redirect that follows a form: the consent form, the logout
/// confirmation and the sign-in forms of an authorization request end at the application.
pub fn allow_form_target(response: &mut HttpResponse, uri: &str) {
    let Ok(target) = url::Url::parse(uri) else {
        return;
    };
    let origin = target.origin().ascii_serialization();
    if origin == "null" {
        return;
    }
    widen_policy(response, |policy| {
        policy.replace(
            "form-action 'self'",
            &format!("form-action 'self' {origin}"),
        )
    });
}

/// Lets this page run the passkey script and the script ask this server for a ceremony's
/// options: the pages with passkey buttons, and no other.
pub fn allow_script(response: &mut HttpResponse) {
    widen_policy(response, |policy| {
        policy.replace(
            "default-src 'none';",
            "default-src 'none'; script-src 'self'; connect-src 'self';",
        )
    });
}

/// Edits the page's policy: the one it has, or every page's.
fn widen_policy(response: &mut HttpResponse, edit: impl FnOnce(&str) -> String) {
    let current = response
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|value| value.to_str().ok())
        .unwrap_or(CSP);
    if let Ok(value) = header::HeaderValue::from_str(&edit(current)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The `redirect_uri` of an authorization request a sign-in returns to (`next`), whose
/// origin its forms must be allowed to end at.
pub fn authorization_target(next: Option<&str>) -> Option<String> {
    let query = next?.strip_prefix("/oauth/authorize?")?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "redirect_uri")
        .map(|(_, value)| value.into_owned())
}

/// An HTML answer.
pub fn html(status: StatusCode, markup: &Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.0.clone())
}

/// After a successful POST, the page to load next (so a reload does not post again).
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// Where to go after signing in: `next` when it is a path on this host, else `/account`.
/// A path starts with one `/` and holds no backslash (browsers read `/\\host` as
/// `//host`), no control character and nothing beyond visible ASCII (a browser sends a
/// path percent-encoded), so another host, `//host` and any scheme are ignored.
pub fn after_sign_in(next: Option<&str>) -> &str {
    next.filter(|next| {
        next.starts_with('/')
            && !next.starts_with("//")
            && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
    })
    .unwrap_or("/account")
}

/// The login page, with `next` to come back to when it is a local path.
pub fn login_path(next: Option<&str>) -> String {
    match after_sign_in(next) {
        "/account" => "/login".to_owned(),
        next => format!(
            "/login?next={}",
            percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
        ),
    }
}

/// The hidden field that carries `next` through the sign-in forms.
pub fn next_field(next: Option<&str>) -> Markup {
    html! {
        @if let Some(next) = next.map(Some).map(after_sign_in).filter(|n| *n != "/account") {
            input type="hidden" name=(NEXT_FIELD) value=(next);
        }
    }
}

/// The form field and query parameter of the sign-in's way back.
pub const NEXT_FIELD: &str = "next";

pub fn csrf(token: &str) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(token); }
}

/// A message above a form or page.
pub fn notice(kind: Notice, text: &str) -> Markup {
    let class = match kind {
        Notice::Ok => "notice ok",
        Notice::Error => "notice error",
    };
    let role = if kind == Notice::Error {
        "alert"
    } else {
        "status"
    };
    html! { div class=(class) role=(role) { (text) } }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Ok,
    Error,
}

/// One labelled input, with its error (from the same 422 the API would answer) tied to it
/// for screen readers.
pub struct Input<'a> {
    /// Which form of the page the input belongs to, so ids stay unique.
    pub form: &'a str,
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub autocomplete: &'a str,
    pub hint: Option<&'a str>,
}

impl<'a> Input<'a> {
    pub fn new(name: &'a str, label: &'a str, kind: &'a str, autocomplete: &'a str) -> Self {
        Self {
            form: "field",
            name,
            label,
            kind,
            value: "",
            autocomplete,
            hint: None,
        }
    }

    #[must_use]
    pub fn within(mut self, form: &'a str) -> Self {
        self.form = form;
        self
    }

    #[must_use]
    pub fn value(mut self, value: &'a str) -> Self {
        self.value = value;
        self
    }

    #[must_use]
    pub fn hint(mut self, hint: &'a str) -> Self {
        self.hint = Some(hint);
        self
    }

    pub fn render(&self, errors: &[FieldError]) -> Markup {
        let id = format!("{}-{}", self.form, self.name);
        let error = errors.iter().find(|e| e.field == self.name);
        let described = match (error.is_some(), self.hint.is_some()) {
            (true, _) => Some(format!("{id}-error")),
            (false, true) => Some(format!("{id}-hint")),
            (false, false) => None,
        };
        html! {
            label for=(id) { (self.label) }
            input id=(id) name=(self.name) type=(self.kind) value=(self.value)
                autocomplete=(self.autocomplete) required
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[described];
            @if let Some(error) = error {
                p.field-error id={ (id) "-error" } { (error.message) }
            } @else if let Some(hint) = self.hint {
                p.hint id={ (id) "-hint" } { (hint) }
            }
        }
    }
}

/// The errors of fields no input shows (an unknown field, `body`), as one notice.
pub fn other_errors(errors: &[FieldError], shown: &[&str]) -> Markup {
    let other: Vec<_> = errors
        .iter()
        .filter(|e| !shown.contains(&e.field.as_str()))
        .collect();
    html! {
        @if !other.is_empty() {
            div.notice.error role="alert" {
                @for error in other { p { (error.field) ": " (error.message) } }
            }
        }
    }
}

/// A signed-out page: one card with a heading.
pub fn card(status: StatusCode, title: &str, body: &Markup) -> HttpResponse {
    html(
        status,
        &page(title, None, &html! { div.card { h1 { (title) } (body) } }),
    )
}

/// A signed-out page with passkey buttons.
pub fn passkey_card(status: StatusCode, title: &str, body: &Markup) -> HttpResponse {
    let mut response = html(
        status,
        &page_with_passkeys(title, None, &html! { div.card { h1 { (title) } (body) } }),
    );
    allow_script(&mut response);
    response
}

/// The hidden fields and the status line every passkey form has; the script fills them.
pub fn passkey_fields(flow: bool) -> Markup {
    html! {
        @if flow { input type="hidden" name="flow_token" value=""; }
        input type="hidden" name="credential" value="";
        p.field-error data-passkey-status role="alert" hidden {}
    }
}
