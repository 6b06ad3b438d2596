//! The encryption key that seals credentials at rest: `--encryption-key`
//! (`DISCOBOT_ENCRYPTION_KEY`, upstream `ENCRYPTION_KEY`) as 64 hex characters or the base64
//! of 32 bytes; when none is configured, the key file `<data dir>/encryption.key`, created on
//! first start with mode 0600. No message here ever shows a key.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use discobot_core::secrets::{KEY_LEN, Sealer};
use rand::RngCore;

/// The name of the key file in the data dir.
pub const KEY_FILE: &str = "encryption.key";

/// Where the key came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// `--encryption-key` or one of its environment variables.
    Configured,
    /// The key file; `created` on this start.
    File { path: PathBuf, created: bool },
}

impl KeySource {
    /// How to say "start with the right key" for this source.
    pub fn describe(&self) -> String {
        match self {
            KeySource::Configured => {
                "the key given by --encryption-key (DISCOBOT_ENCRYPTION_KEY or ENCRYPTION_KEY)"
                    .to_owned()
            }
            KeySource::File { path, created } => format!(
                "the key file {}{}",
                path.display(),
                if *created {
                    ", created on this start"
                } else {
                    ""
                }
            ),
        }
    }
}

/// The sealer of this server and where its key came from.
pub fn load(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<(Sealer, KeySource)> {
    if let Some(text) = configured.map(str::trim).filter(|text| !text.is_empty()) {
        let key = parse_key(text).context(
            "invalid encryption key (--encryption-key, DISCOBOT_ENCRYPTION_KEY or ENCRYPTION_KEY): \
             it must be 64 hexadecimal characters or the base64 encoding of 32 bytes",
        )?;
        return Ok((Sealer::new(&key), KeySource::Configured));
    }
    let path = data_dir.join(KEY_FILE);
    let (key, created) = read_or_create_key_file(&path)?;
    if created {
        tracing::info!(path = %path.display(), "created a new encryption key file; keep it with the database (losing it makes stored credentials unreadable)");
    }
    Ok((Sealer::new(&key), KeySource::File { path, created }))
}

/// 64 hex characters, or standard/URL-safe base64 (padded or not) of exactly 32 bytes.
pub fn parse_key(text: &str) -> anyhow::Result<[u8; KEY_LEN]> {
    let text = text.trim();
    if text.len() == 2 * KEY_LEN
        && let Ok(bytes) = hex::decode(text)
    {
        return to_key(&bytes);
    }
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    for engine in engines {
        if let Ok(bytes) = engine.decode(text) {
            return to_key(&bytes);
        }
    }
    bail!("not 64 hexadecimal characters, and not base64")
}

fn to_key(bytes: &[u8]) -> anyhow::Result<[u8; KEY_LEN]> {
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("the key is {} bytes long, not {KEY_LEN}", bytes.len()))
}

/// Reads the key file, or creates it (32 random bytes, hex, mode 0600) when it is missing.
/// Two servers starting at once on one data dir agree: only one creation wins.
fn read_or_create_key_file(path: &Path) -> anyhow::Result<([u8; KEY_LEN], bool)> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            warn_if_readable_by_others(path);
            let key = parse_key(&text).with_context(|| {
                format!(
                    "the key file {} does not hold a valid key (64 hexadecimal characters)",
                    path.display()
                )
            })?;
            return Ok((key, false));
        }
        Err(error) if error.kind() == ErrorKind::NotFound => {}
        Err(error) => {
            return Err(error)
                .with_context(|| format!("cannot read the key file {}", path.display()));
        }
    }
    let mut key = [0u8; KEY_LEN];
    rand::rng().fill_bytes(&mut key);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            let mut text = hex::encode(key);
            text.push('\n');
            file.write_all(text.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write the key file {}", path.display()))?;
            Ok((key, true))
        }
        // Someone else created it meanwhile: use theirs.
        Err(error) if error.kind() == ErrorKind::AlreadyExists => read_or_create_key_file(path),
        Err(error) => {
            Err(error).with_context(|| format!("cannot create the key file {}", path.display()))
        }
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "the encryption key file can be read by other users; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_formats() {
        let key: [u8; KEY_LEN] = std::array::from_fn(|i| i as u8);
        let hex = hex::encode(key);
        assert_eq!(parse_key(&hex).unwrap(), key);
        assert_eq!(parse_key(&hex.to_uppercase()).unwrap(), key);
        assert_eq!(parse_key(&format!("  {hex}\n")).unwrap(), key);
        for engine in [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            assert_eq!(parse_key(&engine.encode(key)).unwrap(), key);
        }
        // Upstream's fixed development key is 64 hex characters too.
        assert!(parse_key(&"0123456789abcdef".repeat(4)).is_ok());
        for bad in [
            "",
            "short",
            &hex[..63],
            &format!("{hex}00"),
            &"z".repeat(64),
        ] {
            let error = parse_key(bad).unwrap_err().to_string();
            assert!(bad.is_empty() || !error.contains(bad), "{error}");
        }
        // 31 bytes of base64 is not a key.
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 31]);
        assert!(parse_key(&short).is_err());
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let (first, source) = load(None, dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        assert_eq!(
            source,
            KeySource::File {
                path: path.clone(),
                created: true
            }
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        let (second, source) = load(None, dir.path()).unwrap();
        assert_eq!(
            source,
            KeySource::File {
                path,
                created: false
            }
        );
        // Same key: what one seals, the other opens.
        let sealed = first.seal(b"x", b"id");
        assert_eq!(second.open(&sealed, b"id").unwrap(), b"x");
    }

    #[test]
    fn configured_key_wins_and_bad_files_fail_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let (_, source) = load(Some(&"ab".repeat(32)), dir.path()).unwrap();
        assert_eq!(source, KeySource::Configured);
        assert!(!dir.path().join(KEY_FILE).exists());
        let error = load(Some("not-a-key"), dir.path()).unwrap_err();
        let text = format!("{error:#}");
        assert!(text.contains("64 hexadecimal"), "{text}");
        assert!(!text.contains("not-a-key"), "{text}");
        std::fs::write(dir.path().join(KEY_FILE), "garbage").unwrap();
        let text = format!("{:#}", load(None, dir.path()).unwrap_err());
        assert!(text.contains("does not hold a valid key"), "{text}");
        assert!(!text.contains("garbage"), "{text}");
    }
}
