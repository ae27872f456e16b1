//! The pages' one stylesheet, built into the binary and served under a name that carries a
//! hash of its content, so browsers may keep it for a year and still see every change.

use std::fmt::Write as _;
use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::http::header;
use sha2::{Digest as _, Sha256};

/// An asset built into the binary, named by its content.
pub struct Asset {
    content: &'static str,
    route: LazyLock<String>,
}

impl Asset {
    /// Where the asset is served; the same for the life of the binary.
    pub fn route(&self) -> &str {
        &self.route
    }
}

pub static STYLESHEET: Asset = Asset {
    content: include_str!("../../assets/shelter.css"),
    route: LazyLock::new(|| hashed("shelter", "css", include_str!("../../assets/shelter.css"))),
};

/// `/assets/{stem}-{first 16 hex digits of the SHA-256 of content}.{extension}`.
fn hashed(stem: &str, extension: &str, content: &str) -> String {
    let digest = Sha256::digest(content.as_bytes());
    let hex = digest[..8].iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    });
    format!("/assets/{stem}-{hex}.{extension}")
}

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(STYLESHEET.content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_changes_with_the_content() {
        let one = hashed("shelter", "css", "a {}");
        let hex = one
            .strip_prefix("/assets/shelter-")
            .and_then(|rest| rest.strip_suffix(".css"))
            .unwrap_or_default();
        assert!(
            hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{one}"
        );
        assert_ne!(one, hashed("shelter", "css", "b {}"));
        assert_eq!(one, hashed("shelter", "css", "a {}"));
    }
}
