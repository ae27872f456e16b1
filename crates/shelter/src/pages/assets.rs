//! The pages' one stylesheet and one script (the passkey buttons'), built into the binary
//! and served under names that carry a hash of their content, so browsers may keep them
//! for a year and still see every change.

use std::fmt::Write as _;
use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::http::header;
use sha2::{Digest as _, Sha256};

/// An asset built into the binary, named by its content.
pub struct Asset {
    content: &'static str,
    content_type: &'static str,
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
    content_type: "text/css; charset=utf-8",
    route: LazyLock::new(|| hashed("shelter", "css", include_str!("../../assets/shelter.css"))),
};

/// Runs the WebAuthn ceremonies of the passkey buttons, which it alone reveals.
pub static PASSKEY_SCRIPT: Asset = Asset {
    content: include_str!("../../assets/passkey.js"),
    content_type: "text/javascript; charset=utf-8",
    route: LazyLock::new(|| hashed("passkey", "js", include_str!("../../assets/passkey.js"))),
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

fn serve(asset: &Asset) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(asset.content)
}

pub async fn stylesheet() -> HttpResponse {
    serve(&STYLESHEET)
}

pub async fn script() -> HttpResponse {
    serve(&PASSKEY_SCRIPT)
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
