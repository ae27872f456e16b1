//! Subjects and bodies of the emails, from templates kept in files.

use anyhow::Context;
use minijinja::{Environment, Value, context};
use secrecy::ExposeSecret as _;
use shelter_domain::{EmailKind, OutboundEmail};

/// An email's text, ready for a transport.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Renders emails with the app's name and links under its public URL.
pub struct Renderer {
    templates: Environment<'static>,
    app_name: String,
    link_base: String,
}

impl Renderer {
    /// # Errors
    /// When a template does not parse (a build defect, caught by the tests).
    pub fn new(app_name: &str, link_base: &url::Url) -> anyhow::Result<Self> {
        let mut templates = Environment::new();
        // `.html` templates are escaped automatically; `.txt` ones are not.
        for (name, source) in [
            ("welcome.txt", include_str!("../templates/welcome.txt")),
            ("welcome.html", include_str!("../templates/welcome.html")),
            (
                "verify_email.txt",
                include_str!("../templates/verify_email.txt"),
            ),
            (
                "verify_email.html",
                include_str!("../templates/verify_email.html"),
            ),
            (
                "password_reset.txt",
                include_str!("../templates/password_reset.txt"),
            ),
            (
                "password_reset.html",
                include_str!("../templates/password_reset.html"),
            ),
            (
                "sign_in_code.txt",
                include_str!("../templates/sign_in_code.txt"),
            ),
            (
                "sign_in_code.html",
                include_str!("../templates/sign_in_code.html"),
            ),
        ] {
            templates
                .add_template(name, source)
                .with_context(|| format!("template {name}"))?;
        }
        Ok(Self {
            templates,
            app_name: app_name.to_owned(),
            link_base: link_base.as_str().trim_end_matches('/').to_owned(),
        })
    }

    /// # Errors
    /// When a template fails to render.
    pub fn render(&self, email: &OutboundEmail) -> anyhow::Result<Rendered> {
        let (subject, page) = match email.kind {
            EmailKind::Welcome => (format!("Welcome to {}", self.app_name), "verify-email"),
            EmailKind::VerifyEmail => (
                format!("Confirm your new email address for {}", self.app_name),
                "verify-email",
            ),
            EmailKind::PasswordReset => (
                format!("Reset your {} password", self.app_name),
                "reset-password",
            ),
            EmailKind::SignInCode => (
                format!("Your {} sign-in code", self.app_name),
                "login/email",
            ),
        };
        let token = email.token.expose();
        let link = format!("{}/{page}?token={token}", self.link_base);
        // The link is a parsed URL and a base64url token: escaping the characters that end
        // an attribute is enough, and keeps it readable (the default escaper turns every
        // `/` into `&#x2f;`).
        let attribute_safe = link
            .replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let ctx = context! {
            app_name => self.app_name,
            username => email.username,
            token => token,
            code => email.code.as_ref().map(|code| code.expose_secret().to_owned()),
            link => link,
            html_link => Value::from_safe_string(attribute_safe),
        };
        let body = |extension: &str| {
            let name = format!("{}.{extension}", email.kind.as_str());
            self.templates
                .get_template(&name)
                .and_then(|template| template.render(&ctx))
                .with_context(|| format!("render {name}"))
        };
        Ok(Rendered {
            subject,
            text: body("txt")?,
            html: body("html")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shelter_domain::{EmailAddress, SecretToken};

    fn email(kind: EmailKind, username: &str) -> OutboundEmail {
        OutboundEmail {
            to: EmailAddress::parse("ann@example.com").expect("email"),
            kind,
            username: username.into(),
            token: SecretToken::presented("tok-123_ABC"),
            code: (kind == EmailKind::SignInCode).then(|| "042917".into()),
        }
    }

    #[test]
    fn every_email_has_the_token_on_its_own_line_and_a_link() {
        let templates = Renderer::new("Shelter", &"https://shelter.example/".parse().expect("url"))
            .expect("templates");
        for (kind, page) in [
            (EmailKind::Welcome, "verify-email"),
            (EmailKind::VerifyEmail, "verify-email"),
            (EmailKind::PasswordReset, "reset-password"),
        ] {
            let rendered = templates.render(&email(kind, "ann")).expect("rendered");
            assert!(rendered.subject.contains("Shelter"), "{kind:?}");
            assert!(
                rendered
                    .text
                    .lines()
                    .any(|line| line == "Token: tok-123_ABC"),
                "{kind:?}"
            );
            let link = format!("https://shelter.example/{page}?token=tok-123_ABC");
            assert!(
                rendered.text.contains(&link) && rendered.html.contains(&link),
                "{kind:?}"
            );
            assert!(rendered.html.contains("Shelter"), "{kind:?}");
        }
    }

    #[test]
    fn a_sign_in_email_has_the_code_on_its_own_line_and_the_link() {
        let templates = Renderer::new("Shelter", &"https://shelter.example/".parse().expect("url"))
            .expect("templates");
        let rendered = templates
            .render(&email(EmailKind::SignInCode, "ann"))
            .expect("rendered");
        assert!(rendered.text.lines().any(|line| line == "Code: 042917"));
        let link = "https://shelter.example/login/email?token=tok-123_ABC";
        assert!(rendered.text.contains(link) && rendered.html.contains(link));
        assert!(rendered.html.contains("042917"));
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let templates =
            Renderer::new("Shelter", &"http://localhost".parse().expect("url")).expect("templates");
        let rendered = templates
            .render(&email(EmailKind::Welcome, "<b>ann</b>"))
            .expect("rendered");
        assert!(
            rendered.html.contains("Hello &lt;b&gt;ann&lt;"),
            "{}",
            rendered.html
        );
        assert!(!rendered.html.contains("<b>ann"), "{}", rendered.html);
        assert!(rendered.text.contains("Hello <b>ann</b>,"));
    }
}
