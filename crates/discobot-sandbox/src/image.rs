//! The sandbox image: present, being built from the base image and our agent binary, or
//! failed. Built through the Docker API in the background when missing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures::StreamExt;
use tokio::sync::watch;

use crate::docker::DockerConfig;
use crate::error::{SandboxError, is_not_found};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ImageState {
    Ready,
    /// What the build is doing.
    Building(String),
    Failed(String),
}

pub(crate) struct ImageBuilder {
    docker: Docker,
    image: String,
    base_image: String,
    agent_binary: Option<PathBuf>,
    state: watch::Sender<ImageState>,
    started: Mutex<bool>,
}

impl ImageBuilder {
    pub(crate) fn new(docker: Docker, config: &DockerConfig) -> Arc<Self> {
        let (state, _) = watch::channel(ImageState::Building("checking the sandbox image".into()));
        Arc::new(ImageBuilder {
            docker,
            image: config.image.clone(),
            base_image: config.base_image.clone(),
            agent_binary: config.agent_binary.clone(),
            state,
            started: Mutex::new(false),
        })
    }

    pub(crate) fn state(&self) -> ImageState {
        self.state.borrow().clone()
    }

    /// Checks the image once and builds it in the background when missing.
    pub(crate) fn ensure_in_background(self: Arc<Self>) {
        let mut started = self
            .started
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *started {
            return;
        }
        *started = true;
        drop(started);
        tokio::spawn(async move {
            let outcome = self.ensure().await;
            let state = match outcome {
                Ok(()) => ImageState::Ready,
                Err(error) => {
                    tracing::error!(image = self.image, %error, "sandbox image unavailable");
                    ImageState::Failed(error.to_string())
                }
            };
            self.state.send_replace(state);
        });
    }

    /// Sends every change of the image state as an `Image` event until `sender` closes.
    pub(crate) async fn forward_progress(
        self: Arc<Self>,
        sender: tokio::sync::mpsc::Sender<discobot_core::ports::SandboxEvent>,
    ) {
        let mut receiver = self.state.subscribe();
        loop {
            let event = match receiver.borrow_and_update().clone() {
                ImageState::Ready => ("completed", None),
                ImageState::Building(message) => ("in_progress", Some(message)),
                ImageState::Failed(message) => ("failed", Some(message)),
            };
            let event = discobot_core::ports::SandboxEvent::Image {
                state: event.0.to_owned(),
                message: event.1,
            };
            if sender.send(event).await.is_err() || receiver.changed().await.is_err() {
                return;
            }
        }
    }

    /// Waits (up to ten minutes) for the image to be ready.
    pub(crate) async fn wait_ready(&self) -> Result<(), SandboxError> {
        let mut receiver = self.state.subscribe();
        let wait = receiver.wait_for(|state| !matches!(state, ImageState::Building(_)));
        match tokio::time::timeout(Duration::from_secs(600), wait).await {
            Ok(Ok(state)) => match &*state {
                ImageState::Ready => Ok(()),
                ImageState::Failed(message) => Err(SandboxError::ImageNotReady(message.clone())),
                ImageState::Building(_) => unreachable_building(),
            },
            Ok(Err(_)) => Err(SandboxError::Other("image builder stopped".into())),
            Err(_) => Err(SandboxError::ImageNotReady(format!(
                "the image {} is still being built",
                self.image
            ))),
        }
    }

    async fn exists(&self, image: &str) -> Result<bool, SandboxError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(error) if is_not_found(&error) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    async fn ensure(&self) -> Result<(), SandboxError> {
        if self.exists(&self.image).await? {
            return Ok(());
        }
        let base = self.find_base().await?;
        let agent = self.agent_binary.clone().filter(|path| path.is_file()).ok_or_else(|| {
            SandboxError::ImageNotReady(format!(
                "the sandbox image {} is missing and the discobot-agent binary to build it was not \
                 found (set --agent-binary)",
                self.image
            ))
        })?;
        self.state.send_replace(ImageState::Building(format!(
            "building {} from {base}",
            self.image
        )));
        tracing::info!(image = self.image, base, "building the sandbox image");
        let context = build_context(&base, &agent).await?;
        let options = BuildImageOptionsBuilder::new()
            .dockerfile("Dockerfile")
            .t(&self.image)
            .rm(true)
            .forcerm(true)
            .build();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(context.into())));
        while let Some(item) = stream.next().await {
            let info = item?;
            if let Some(error) = info.error_detail.and_then(|detail| detail.message) {
                return Err(SandboxError::Other(format!(
                    "building {} failed: {error}",
                    self.image
                )));
            }
            if let Some(line) = info
                .stream
                .as_deref()
                .map(str::trim)
                .filter(|line| !line.is_empty())
            {
                tracing::debug!(image = self.image, "{line}");
                self.state
                    .send_replace(ImageState::Building(line.to_owned()));
            }
        }
        if !self.exists(&self.image).await? {
            return Err(SandboxError::Other(format!(
                "building {} produced no image",
                self.image
            )));
        }
        tracing::info!(image = self.image, "sandbox image built");
        Ok(())
    }
}

impl ImageBuilder {
    /// The configured base if present or pullable, else the base `cargo xtask sandbox-image`
    /// makes without a registry.
    async fn find_base(&self) -> Result<String, SandboxError> {
        if self.exists(&self.base_image).await? {
            return Ok(self.base_image.clone());
        }
        self.state
            .send_replace(ImageState::Building(format!("pulling {}", self.base_image)));
        let options = bollard::query_parameters::CreateImageOptionsBuilder::new()
            .from_image(&self.base_image)
            .build();
        let mut pull = self.docker.create_image(Some(options), None, None);
        let mut pull_error = None;
        while let Some(item) = pull.next().await {
            if let Err(error) = item {
                pull_error = Some(error.to_string());
                break;
            }
        }
        if pull_error.is_none() && self.exists(&self.base_image).await? {
            return Ok(self.base_image.clone());
        }
        if self.exists(LOCAL_BASE_IMAGE).await? {
            return Ok(LOCAL_BASE_IMAGE.to_owned());
        }
        Err(SandboxError::ImageNotReady(format!(
            "the sandbox image {} is missing, and its base {} could not be pulled ({}); \
             run `cargo xtask sandbox-image` to build a base with debootstrap and the image",
            self.image,
            self.base_image,
            pull_error.unwrap_or_else(|| "no image after the pull".into())
        )))
    }
}

/// The base image `cargo xtask sandbox-image` makes with debootstrap + docker import.
pub const LOCAL_BASE_IMAGE: &str = "discobot-base:bookworm";

fn unreachable_building() -> Result<(), SandboxError> {
    Err(SandboxError::Other(
        "image state changed while waiting".into(),
    ))
}

/// The Dockerfile of the sandbox image on top of a base that has git, bash and ripgrep.
pub(crate) fn dockerfile(base: &str) -> String {
    format!(
        "FROM {base}\n\
         RUN (command -v git && command -v rg && command -v bash) >/dev/null 2>&1 || \
             (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
              git bash coreutils ca-certificates ripgrep procps && rm -rf /var/lib/apt/lists/*)\n\
         COPY discobot-agent /usr/local/bin/discobot-agent\n\
         RUN mkdir -p /.workspace /.data/workspace\n\
         LABEL io.discobot.sandbox-image=true\n\
         EXPOSE 3002\n\
         WORKDIR /.data/workspace\n\
         CMD [\"/usr/local/bin/discobot-agent\"]\n"
    )
}

/// A tar of the build context: the Dockerfile and the agent binary.
async fn build_context(base: &str, agent: &Path) -> Result<Vec<u8>, SandboxError> {
    let binary = tokio::fs::read(agent).await.map_err(|error| {
        SandboxError::Other(format!("cannot read {}: {error}", agent.display()))
    })?;
    let dockerfile = dockerfile(base);
    tokio::task::spawn_blocking(move || {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data, mode) in [
            ("Dockerfile", dockerfile.into_bytes(), 0o644),
            ("discobot-agent", binary, 0o755),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(mode);
            header.set_cksum();
            builder.append_data(&mut header, name, data.as_slice())?;
        }
        builder.into_inner()
    })
    .await
    .map_err(|error| SandboxError::Other(error.to_string()))?
    .map_err(|error| SandboxError::Other(format!("cannot build the image context: {error}")))
}
