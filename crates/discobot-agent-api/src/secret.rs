//! The shared secret between the server and a sandbox's agent, as the agent sees it.
//!
//! The server keeps the raw secret and sends it on every request as `Authorization: Bearer <raw>`.
//! The agent is only given `hex(salt) ":" hex(sha256(salt || raw))` (env `DISCOBOT_SECRET`), so
//! reading the sandbox's environment does not reveal a token that works. Both sides build and
//! check that string with these functions. They are pure: the caller draws the salt (16 random
//! bytes, [`SALT_LEN`]) so this crate needs no randomness and no IO.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The salt length the server uses. Parsing accepts any non-empty salt.
pub const SALT_LEN: usize = 16;

/// A parsed `hex(salt):hex(sha256(salt || raw))`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash {
    salt: Vec<u8>,
    digest: [u8; 32],
}

/// Why a `DISCOBOT_SECRET` value is not a salted hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedSecretHash(&'static str);

impl fmt::Display for MalformedSecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed secret hash (want hex(salt):hex(sha256)): {}",
            self.0
        )
    }
}

impl std::error::Error for MalformedSecretHash {}

impl SecretHash {
    /// The hash of `raw` with `salt`.
    pub fn new(raw: &str, salt: &[u8]) -> Self {
        Self {
            salt: salt.to_vec(),
            digest: digest(salt, raw),
        }
    }

    /// Parses `hex(salt):hex(sha256)`; surrounding whitespace is ignored.
    pub fn parse(value: &str) -> Result<Self, MalformedSecretHash> {
        let (salt, digest) = value
            .trim()
            .split_once(':')
            .ok_or(MalformedSecretHash("no `:`"))?;
        let salt = hex::decode(salt).map_err(|_| MalformedSecretHash("salt is not hex"))?;
        if salt.is_empty() {
            return Err(MalformedSecretHash("empty salt"));
        }
        let digest: [u8; 32] = hex::decode(digest)
            .map_err(|_| MalformedSecretHash("digest is not hex"))?
            .try_into()
            .map_err(|_| MalformedSecretHash("digest is not 32 bytes"))?;
        Ok(Self { salt, digest })
    }

    /// Whether `token` is the raw secret this hash was made from.
    ///
    /// The digests are compared in constant time, so the time taken does not tell an attacker
    /// how many leading bytes of their guess's digest were right.
    pub fn verify(&self, token: &str) -> bool {
        digest(&self.salt, token).ct_eq(&self.digest).into()
    }
}

/// `hex(salt):hex(sha256(salt || raw))`, the value the server gives the agent as `DISCOBOT_SECRET`.
impl fmt::Display for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            hex::encode(&self.salt),
            hex::encode(self.digest)
        )
    }
}

/// Never prints the digest or salt in logs.
impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// `hex(salt):hex(sha256(salt || raw))` for `raw` with `salt` (the server passes 16 random bytes).
pub fn salted_hash(raw: &str, salt: &[u8]) -> String {
    SecretHash::new(raw, salt).to_string()
}

/// Whether `token` matches the salted hash `hash`; `Err` if `hash` is not one.
pub fn verify(hash: &str, token: &str) -> Result<bool, MalformedSecretHash> {
    Ok(SecretHash::parse(hash)?.verify(token))
}

fn digest(salt: &[u8], raw: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(raw.as_bytes());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: [u8; SALT_LEN] = [7; SALT_LEN];

    #[test]
    fn hash_has_the_wire_format() {
        let hash = salted_hash("s3cret", &SALT);
        let (salt, digest) = hash.split_once(':').unwrap();
        assert_eq!(salt, "07".repeat(16));
        // sha256(16 × 0x07 || "s3cret"), computed independently with `printf | sha256sum`.
        assert_eq!(
            digest,
            "58a9afe64e4c8f6dc648809d3b1dcc328ba1f4f893b6b567cac9fd2aa2cfbab6"
        );
        assert_eq!(SecretHash::parse(&hash).unwrap().to_string(), hash);
    }

    #[test]
    fn right_token_verifies() {
        let hash = salted_hash("s3cret", &SALT);
        assert_eq!(verify(&hash, "s3cret"), Ok(true));
    }

    #[test]
    fn wrong_token_fails() {
        let hash = salted_hash("s3cret", &SALT);
        assert_eq!(verify(&hash, "s3cret "), Ok(false));
        assert_eq!(verify(&hash, "S3cret"), Ok(false));
        assert_eq!(verify(&hash, ""), Ok(false));
        // The same raw secret under another salt is another hash.
        let other = salted_hash("s3cret", &[8; SALT_LEN]);
        assert_ne!(hash, other);
        assert_eq!(verify(&other, "s3cret"), Ok(true));
    }

    #[test]
    fn empty_secret_hashes_like_any_other() {
        // An empty DISCOBOT_SECRET disables auth in the agent; the hash of an empty raw secret
        // is still a valid hash that only the empty token matches.
        let hash = salted_hash("", &SALT);
        assert_eq!(verify(&hash, ""), Ok(true));
        assert_eq!(verify(&hash, "x"), Ok(false));
    }

    #[test]
    fn malformed_hashes_are_rejected() {
        let digest = "ab".repeat(32);
        for bad in [
            String::new(),
            "nocolon".to_owned(),
            format!(":{digest}"),
            format!("zz:{digest}"),
            "0707:abcd".to_owned(),
            format!("0707:{}", "zz".repeat(32)),
            format!("0707:{digest}00"),
        ] {
            assert!(SecretHash::parse(&bad).is_err(), "{bad:?} parsed");
            assert!(verify(&bad, "anything").is_err(), "{bad:?} verified");
        }
        assert!(SecretHash::parse(&format!(" 0707:{digest}\n")).is_ok());
    }

    #[test]
    fn debug_hides_the_hash() {
        let hash = SecretHash::new("s3cret", &SALT);
        assert_eq!(format!("{hash:?}"), "SecretHash(..)");
    }
}
