//! The shared secret between the server and a sandbox's agent: the server keeps the raw
//! value (in a container label) and sends it as a bearer token; the sandbox only ever sees
//! `hex(salt):hex(sha256(salt || raw))`.

use rand::RngCore;
/// A fresh random secret: 32 bytes as hex.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The salted hash the agent verifies tokens against, with a fresh salt.
pub fn salted_hash(raw: &str) -> String {
    let mut salt = [0u8; discobot_agent_api::SALT_LEN];
    rand::rng().fill_bytes(&mut salt);
    discobot_agent_api::secret::salted_hash(raw, &salt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn hash_is_salted_and_checks_out() {
        let raw = generate();
        assert_eq!(raw.len(), 64);
        let (first, second) = (salted_hash(&raw), salted_hash(&raw));
        assert_ne!(first, second, "a fresh salt each time");
        let (salt, digest) = first.split_once(':').unwrap();
        let mut hasher = Sha256::new();
        hasher.update(hex::decode(salt).unwrap());
        hasher.update(raw.as_bytes());
        assert_eq!(hex::encode(hasher.finalize()), digest);
    }
}
