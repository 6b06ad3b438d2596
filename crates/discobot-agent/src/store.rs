//! Threads on disk: one directory per thread, one JSON file per message, atomic writes, and
//! the active-turn marker that tells a restarted agent which turns it lost.
//!
//! Layout under `<data dir>/threads/<threadId>/`:
//! - `thread.json`: [`ThreadConfig`] (name, model, mode, active leaf, prompt queue, state);
//! - `messages/<messageId>.json`: [`StoredMessage`] `{id, parentId?, message}` (a tree);
//! - `active_turn.json`: [`ActiveTurn`], present exactly while a turn runs;
//! - `turns/<completionId>.jsonl`: the completion's chunks, one JSON line each, appended.
//!
//! Every file but the chunk logs is replaced atomically (write a temporary file, fsync, rename),
//! so a killed agent leaves either the old or the new version. A torn last line of a chunk log
//! is skipped when read.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use discobot_agent_api::{Mode, QueuedPrompt, Thread, ThreadState, UiMessage};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

const THREAD_FILE: &str = "thread.json";
const ACTIVE_TURN_FILE: &str = "active_turn.json";
const TMP_PREFIX: &str = ".tmp-";

/// What a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be opened at start; the reason says why.
    #[error("thread store unavailable: {0}")]
    Unavailable(String),
    #[error("thread not found")]
    NotFound,
    #[error("thread already exists")]
    Exists,
    #[error("invalid id {0:?}")]
    InvalidId(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// The agent's record of one thread (`thread.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadConfig {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ThreadState>,
    /// The last message of the active branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt_queue: Vec<QueuedPrompt>,
}

impl ThreadConfig {
    /// The thread as the API shows it.
    pub fn to_thread(&self) -> Thread {
        Thread {
            id: self.id.clone(),
            name: self.name.clone(),
            last_message: self.last_message.clone(),
            error_message: self.error_message.clone(),
            model: self.model.clone(),
            reasoning: self.reasoning.clone(),
            mode: self.mode,
            state: self.state,
            prompt_queue: self.prompt_queue.clone(),
        }
    }
}

/// One message file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMessage {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    pub message: UiMessage,
}

/// The marker of a running turn (`active_turn.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveTurn {
    pub completion_id: String,
    pub user_message_id: String,
    pub assistant_message_id: String,
    /// RFC 3339.
    pub started_at: String,
}

/// Thread and message ids become file names: 1–128 characters of `[A-Za-z0-9_.:-]`, not
/// starting with a dot.
pub fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// The threads directory. Read-modify-write of a thread's config is serialized by one lock.
#[derive(Debug)]
pub struct ThreadStore {
    root: PathBuf,
    config_lock: Mutex<()>,
    /// Set by [`Self::unavailable`]: every operation fails with this reason.
    unavailable: Option<String>,
}

impl ThreadStore {
    /// Opens (creating) `<data_dir>/threads`, removes temporary files a killed agent left, and
    /// marks every thread with an active-turn marker `interrupted` (its leaf moves to the
    /// turn's user message, which was written before the marker), unless the turn's assistant
    /// message exists: then the turn had ended and only the marker's removal was lost.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let root = data_dir.join("threads");
        fs::create_dir_all(&root).map_err(io_at(&root))?;
        let store = Self {
            root,
            config_lock: Mutex::new(()),
            unavailable: None,
        };
        for id in store.ids()? {
            store.remove_temporaries(&store.dir(&id))?;
            store.remove_temporaries(&store.dir(&id).join("messages"))?;
            if let Some(turn) = store.active_turn(&id)? {
                if store.message_path(&id, &turn.assistant_message_id).exists() {
                    // Killed after the turn's end was written but before the marker went.
                    store.clear_active_turn(&id)?;
                    continue;
                }
                tracing::warn!(thread = %id, completion = %turn.completion_id, "turn interrupted by a restart");
                let has_user_message = store.message_path(&id, &turn.user_message_id).exists();
                store.update(&id, |config| {
                    config.state = Some(ThreadState::Interrupted);
                    if has_user_message {
                        config.leaf_id = Some(turn.user_message_id.clone());
                    }
                })?;
            }
        }
        Ok(store)
    }

    /// A store whose every operation fails with `StoreError::Unavailable(reason)`: the agent
    /// keeps serving its other routes when its data directory is unusable.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self {
            root: PathBuf::new(),
            config_lock: Mutex::new(()),
            unavailable: Some(reason.into()),
        }
    }

    fn available(&self) -> Result<(), StoreError> {
        match &self.unavailable {
            Some(reason) => Err(StoreError::Unavailable(reason.clone())),
            None => Ok(()),
        }
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn message_path(&self, id: &str, message_id: &str) -> PathBuf {
        self.dir(id)
            .join("messages")
            .join(format!("{message_id}.json"))
    }

    fn check(&self, id: &str) -> Result<PathBuf, StoreError> {
        self.available()?;
        if !valid_id(id) {
            return Err(StoreError::InvalidId(id.to_owned()));
        }
        let dir = self.dir(id);
        if dir.join(THREAD_FILE).is_file() {
            Ok(dir)
        } else {
            Err(StoreError::NotFound)
        }
    }

    fn ids(&self) -> Result<Vec<String>, StoreError> {
        self.available()?;
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(io_at(&self.root))? {
            let entry = entry.map_err(io_at(&self.root))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if valid_id(&name) && entry.path().join(THREAD_FILE).is_file() {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn remove_temporaries(&self, dir: &Path) -> Result<(), StoreError> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                fs::remove_file(entry.path()).map_err(io_at(&entry.path()))?;
            }
        }
        Ok(())
    }

    /// Every thread, sorted by id.
    pub fn list(&self) -> Result<Vec<ThreadConfig>, StoreError> {
        self.ids()?.iter().map(|id| self.get(id)).collect()
    }

    /// The thread's directory (tools keep their per-thread files there: outputs, plans,
    /// questions, todos).
    pub fn thread_dir(&self, id: &str) -> Result<PathBuf, StoreError> {
        self.check(id)
    }

    /// Whether the thread exists (false for invalid ids).
    pub fn exists(&self, id: &str) -> bool {
        self.check(id).is_ok()
    }

    /// Creates a thread; `Exists` if it does.
    pub fn create(&self, id: &str, name: Option<&str>) -> Result<ThreadConfig, StoreError> {
        self.available()?;
        if !valid_id(id) {
            return Err(StoreError::InvalidId(id.to_owned()));
        }
        let _guard = self.lock();
        let dir = self.dir(id);
        if dir.join(THREAD_FILE).is_file() {
            return Err(StoreError::Exists);
        }
        let messages = dir.join("messages");
        fs::create_dir_all(&messages).map_err(io_at(&messages))?;
        let config = ThreadConfig {
            id: id.to_owned(),
            name: name.unwrap_or_default().to_owned(),
            ..ThreadConfig::default()
        };
        write_json(&dir.join(THREAD_FILE), &config)?;
        Ok(config)
    }

    /// The thread's config.
    pub fn get(&self, id: &str) -> Result<ThreadConfig, StoreError> {
        let dir = self.check(id)?;
        read_json(&dir.join(THREAD_FILE))
    }

    /// Applies `change` to the thread's config and writes it back atomically.
    pub fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut ThreadConfig),
    ) -> Result<ThreadConfig, StoreError> {
        let _guard = self.lock();
        let dir = self.check(id)?;
        let path = dir.join(THREAD_FILE);
        let mut config: ThreadConfig = read_json(&path)?;
        change(&mut config);
        write_json(&path, &config)?;
        Ok(config)
    }

    /// Removes the thread and everything under it.
    pub fn delete(&self, id: &str) -> Result<(), StoreError> {
        let _guard = self.lock();
        let dir = self.check(id)?;
        // Rename first: a kill during the recursive delete leaves no half thread behind.
        let doomed = self
            .root
            .join(format!("{TMP_PREFIX}{id}-{}", uuid::Uuid::new_v4()));
        fs::rename(&dir, &doomed).map_err(io_at(&dir))?;
        fs::remove_dir_all(&doomed).map_err(io_at(&doomed))
    }

    /// Writes (or replaces) one message.
    pub fn put_message(&self, id: &str, message: &StoredMessage) -> Result<(), StoreError> {
        self.check(id)?;
        if !valid_id(&message.id) {
            return Err(StoreError::InvalidId(message.id.clone()));
        }
        write_json(&self.message_path(id, &message.id), message)
    }

    /// One message, `None` if missing.
    pub fn message(&self, id: &str, message_id: &str) -> Result<Option<StoredMessage>, StoreError> {
        self.check(id)?;
        if !valid_id(message_id) {
            return Ok(None);
        }
        let path = self.message_path(id, message_id);
        if !path.is_file() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }

    /// The messages from the root to `leaf` (walking `parentId`), oldest first.
    pub fn history(&self, id: &str, leaf: Option<&str>) -> Result<Vec<UiMessage>, StoreError> {
        let mut messages = Vec::new();
        let mut seen = HashSet::new();
        let mut next = leaf.map(str::to_owned);
        while let Some(message_id) = next {
            if !seen.insert(message_id.clone()) {
                tracing::warn!(thread = id, message = %message_id, "cycle in the message tree");
                break;
            }
            let Some(stored) = self.message(id, &message_id)? else {
                break;
            };
            next = stored.parent_id;
            messages.push(stored.message);
        }
        messages.reverse();
        Ok(messages)
    }

    /// The running turn's marker, if any.
    pub fn active_turn(&self, id: &str) -> Result<Option<ActiveTurn>, StoreError> {
        let path = self.check(id)?.join(ACTIVE_TURN_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }

    /// Records that `turn` runs.
    pub fn set_active_turn(&self, id: &str, turn: &ActiveTurn) -> Result<(), StoreError> {
        let dir = self.check(id)?;
        write_json(&dir.join(ACTIVE_TURN_FILE), turn)
    }

    /// Records that no turn runs.
    pub fn clear_active_turn(&self, id: &str) -> Result<(), StoreError> {
        let path = self.check(id)?.join(ACTIVE_TURN_FILE);
        match fs::remove_file(&path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(io_at(&path)(err)),
            _ => Ok(()),
        }
    }

    /// Appends one chunk (a JSON line) to the completion's log.
    pub fn append_chunk(
        &self,
        id: &str,
        completion_id: &str,
        json: &str,
    ) -> Result<(), StoreError> {
        let turns = self.check(id)?.join("turns");
        fs::create_dir_all(&turns).map_err(io_at(&turns))?;
        let path = turns.join(format!("{completion_id}.jsonl"));
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_at(&path))?;
        file.write_all(format!("{json}\n").as_bytes())
            .map_err(io_at(&path))
    }

    /// The chunks logged for a completion; a torn last line is skipped.
    pub fn chunks(&self, id: &str, completion_id: &str) -> Result<Vec<String>, StoreError> {
        let path = self
            .check(id)?
            .join("turns")
            .join(format!("{completion_id}.jsonl"));
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(io_at(&path)(err)),
        };
        Ok(text
            .split_inclusive('\n')
            .filter_map(|line| line.strip_suffix('\n'))
            .filter(|line| serde_json::from_str::<serde_json::Value>(line).is_ok())
            .map(str::to_owned)
            .collect())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.config_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, StoreError> {
    let bytes = fs::read(path).map_err(io_at(path))?;
    serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
        path: path.to_owned(),
        source,
    })
}

/// Writes `value` to a temporary file next to `path`, fsyncs it, and renames it over `path`.
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    let json = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Corrupt {
        path: path.to_owned(),
        source,
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!("{TMP_PREFIX}{}", uuid::Uuid::new_v4()));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_at(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use discobot_agent_api::Role;

    fn message(id: &str, parent: Option<&str>) -> StoredMessage {
        StoredMessage {
            id: id.into(),
            parent_id: parent.map(Into::into),
            message: UiMessage::text(id, Role::User, id),
        }
    }

    #[test]
    fn ids_are_file_name_safe() {
        for good in ["t1", "sess_01J-abc", "a.b", "x:y"] {
            assert!(valid_id(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a\\b",
            "a\0b",
            "é",
            &"x".repeat(129),
        ] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn history_walks_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let store = ThreadStore::open(dir.path()).unwrap();
        store.create("t", None).unwrap();
        store.put_message("t", &message("a", None)).unwrap();
        store.put_message("t", &message("b", Some("a"))).unwrap();
        store.put_message("t", &message("c", Some("b"))).unwrap();
        store.put_message("t", &message("c2", Some("b"))).unwrap();
        let ids = |leaf| -> Vec<String> {
            store
                .history("t", leaf)
                .unwrap()
                .into_iter()
                .map(|m| m.id)
                .collect()
        };
        assert_eq!(ids(Some("c")), ["a", "b", "c"]);
        assert_eq!(ids(Some("c2")), ["a", "b", "c2"]);
        assert!(ids(None).is_empty());
        // A cycle stops the walk instead of looping.
        store.put_message("t", &message("a", Some("c"))).unwrap();
        assert_eq!(ids(Some("c")), ["a", "b", "c"]);
    }

    #[test]
    fn temporaries_are_removed_and_torn_chunk_lines_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = ThreadStore::open(dir.path()).unwrap();
        store.create("t", Some("n")).unwrap();
        let thread_dir = dir.path().join("threads/t");
        fs::write(thread_dir.join(".tmp-123"), "{half").unwrap();
        store
            .append_chunk("t", "c1", r#"{"type":"start"}"#)
            .unwrap();
        let log = thread_dir.join("turns/c1.jsonl");
        let mut file = fs::OpenOptions::new().append(true).open(&log).unwrap();
        file.write_all(br#"{"type":"text-de"#).unwrap();
        let store = ThreadStore::open(dir.path()).unwrap();
        assert!(!thread_dir.join(".tmp-123").exists());
        assert_eq!(store.chunks("t", "c1").unwrap(), [r#"{"type":"start"}"#]);
        assert_eq!(store.get("t").unwrap().name, "n");
        assert!(matches!(store.create("t", None), Err(StoreError::Exists)));
        store.delete("t").unwrap();
        assert!(matches!(store.get("t"), Err(StoreError::NotFound)));
        assert!(
            fs::read_dir(dir.path().join("threads"))
                .unwrap()
                .next()
                .is_none()
        );
    }

    #[test]
    fn an_unavailable_store_fails_every_operation() {
        let store = ThreadStore::unavailable("read-only");
        assert!(matches!(store.list(), Err(StoreError::Unavailable(_))));
        assert!(matches!(
            store.create("t", None),
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(store.get("t"), Err(StoreError::Unavailable(_))));
        assert!(!store.exists("t"));
    }

    #[test]
    fn a_marker_outliving_its_finished_turn_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = ThreadStore::open(dir.path()).unwrap();
        store.create("t", None).unwrap();
        store.put_message("t", &message("u", None)).unwrap();
        store
            .put_message("t", &message("c-assistant", Some("u")))
            .unwrap();
        store
            .update("t", |config| config.leaf_id = Some("c-assistant".into()))
            .unwrap();
        let turn = ActiveTurn {
            completion_id: "c".into(),
            user_message_id: "u".into(),
            assistant_message_id: "c-assistant".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
        };
        store.set_active_turn("t", &turn).unwrap();
        let store = ThreadStore::open(dir.path()).unwrap();
        let config = store.get("t").unwrap();
        assert_eq!(config.state, None);
        assert_eq!(config.leaf_id.as_deref(), Some("c-assistant"));
        assert_eq!(store.active_turn("t").unwrap(), None);
    }
}
