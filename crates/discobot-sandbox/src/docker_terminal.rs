//! The Docker provider's terminal shells: a `docker exec` with a TTY in the container,
//! plugged into the shared persistent terminals of `terminal.rs`.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bollard::Docker;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use discobot_core::ids::SessionId;
use discobot_core::ports::{
    ExecStreamRequest, PtyRequest, TerminalAttachment, TerminalControl, TerminalOutput,
};
use futures::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::error::SandboxError;
use crate::terminal::{PtyControl, StartedPty, Terminals};

/// Starts the login shell the image has: bash when present, else sh.
const SHELL: &[&str] = &[
    "/bin/sh",
    "-c",
    "if [ -x /bin/bash ]; then exec /bin/bash -l; else exec /bin/sh -l; fi",
];

impl Terminals {
    /// Attaches to terminal `key`, starting it as a `docker exec` in `container` when needed.
    pub(crate) async fn attach(
        self: &Arc<Self>,
        docker: &Docker,
        container: &str,
        session: &SessionId,
        key: &str,
        request: PtyRequest,
    ) -> Result<TerminalAttachment, SandboxError> {
        self.attach_with(session, key, &request, start(docker, container, &request))
            .await
    }
}

struct DockerExec {
    exec_id: String,
    docker: Docker,
    input: tokio::sync::Mutex<Pin<Box<dyn AsyncWrite + Send>>>,
}

async fn start(
    docker: &Docker,
    container: &str,
    request: &PtyRequest,
) -> Result<StartedPty, SandboxError> {
    let mut env: Vec<String> = vec!["TERM=xterm-256color".into()];
    env.extend(
        request
            .env
            .iter()
            .map(|(name, value)| format!("{name}={value}")),
    );
    let request = ExecStreamRequest {
        command: SHELL.iter().map(|arg| arg.to_string()).collect(),
        tty: true,
        user: request.user.clone(),
        env: Vec::new(),
        // The agent's working copy (a clone of the read-only `/.workspace`), where the agent
        // and its tools work too.
        working_dir: Some("/.data/workspace".into()),
    };
    start_exec(docker, container, &request, env).await
}

/// A streaming `docker exec`: with a TTY, or with stdout and stderr merged.
pub(crate) async fn exec_stream(
    docker: &Docker,
    container: &str,
    request: ExecStreamRequest,
) -> Result<TerminalAttachment, SandboxError> {
    let env = request
        .env
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let started = start_exec(docker, container, &request, env).await?;
    Ok(TerminalAttachment {
        replay: Vec::new(),
        output: Box::new(StreamOutput(started.output)),
        control: Arc::new(StreamControl(started.control)),
    })
}

async fn start_exec(
    docker: &Docker,
    container: &str,
    request: &ExecStreamRequest,
    env: Vec<String>,
) -> Result<StartedPty, SandboxError> {
    let tty = request.tty;
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions::<String> {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(tty),
                env: Some(env),
                cmd: Some(request.command.clone()),
                user: request.user.clone(),
                working_dir: request.working_dir.clone(),
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
                tty,
                ..Default::default()
            }),
        )
        .await?;
    let StartExecResults::Attached { output, input } = started else {
        return Err(SandboxError::Other("terminal exec started detached".into()));
    };
    let output = output
        .take_while(|chunk| std::future::ready(chunk.is_ok()))
        .filter_map(|chunk| std::future::ready(chunk.ok().map(|c| c.into_bytes().to_vec())))
        .boxed();
    Ok(StartedPty {
        control: Box::new(DockerExec {
            exec_id: exec.id,
            docker: docker.clone(),
            input: tokio::sync::Mutex::new(input),
        }),
        output,
    })
}

#[async_trait]
impl PtyControl for DockerExec {
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

    async fn close_input(&self) -> discobot_core::Result<()> {
        let mut writer = self.input.lock().await;
        writer
            .shutdown()
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

struct StreamOutput(futures::stream::BoxStream<'static, Vec<u8>>);

#[async_trait]
impl TerminalOutput for StreamOutput {
    async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        self.0.next().await
    }
}

struct StreamControl(Box<dyn PtyControl>);

#[async_trait]
impl TerminalControl for StreamControl {
    async fn write(&self, input: &[u8]) -> discobot_core::Result<()> {
        self.0.write(input).await
    }

    async fn resize(&self, rows: u16, cols: u16) -> discobot_core::Result<()> {
        self.0.resize(rows, cols).await
    }

    async fn close_input(&self) -> discobot_core::Result<()> {
        self.0.close_input().await
    }
}
