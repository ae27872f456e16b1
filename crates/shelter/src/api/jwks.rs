//! `/.well-known/jwks.json`: the public keys other services verify Shelter's tokens with.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use shelter_domain::keys::PublicJwk;
use utoipa::ToSchema;

use crate::edge::state::AppState;

/// One public key in RFC 7517 form: an Ed25519 key (`kty: OKP`, RFC 8037) or an RSA key
/// (`kty: RSA`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Jwk {
    #[schema(example = "RSA")]
    kty: &'static str,
    /// `Ed25519`, for an OKP key.
    #[serde(skip_serializing_if = "Option::is_none")]
    crv: Option<&'static str>,
    /// The key's RFC 7638 thumbprint, as in the `kid` of the tokens it signs.
    kid: String,
    /// An OKP key's public key, base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    /// An RSA key's modulus, base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    /// An RSA key's public exponent, base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    use_: &'static str,
    #[schema(example = "RS256")]
    alg: &'static str,
}

/// The keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct JwkSet {
    keys: Vec<Jwk>,
}

/// Every public key that may verify a live token: the OpenID Connect provider's RSA keys
/// (`RS256`), and with `SHELTER_JWT_ALGORITHM=EdDSA` the Ed25519 keys of access tokens.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, body = JwkSet, headers(("Cache-Control" = String, description = "public, max-age=300"))))
)]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    let keys = state
        .auth
        .published_keys()
        .into_iter()
        .map(|key| match key.public {
            PublicJwk::Ed25519 { x } => Jwk {
                kty: "OKP",
                crv: Some("Ed25519"),
                kid: key.kid,
                x: Some(x),
                n: None,
                e: None,
                use_: "sig",
                alg: "EdDSA",
            },
            PublicJwk::Rsa { n, e } => Jwk {
                kty: "RSA",
                crv: None,
                kid: key.kid,
                x: None,
                n: Some(n),
                e: Some(e),
                use_: "sig",
                alg: "RS256",
            },
        })
        .collect();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(JwkSet { keys })
}
