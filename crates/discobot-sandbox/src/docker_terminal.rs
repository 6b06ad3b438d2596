//! The Docker provider's terminal shells: a `docker exec` with a TTY in the container,
//! plugged into the shared persistent terminals of `terminal.rs`.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bollard::Docker;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use discobot_core::ids::SessionId;
use discobot_core::ports::{PtyRequest, TerminalAttachment};
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
