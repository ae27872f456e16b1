//! `/.well-known/jwks.json`: the public keys other services verify Shelter's tokens with.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::edge::state::AppState;

/// One Ed25519 public key in RFC 7517 / RFC 8037 form.
#[derive(Debug, Serialize, ToSchema)]
pub struct Jwk {
    #[schema(example = "OKP")]
    kty: &'static str,
    #[schema(example = "Ed25519")]
    crv: &'static str,
    /// The key's RFC 7638 thumbprint, as in the `kid` of the tokens it signs.
    kid: String,
    /// The public key, base64url.
    x: String,
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    use_: &'static str,
    #[schema(example = "EdDSA")]
    alg: &'static str,
}

/// The keys; empty with HS256.
#[derive(Debug, Serialize, ToSchema)]
pub struct JwkSet {
    keys: Vec<Jwk>,
}

/// Every public key that may verify a live access token (none with HS256).
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, body = JwkSet, headers(("Cache-Control" = String, description = "public, max-age=300"))))
)]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    let keys = state
        .auth
        .published_keys()
        .into_iter()
        .map(|key| Jwk {
            kty: "OKP",
            crv: "Ed25519",
            kid: key.kid,
            x: key.x,
            use_: "sig",
            alg: "EdDSA",
        })
        .collect();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(JwkSet { keys })
}
