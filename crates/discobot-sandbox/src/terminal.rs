//! Persistent terminals: one shell (a `docker exec` with a TTY) per key, kept alive across
//! WebSocket connections, with the last 512 KiB of output replayed to each new one.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bollard::Docker;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use discobot_core::ids::SessionId;
use discobot_core::ports::{PtyRequest, TerminalAttachment, TerminalControl, TerminalOutput};
use futures::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast;

use crate::error::SandboxError;

/// How much recent output a reconnecting client gets.
pub const REPLAY_BYTES: usize = 512 * 1024;

/// Starts the login shell the image has: bash when present, else sh.
const SHELL: &[&str] = &[
    "/bin/sh",
    "-c",
    "if [ -x /bin/bash ]; then exec /bin/bash -l; else exec /bin/sh -l; fi",
];

/// The live terminals of this server, by key.
#[derive(Default)]
pub(crate) struct Terminals {
    by_key: Mutex<HashMap<String, Arc<Terminal>>>,
}

struct Terminal {
    session: SessionId,
    exec_id: String,
    docker: Docker,
    input: tokio::sync::Mutex<Pin<Box<dyn AsyncWrite + Send>>>,
    /// Recent output, at most `REPLAY_BYTES`.
    replay: Mutex<VecDeque<u8>>,
    output: broadcast::Sender<Arc<Vec<u8>>>,
}

impl Terminals {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Terminal>>> {
        // Inserts and removes only: a panic elsewhere cannot leave the map half-updated.
        self.by_key
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) async fn attach(
        self: &Arc<Self>,
        docker: &Docker,
        container: &str,
        session: &SessionId,
        key: &str,
        request: PtyRequest,
    ) -> Result<TerminalAttachment, SandboxError> {
        let existing = self.lock().get(key).cloned();
        let terminal = match existing {
            Some(terminal) => terminal,
            None => {
                let terminal = self
                    .start(docker, container, session, key, &request)
                    .await?;
                self.lock().insert(key.to_owned(), terminal.clone());
                terminal
            }
        };
        // Subscribe before taking the snapshot: a chunk may then arrive twice (in the replay
        // and live) but never be lost; duplicates of a terminal redraw are harmless.
        let receiver = terminal.output.subscribe();
        let replay = {
            let replay = terminal
                .replay
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            replay.iter().copied().collect()
        };
        terminal
            .resize(request.rows, request.cols)
            .await
            .map_err(|error| SandboxError::Other(error.message))?;
        Ok(TerminalAttachment {
            replay,
            output: Box::new(Output { receiver }),
            control: terminal,
        })
    }

    async fn start(
        self: &Arc<Self>,
        docker: &Docker,
        container: &str,
        session: &SessionId,
        key: &str,
        request: &PtyRequest,
    ) -> Result<Arc<Terminal>, SandboxError> {
        let mut env: Vec<String> = vec!["TERM=xterm-256color".into()];
        env.extend(
            request
                .env
                .iter()
                .map(|(name, value)| format!("{name}={value}")),
        );
        let exec = docker
            .create_exec(
                container,
                CreateExecOptions::<String> {
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(true),
                    env: Some(env),
                    cmd: Some(SHELL.iter().map(|arg| arg.to_string()).collect()),
                    user: request.user.clone(),
                    working_dir: Some("/.workspace".into()),
                    ..Default::default()
                },
            )
            .await?;
        // bollard guesses stream framing per chunk; with a TTY the output is raw, and
        // `tty: true` here makes it treat every chunk as console bytes.
        let started = docker
            .start_exec(
                &exec.id,
                Some(StartExecOptions {
                    tty: true,
                    ..Default::default()
                }),
            )
            .await?;
        let StartExecResults::Attached { mut output, input } = started else {
            return Err(SandboxError::Other("terminal exec started detached".into()));
        };
        let (sender, _) = broadcast::channel(512);
        let terminal = Arc::new(Terminal {
            session: session.clone(),
            exec_id: exec.id,
            docker: docker.clone(),
            input: tokio::sync::Mutex::new(input),
            replay: Mutex::new(VecDeque::new()),
            output: sender,
        });
        let reader = terminal.clone();
        let terminals = Arc::downgrade(self);
        let key = key.to_owned();
        tokio::spawn(async move {
            while let Some(Ok(chunk)) = output.next().await {
                let bytes = chunk.into_bytes().to_vec();
                {
                    let mut replay = reader
                        .replay
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    replay.extend(bytes.iter().copied());
                    let excess = replay.len().saturating_sub(REPLAY_BYTES);
                    replay.drain(..excess);
                }
                // No receiver is fine: output still goes to the replay buffer.
                let _ = reader.output.send(Arc::new(bytes));
            }
            // The shell exited: forget it so the next connection starts a new one.
            if let Some(terminals) = terminals.upgrade() {
                let mut by_key = terminals.lock();
                if by_key
                    .get(&key)
                    .is_some_and(|current| Arc::ptr_eq(current, &reader))
                {
                    by_key.remove(&key);
                }
            }
        });
        Ok(terminal)
    }

    /// Closes every terminal of a session; their readers end when the exec does.
    pub(crate) fn close_session(&self, session: &SessionId) {
        self.lock()
            .retain(|_, terminal| &terminal.session != session);
    }
}

#[async_trait]
impl TerminalControl for Terminal {
    async fn write(&self, input: &[u8]) -> discobot_core::Result<()> {
        let mut writer = self.input.lock().await;
        writer.write_all(input).await.map_err(|error| {
            discobot_core::Error::unavailable(format!("terminal closed: {error}"))
        })?;
        writer
            .flush()
            .await
            .map_err(|error| discobot_core::Error::unavailable(error.to_string()))
    }

    async fn resize(&self, rows: u16, cols: u16) -> discobot_core::Result<()> {
        self.docker
            .resize_exec(
                &self.exec_id,
                ResizeExecOptions {
                    height: rows,
                    width: cols,
                },
            )
            .await
            .map_err(SandboxError::from)?;
        Ok(())
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
