//! Secret values and their sealing at rest: `Secret` (a string that never prints), and
//! `Sealer` (AES-256-GCM with a fresh nonce per value and caller-chosen associated data).
//!
//! Pure logic: the key comes from the binary (environment or key file), the sealed bytes go
//! to the store. Nothing here logs, and no `Debug` output shows a secret or the key.

use std::fmt;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};

type Nonce = aes_gcm::aead::Nonce<Aes256Gcm>;
use rand::RngCore;

use crate::error::{Error, ErrorKind, Result};

/// Length of an encryption key in bytes (AES-256).
pub const KEY_LEN: usize = 32;
/// Length of the random nonce stored in front of every sealed value.
pub const NONCE_LEN: usize = 12;
/// Length of the authentication tag at the end of every sealed value.
pub const TAG_LEN: usize = 16;

/// Associated data of the key check value, so that it can never be confused with a
/// credential (whose associated data is its id).
const KEY_CHECK_AAD: &[u8] = b"discobot:key-check:v1";
/// The plaintext of the key check value.
const KEY_CHECK_PLAINTEXT: &[u8] = b"discobot encryption key check";

/// The message of a start-up with a key other than the database's.
pub const WRONG_KEY_MESSAGE: &str =
    "the encryption key does not match the one this database was created with";

/// A secret string: an API key, a token, an environment variable's value.
///
/// It has no `Display` and no `Serialize`, and its `Debug` is `[redacted]`, so it cannot end
/// up in a log line, an error or a response by accident; `expose` is the one way to read it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself; call it only where the value must leave the process (sealing, the
    /// agent's credentials header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the value is empty or only white space (a "keep the old value" marker).
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// Length in bytes, for size checks.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The same secret with surrounding white space removed (pasted keys often carry a
    /// trailing newline).
    pub fn trimmed(&self) -> Secret {
        Secret(self.0.trim().to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

/// Reading a secret from a request body is safe; writing one out is never automatic.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// Seals and opens values with AES-256-GCM.
///
/// Sealed form: `nonce (12 random bytes) ‖ ciphertext ‖ tag (16 bytes)`. The associated
/// data (for credentials: the credential id) is authenticated but not stored, so a sealed
/// value copied onto another row does not open.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer { key: [redacted] }")
    }
}

impl Sealer {
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Sealer {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// A sealer from key bytes of any length; anything but 32 bytes is refused (the error
    /// names the expected length only).
    pub fn from_slice(key: &[u8]) -> Result<Self> {
        let key: &[u8; KEY_LEN] = key.try_into().map_err(|_| {
            Error::invalid(format!("an encryption key must be {KEY_LEN} bytes long"))
        })?;
        Ok(Sealer::new(key))
    }

    /// Encrypts `plaintext` under a fresh random nonce, binding `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            // Only fails for plaintexts beyond 64 GiB, which no caller can produce.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts a value made by `seal` with the same key and `aad`. A wrong key, other
    /// associated data, or any changed byte is an error; it never yields garbage.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(Error::internal("sealed value is too short"));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce)
            .map_err(|_| Error::internal("sealed value has a malformed nonce"))?;
        self.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| {
                Error::internal(
                    "cannot open a sealed value: wrong encryption key, or the data was changed",
                )
            })
    }

    /// A value that opens only under this key: stored once per database, so that a server
    /// started with another key notices at once.
    pub fn key_check_value(&self) -> Vec<u8> {
        self.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD)
    }

    /// Checks a stored key check value against this key.
    pub fn verify_key_check(&self, stored: &[u8]) -> Result<()> {
        match self.open(stored, KEY_CHECK_AAD) {
            Ok(plaintext) if plaintext == KEY_CHECK_PLAINTEXT => Ok(()),
            _ => Err(Error::new(ErrorKind::Conflict, WRONG_KEY_MESSAGE)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> Sealer {
        Sealer::new(&[byte; KEY_LEN])
    }

    #[test]
    fn seal_then_open() {
        let s = sealer(7);
        let sealed = s.seal(b"sk-ant-secret", b"cred-1");
        assert_eq!(sealed.len(), NONCE_LEN + b"sk-ant-secret".len() + TAG_LEN);
        assert_eq!(s.open(&sealed, b"cred-1").unwrap(), b"sk-ant-secret");
        // The plaintext is not in the sealed bytes.
        assert!(!sealed.windows(13).any(|w| w == b"sk-ant-secret"));
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let s = sealer(7);
        let a = s.seal(b"same", b"id");
        let b = s.seal(b"same", b"id");
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
        assert_ne!(a, b);
    }

    #[test]
    fn wrong_key_fails() {
        let sealed = sealer(1).seal(b"value", b"id");
        let error = sealer(2).open(&sealed, b"id").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Internal);
        assert!(error.message.contains("wrong encryption key"), "{error}");
    }

    #[test]
    fn tampered_ciphertext_fails() {
        let s = sealer(3);
        let sealed = s.seal(b"value", b"id");
        for i in 0..sealed.len() {
            let mut changed = sealed.clone();
            changed[i] ^= 0x01;
            assert!(s.open(&changed, b"id").is_err(), "byte {i} changed");
        }
        assert!(s.open(&sealed[..sealed.len() - 1], b"id").is_err());
        assert!(s.open(&[], b"id").is_err());
        assert!(s.open(&[0u8; NONCE_LEN + TAG_LEN - 1], b"id").is_err());
    }

    #[test]
    fn associated_data_mismatch_fails() {
        let s = sealer(4);
        let sealed = s.seal(b"value", b"cred-a");
        assert!(s.open(&sealed, b"cred-b").is_err());
        assert!(s.open(&sealed, b"").is_err());
    }

    #[test]
    fn key_check() {
        let s = sealer(5);
        let check = s.key_check_value();
        s.verify_key_check(&check).unwrap();
        let error = sealer(6).verify_key_check(&check).unwrap_err();
        assert_eq!(error.message, WRONG_KEY_MESSAGE);
        // A credential sealed under the same key is not a valid check value.
        assert!(s.verify_key_check(&s.seal(b"x", b"id")).is_err());
        assert!(s.verify_key_check(b"garbage").is_err());
    }

    #[test]
    fn key_length_is_enforced() {
        assert!(Sealer::from_slice(&[0u8; 31]).is_err());
        assert!(Sealer::from_slice(&[0u8; 33]).is_err());
        assert!(Sealer::from_slice(&[0u8; 32]).is_ok());
    }

    #[test]
    fn debug_output_hides_secrets_and_keys() {
        let secret = Secret::new("sk-very-secret");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
        let debug = format!("{:?}", sealer(9));
        assert!(!debug.contains("9,"), "{debug}");
        assert!(debug.contains("redacted"));
    }

    #[test]
    fn secret_helpers() {
        assert!(Secret::new("  \n").is_blank());
        assert!(!Secret::new(" x ").is_blank());
        assert_eq!(Secret::new(" x \n").trimmed().expose(), "x");
        let parsed: Secret = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(parsed.expose(), "abc");
    }
}
