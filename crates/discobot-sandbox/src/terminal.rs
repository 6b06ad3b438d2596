//! Persistent terminals, whatever runs the shell: one shell per key, kept alive across
//! WebSocket connections, its last 512 KiB of output replayed to each new one and live output
//! fanned out to every connection. Providers plug in how a shell starts (`PtyControl` plus
//! its output stream): a `docker exec` with a TTY (`docker_terminal.rs`), or a host PTY
//! (`local.rs`).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use discobot_core::ids::SessionId;
use discobot_core::ports::{PtyRequest, TerminalAttachment, TerminalControl, TerminalOutput};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::broadcast;

use crate::error::SandboxError;

/// How much recent output a reconnecting client gets.
pub const REPLAY_BYTES: usize = 512 * 1024;

/// How many chunks a connection may fall behind before it skips output.
const SUBSCRIBER_CHUNKS: usize = 512;

/// The input side of one running shell, as a provider implements it.
#[async_trait]
pub(crate) trait PtyControl: Send + Sync {
    async fn write(&self, input: &[u8]) -> discobot_core::Result<()>;
    async fn resize(&self, rows: u16, cols: u16) -> discobot_core::Result<()>;
    /// Closes the input (EOF); only streaming commands use it.
    async fn close_input(&self) -> discobot_core::Result<()> {
        Ok(())
    }
    /// Ends the shell (its session's sandbox stops or goes away). The default does nothing:
    /// a shell inside a container ends with the container.
    fn close(&self) {}
}

/// A shell a provider just started: its input side and its output, which ends when the
/// shell exits.
pub(crate) struct StartedPty {
    pub(crate) control: Box<dyn PtyControl>,
    pub(crate) output: BoxStream<'static, Vec<u8>>,
}

/// The live terminals of one provider, by key.
#[derive(Default)]
pub(crate) struct Terminals {
    by_key: Mutex<HashMap<String, Arc<Terminal>>>,
    /// Held while a key is looked up and its shell started, so two first connections to one
    /// key share a shell instead of starting two.
    starting: tokio::sync::Mutex<()>,
}

struct Terminal {
    session: SessionId,
    control: Box<dyn PtyControl>,
    /// Recent output, at most `REPLAY_BYTES`.
    replay: Mutex<VecDeque<u8>>,
    /// `None` once the shell exited or was closed: every connection's output then ends.
    output: Mutex<Option<broadcast::Sender<Arc<Vec<u8>>>>>,
}

/// Locks a std mutex; the data behind these stay consistent even if a holder panicked
/// (whole-value inserts, removes and appends only).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Terminals {
    /// Attaches to terminal `key` of `session`, starting its shell with `start` when there is
    /// none (or the previous one exited), then resizes it to the request.
    pub(crate) async fn attach_with(
        self: &Arc<Self>,
        session: &SessionId,
        key: &str,
        request: &PtyRequest,
        start: impl Future<Output = Result<StartedPty, SandboxError>>,
    ) -> Result<TerminalAttachment, SandboxError> {
        let (terminal, receiver) = {
            let _starting = self.starting.lock().await;
            let existing = lock(&self.by_key).get(key).cloned();
            // A terminal whose shell just exited has no sender any more: start a new one.
            match existing.and_then(|terminal| terminal.subscribe().map(|rx| (terminal, rx))) {
                Some(found) => found,
                None => self.spawn(session, key, start.await?),
            }
        };
        // Subscribed before taking the snapshot: a chunk may then arrive twice (in the replay
        // and live) but is never lost; duplicates of a terminal redraw are harmless.
        let replay = lock(&terminal.replay).iter().copied().collect();
        terminal
            .control
            .resize(request.rows, request.cols)
            .await
            .map_err(|error| SandboxError::Other(error.message))?;
        Ok(TerminalAttachment {
            replay,
            output: Box::new(Output { receiver }),
            control: terminal,
        })
    }

    /// Registers a started shell under `key` and pumps its output into the replay buffer
    /// and to the connections until it ends; returns it with a first subscription.
    fn spawn(
        self: &Arc<Self>,
        session: &SessionId,
        key: &str,
        pty: StartedPty,
    ) -> (Arc<Terminal>, broadcast::Receiver<Arc<Vec<u8>>>) {
        let StartedPty {
            control,
            mut output,
        } = pty;
        // Subscribed before the pump runs: a shell that prints and exits at once still
        // reaches this first connection.
        let (sender, receiver) = broadcast::channel(SUBSCRIBER_CHUNKS);
        let terminal = Arc::new(Terminal {
            session: session.clone(),
            control,
            replay: Mutex::new(VecDeque::new()),
            output: Mutex::new(Some(sender)),
        });
        lock(&self.by_key).insert(key.to_owned(), terminal.clone());
        let pump = terminal.clone();
        let terminals = Arc::downgrade(self);
        let key = key.to_owned();
        tokio::spawn(async move {
            while let Some(bytes) = output.next().await {
                pump.record(bytes);
            }
            // The shell exited: end every connection and forget the terminal, so the next
            // connection starts a new shell.
            pump.end();
            if let Some(terminals) = terminals.upgrade() {
                let mut by_key = lock(&terminals.by_key);
                if by_key
                    .get(&key)
                    .is_some_and(|current| Arc::ptr_eq(current, &pump))
                {
                    by_key.remove(&key);
                }
            }
        });
        (terminal, receiver)
    }

    /// Closes every terminal of a session: their shells end and their connections close.
    pub(crate) fn close_session(&self, session: &SessionId) {
        let closed: Vec<Arc<Terminal>> = {
            let mut by_key = lock(&self.by_key);
            let keys: Vec<String> = by_key
                .iter()
                .filter(|(_, terminal)| &terminal.session == session)
                .map(|(key, _)| key.clone())
                .collect();
            keys.iter().filter_map(|key| by_key.remove(key)).collect()
        };
        for terminal in closed {
            terminal.control.close();
            terminal.end();
        }
    }

    /// Closes every terminal (the provider shuts down).
    pub(crate) fn close_all(&self) {
        let closed: Vec<Arc<Terminal>> = lock(&self.by_key).drain().map(|(_, t)| t).collect();
        for terminal in closed {
            terminal.control.close();
            terminal.end();
        }
    }
}

impl Terminal {
    fn subscribe(&self) -> Option<broadcast::Receiver<Arc<Vec<u8>>>> {
        lock(&self.output)
            .as_ref()
            .map(broadcast::Sender::subscribe)
    }

    fn record(&self, bytes: Vec<u8>) {
        {
            let mut replay = lock(&self.replay);
            replay.extend(bytes.iter().copied());
            let excess = replay.len().saturating_sub(REPLAY_BYTES);
            replay.drain(..excess);
        }
        if let Some(sender) = lock(&self.output).as_ref() {
            // No connection is fine: output still goes to the replay buffer.
            let _ = sender.send(Arc::new(bytes));
        }
    }

    /// Drops the sender: connections get what was sent, then the end.
    fn end(&self) {
        lock(&self.output).take();
    }
}

#[async_trait]
impl TerminalControl for Terminal {
    async fn write(&self, input: &[u8]) -> discobot_core::Result<()> {
        self.control.write(input).await
    }

    async fn resize(&self, rows: u16, cols: u16) -> discobot_core::Result<()> {
        self.control.resize(rows, cols).await
    }
}

struct Output {
    receiver: broadcast::Receiver<Arc<Vec<u8>>>,
}

#[async_trait]
impl TerminalOutput for Output {
    async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        loop {
            match self.receiver.recv().await {
                Ok(chunk) => return Some(chunk.as_ref().clone()),
                // A slow connection skips what it missed, like a real terminal would.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Recorder {
        sizes: Arc<Mutex<Vec<(u16, u16)>>>,
        closed: Arc<Mutex<bool>>,
    }

    #[async_trait]
    impl PtyControl for Recorder {
        async fn write(&self, _input: &[u8]) -> discobot_core::Result<()> {
            Ok(())
        }
        async fn resize(&self, rows: u16, cols: u16) -> discobot_core::Result<()> {
            lock(&self.sizes).push((rows, cols));
            Ok(())
        }
        fn close(&self) {
            *lock(&self.closed) = true;
        }
    }

    fn request(rows: u16, cols: u16) -> PtyRequest {
        PtyRequest {
            rows,
            cols,
            user: None,
            env: Vec::new(),
        }
    }

    #[tokio::test]
    async fn replays_keeps_one_shell_per_key_and_ends_connections() {
        let terminals = Arc::new(Terminals::default());
        let session = SessionId::new("s1");
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(Mutex::new(false));
        let started = StartedPty {
            control: Box::new(Recorder {
                sizes: sizes.clone(),
                closed: closed.clone(),
            }),
            output: futures::stream::unfold(receiver, |mut receiver| async move {
                receiver.recv().await.map(|chunk| (chunk, receiver))
            })
            .boxed(),
        };
        let mut first = terminals
            .attach_with(&session, "k", &request(24, 80), async { Ok(started) })
            .await
            .unwrap();
        assert!(first.replay.is_empty());
        sender.send(b"hello ".to_vec()).unwrap();
        assert_eq!(first.output.next_chunk().await.unwrap(), b"hello ");

        // The second connection shares the shell and gets the replay; no new shell starts.
        let mut second = terminals
            .attach_with(&session, "k", &request(40, 120), async {
                Err(SandboxError::Other("must not start".into()))
            })
            .await
            .unwrap();
        assert_eq!(second.replay, b"hello ");
        assert_eq!(*lock(&sizes), vec![(24, 80), (40, 120)]);

        // The replay keeps only the last REPLAY_BYTES.
        sender.send(vec![b'x'; REPLAY_BYTES]).unwrap();
        assert_eq!(
            second.output.next_chunk().await.unwrap().len(),
            REPLAY_BYTES
        );
        let _ = first.output.next_chunk().await;
        let third = terminals
            .attach_with(&session, "k", &request(24, 80), async {
                Err(SandboxError::Other("must not start".into()))
            })
            .await
            .unwrap();
        assert_eq!(third.replay.len(), REPLAY_BYTES);
        assert!(third.replay.iter().all(|byte| *byte == b'x'));

        // Closing the session ends the shell and every connection.
        terminals.close_session(&session);
        assert!(*lock(&closed));
        assert_eq!(first.output.next_chunk().await, None);
        assert_eq!(second.output.next_chunk().await, None);
        assert!(lock(&terminals.by_key).is_empty());
    }

    #[tokio::test]
    async fn an_exited_shell_is_replaced() {
        let terminals = Arc::new(Terminals::default());
        let session = SessionId::new("s2");
        let quiet = || StartedPty {
            control: Box::new(Recorder {
                sizes: Arc::default(),
                closed: Arc::default(),
            }),
            output: futures::stream::iter([b"bye".to_vec()]).boxed(),
        };
        let mut attachment = terminals
            .attach_with(&session, "k", &request(24, 80), async { Ok(quiet()) })
            .await
            .unwrap();
        // Its output stream ended: the connection ends after what it printed.
        let mut seen = attachment.replay.clone();
        while let Some(chunk) = attachment.output.next_chunk().await {
            seen.extend(chunk);
        }
        assert_eq!(seen, b"bye");
        let started = Arc::new(Mutex::new(false));
        let flag = started.clone();
        terminals
            .attach_with(&session, "k", &request(24, 80), async move {
                *lock(&flag) = true;
                Ok(quiet())
            })
            .await
            .unwrap();
        assert!(*lock(&started), "a new shell starts");
    }
}
