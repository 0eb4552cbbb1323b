//! Signed callback tokens for remote workers (agents on other hosts, ECS tasks, CodeBuild
//! builds and Lambda functions): each attempt gets a token naming its run, job,
//! attempt and expiry, signed with HMAC-SHA256 under the server's key, that the worker hands
//! back with its result. This module is the pure part: making a token and checking one (its
//! form, its signature, then its expiry). That a token is used once and names the attempt that
//! is still current is the engine's check, against the store.
//!
//! A token is `base64url(claim JSON) "." base64url(MAC over those base64 bytes)`, so a token
//! travels in a URL path or query as it is.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What a token grants: reporting on this attempt until `expires_at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    #[serde(rename = "r")]
    pub run_id: String,
    #[serde(rename = "j")]
    pub job: String,
    #[serde(rename = "a")]
    pub attempt: u32,
    #[serde(rename = "e")]
    pub expires_at_ms: i64,
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the callback token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the callback token's signature does not match")]
    BadSignature,
    #[error("the callback token expired at {expired_at_ms} (ms since the epoch)")]
    Expired { expired_at_ms: i64 },
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// The token for `claim`, signed with `key`.
pub fn sign(key: &[u8], claim: &Claim) -> String {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claim).expect("a claim is JSON"));
    let mut m = mac(key);
    m.update(body.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    format!("{body}.{sig}")
}

/// The claim of a token signed with `key` that has not expired at `now_ms`. The signature is
/// checked (in constant time) before anything in the claim is believed.
pub fn verify(key: &[u8], token: &str, now_ms: i64) -> Result<Claim, Refused> {
    let (body, sig) = token
        .split_once('.')
        .ok_or(Refused::Malformed("no signature part"))?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| Refused::Malformed("the signature is not base64url"))?;
    let mut m = mac(key);
    m.update(body.as_bytes());
    m.verify_slice(&sig).map_err(|_| Refused::BadSignature)?;
    let json = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| Refused::Malformed("the claim is not base64url"))?;
    let claim: Claim =
        serde_json::from_slice(&json).map_err(|_| Refused::Malformed("the claim is not valid"))?;
    if now_ms >= claim.expires_at_ms {
        return Err(Refused::Expired {
            expired_at_ms: claim.expires_at_ms,
        });
    }
    Ok(claim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &[u8] = b"server key of some length";

    fn claim() -> Claim {
        Claim {
            run_id: "01KBV4Z8T7M9QX3W2N5R6P0HJD".into(),
            job: "build".into(),
            attempt: 2,
            expires_at_ms: 1_000,
        }
    }

    #[test]
    fn a_token_is_good_until_it_expires_and_only_under_its_key() {
        let t = sign(KEY, &claim());
        assert_eq!(verify(KEY, &t, 999), Ok(claim()));
        assert_eq!(
            verify(KEY, &t, 1_000),
            Err(Refused::Expired {
                expired_at_ms: 1_000
            })
        );
        assert_eq!(verify(b"another key", &t, 0), Err(Refused::BadSignature));
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'),
            "travels in a URL as it is: {t}"
        );
    }

    #[test]
    fn a_claim_cannot_be_changed_or_borrowed() {
        let t = sign(KEY, &claim());
        let (_, sig) = t.split_once('.').unwrap();
        // Another attempt's claim with this token's signature.
        let mut other = claim();
        other.attempt = 3;
        let body = sign(KEY, &other);
        let forged = format!("{}.{sig}", body.split_once('.').unwrap().0);
        assert_eq!(verify(KEY, &forged, 0), Err(Refused::BadSignature));
        for bad in ["", "abc", "abc.", ".abc", "abc.!!"] {
            assert!(verify(KEY, bad, 0).is_err(), "{bad}");
        }
        assert_eq!(
            verify(KEY, "abc", 0),
            Err(Refused::Malformed("no signature part"))
        );
    }

    proptest! {
        #[test]
        fn any_change_to_a_token_is_refused(
            job in "[a-z][a-z0-9_-]{0,20}",
            attempt in 1u32..100,
            at in 0usize..200,
            to in any::<u8>(),
        ) {
            let c = Claim { job, attempt, ..claim() };
            let t = sign(KEY, &c);
            prop_assert_eq!(verify(KEY, &t, 0), Ok(c));
            let mut bytes = t.into_bytes();
            let at = at % bytes.len();
            prop_assume!(bytes[at] != to);
            bytes[at] = to;
            if let Ok(changed) = String::from_utf8(bytes) {
                prop_assert!(verify(KEY, &changed, 0).is_err());
            }
        }
    }
}
