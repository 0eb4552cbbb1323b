//! Webhook signatures: `sha256=<hex HMAC-SHA256(secret, raw body)>`, as GitHub sends in
//! `X-Hub-Signature-256` and Gantry's own senders in `X-Gantry-Signature-256`. Checked in
//! constant time over the raw bytes received.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;
use std::sync::Arc;

/// A webhook secret. Never printed: `Debug` shows only that it is set.
#[derive(Clone)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    pub fn new(value: &str) -> Option<Secret> {
        (!value.is_empty()).then(|| Secret(Arc::from(value.as_bytes())))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Malformed,
    Mismatch,
}

impl SignatureError {
    pub fn describe(self, header: &str) -> String {
        match self {
            SignatureError::Missing => format!("missing {header} header"),
            SignatureError::Malformed => {
                format!("{header} must be `sha256=` followed by 64 hex digits")
            }
            SignatureError::Mismatch => {
                format!("{header} does not match the body: wrong secret, or the body was changed")
            }
        }
    }
}

/// Checks `header` (the signature header's value, if any) against `body`.
pub fn verify(secret: &Secret, header: Option<&[u8]>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_sig = header
        .strip_prefix(b"sha256=")
        .ok_or(SignatureError::Malformed)?;
    let mut expected = [0u8; 32];
    hex::decode_to_slice(hex_sig, &mut expected).map_err(|_| SignatureError::Malformed)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&secret.0).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// `sha256=<hex>` for `body` (for senders and tests).
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_documented_test_vector_verifies() {
        // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
        let secret = Secret::new("It's a Secret to Everybody").unwrap();
        let sig = b"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(verify(&secret, Some(sig), b"Hello, World!"), Ok(()));
        assert_eq!(sign(&secret, b"Hello, World!").as_bytes(), sig);
    }

    #[test]
    fn bad_signatures_are_told_apart() {
        let secret = Secret::new("s").unwrap();
        let good = sign(&secret, b"body");
        assert_eq!(verify(&secret, None, b"body"), Err(SignatureError::Missing));
        assert_eq!(
            verify(&secret, Some(b"sha1=abc"), b"body"),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&secret, Some(b"sha256=zz"), b"body"),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&secret, Some(good.as_bytes()), b"body!"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&Secret::new("t").unwrap(), Some(good.as_bytes()), b"body"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert!(Secret::new("").is_none());
    }
}
