//! `RelyingParty` implements the domain's `WebAuthn` port with webauthn-rs (the library of
//! Kanidm and Rauthy): passkeys with user verification, registered as discoverable
//! credentials and used alone or as a second step.
//!
//! The ceremonies' states and the credentials are webauthn-rs's own serialised forms; the
//! domain carries them without reading them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shelter_domain::User;
use shelter_domain::passkeys::{
    Assertion, Ceremony, CeremonyRefusal, NewCredential, StoredPasskey, WebAuthn,
};
use url::Url;
use uuid::Uuid;
use webauthn_rs::prelude::{
    Credential, CredentialID, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};
use webauthn_rs_proto::ResidentKeyRequirement;

/// The state of a sign-in ceremony: usernameless, or of a known user's passkeys.
#[derive(Serialize, Deserialize)]
enum SignInState {
    Discoverable(DiscoverableAuthentication),
    Known(PasskeyAuthentication),
}

pub struct RelyingParty {
    webauthn: Webauthn,
}

impl RelyingParty {
    /// # Errors
    /// An RP id that is not the host (or a parent domain) of the first origin; an IP
    /// address is never an RP id.
    pub fn new(rp_id: &str, rp_name: &str, origins: &[Url]) -> anyhow::Result<Self> {
        let (first, rest) = origins
            .split_first()
            .ok_or_else(|| anyhow::anyhow!("no allowed origin"))?;
        let mut builder = WebauthnBuilder::new(rp_id, first)
            .map_err(|error| anyhow::anyhow!("RP id {rp_id} does not fit {first}: {error}"))?
            .rp_name(rp_name);
        for origin in rest {
            builder = builder.append_allowed_origin(origin);
        }
        let webauthn = builder
            .build()
            .map_err(|error| anyhow::anyhow!("WebAuthn settings: {error}"))?;
        Ok(Self { webauthn })
    }
}

fn library(error: WebauthnError) -> anyhow::Error {
    anyhow::Error::new(error).context("webauthn")
}

fn rejected(error: impl std::fmt::Display) -> CeremonyRefusal {
    CeremonyRefusal::Rejected(error.to_string())
}

fn passkey_of(stored: &StoredPasskey) -> Result<Passkey, CeremonyRefusal> {
    serde_json::from_str(&stored.credential).map_err(rejected)
}

fn serialised(value: &impl Serialize) -> anyhow::Result<String> {
    Ok(serde_json::to_string(value)?)
}

impl WebAuthn for RelyingParty {
    fn registration(
        &self,
        user_handle: Uuid,
        user: &User,
        existing: &[StoredPasskey],
    ) -> anyhow::Result<Ceremony> {
        let exclude: Vec<CredentialID> = existing
            .iter()
            .filter_map(|stored| passkey_of(stored).ok())
            .map(|passkey| passkey.cred_id().clone())
            .collect();
        let (mut options, state) = self
            .webauthn
            .start_passkey_registration(
                user_handle,
                user.email().as_str(),
                user.username().as_str(),
                Some(exclude),
            )
            .map_err(library)?;
        // webauthn-rs leaves residency to the authenticator; signing in without a username
        // needs a discoverable credential, so the options require one.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.require_resident_key = true;
            selection.resident_key = Some(ResidentKeyRequirement::Required);
        }
        Ok(Ceremony {
            public_key: serde_json::to_value(&options.public_key)?,
            state: serialised(&state)?,
        })
    }

    fn register(&self, state: &str, response: &Value) -> Result<NewCredential, CeremonyRefusal> {
        let state: PasskeyRegistration = serde_json::from_str(state).map_err(rejected)?;
        let answer: RegisterPublicKeyCredential =
            serde_json::from_value(response.clone()).map_err(rejected)?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&answer, &state)
            .map_err(rejected)?;
        let credential_id = URL_SAFE_NO_PAD.encode(passkey.cred_id());
        let serialised = serde_json::to_string(&passkey).map_err(rejected)?;
        let backed_up = Credential::from(passkey).backup_state;
        Ok(NewCredential {
            credential_id,
            credential: serialised,
            backed_up,
        })
    }

    fn sign_in(&self) -> anyhow::Result<Ceremony> {
        let (options, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(library)?;
        let mut public_key = serde_json::to_value(&options.public_key)?;
        // The library sends an empty list; a discoverable request has none at all.
        if let Some(options) = public_key.as_object_mut() {
            options.remove("allowCredentials");
        }
        Ok(Ceremony {
            public_key,
            state: serialised(&SignInState::Discoverable(state))?,
        })
    }

    fn second_step(&self, passkeys: &[StoredPasskey]) -> anyhow::Result<Ceremony> {
        let passkeys: Vec<Passkey> = passkeys
            .iter()
            .filter_map(|stored| passkey_of(stored).ok())
            .collect();
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(library)?;
        Ok(Ceremony {
            public_key: serde_json::to_value(&options.public_key)?,
            state: serialised(&SignInState::Known(state))?,
        })
    }

    fn credential_id(&self, response: &Value) -> Option<String> {
        let answer: PublicKeyCredential = serde_json::from_value(response.clone()).ok()?;
        Some(URL_SAFE_NO_PAD.encode(answer.get_credential_id()))
    }

    fn authenticate(
        &self,
        state: &str,
        response: &Value,
        stored: &StoredPasskey,
    ) -> Result<Assertion, CeremonyRefusal> {
        let state: SignInState = serde_json::from_str(state).map_err(rejected)?;
        let answer: PublicKeyCredential =
            serde_json::from_value(response.clone()).map_err(rejected)?;
        let mut passkey = passkey_of(stored)?;
        let verified = match state {
            SignInState::Discoverable(state) => {
                // The authenticator names the account by the handle it keeps; it must be
                // the one this credential was registered under.
                let (handle, _) = self
                    .webauthn
                    .identify_discoverable_authentication(&answer)
                    .map_err(rejected)?;
                if handle != stored.user_handle {
                    return Err(rejected("the user handle is not the credential's"));
                }
                self.webauthn
                    .finish_discoverable_authentication_v2(&answer, state, &passkey)
            }
            SignInState::Known(state) => {
                self.webauthn.finish_passkey_authentication(&answer, &state)
            }
        };
        let result = verified.map_err(|error| match error {
            WebauthnError::CredentialPossibleCompromise => CeremonyRefusal::CounterRegressed,
            other => rejected(other),
        })?;
        if !result.user_verified() {
            return Err(rejected("no user verification"));
        }
        passkey.update_credential(&result);
        let backed_up = result.backup_state();
        Ok(Assertion {
            credential: serde_json::to_string(&passkey).map_err(rejected)?,
            backed_up,
        })
    }
}
