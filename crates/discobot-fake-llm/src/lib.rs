//! A scripted fake of the Anthropic and OpenAI streaming APIs, for tests and benchmarks.
#![doc = include_str!("../README.md")]

mod anthropic;
mod docker;
mod frames;
mod openai;
mod script;
mod server;
mod summary;
mod turn;

pub use docker::docker_bridge_gateway;
pub use script::{BulkText, DEFAULT_CHUNK_CHARS, ErrorStep, Reply, Step, ToolCall};
pub use server::{Api, RecordedRequest};

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::server::Shared;

/// Everything that can go wrong starting, running or scripting the fake.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "refusing to listen on {0}: the fake LLM accepts any key, so it listens only on a specific address (loopback or the Docker bridge gateway)"
    )]
    UnspecifiedAddress(SocketAddr),
    #[error("could not listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("the fake LLM server failed: {0}")]
    Serve(io::Error),
    #[error("the fake LLM server task ended abnormally: {0}")]
    Task(String),
    #[error("invalid script: {0}")]
    Script(String),
}

/// A running fake LLM server. Dropping it stops serving; [`FakeLlm::shutdown`] also waits.
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl FakeLlm {
    /// Listens on `addr` (port 0 picks a free port) and serves on the current tokio runtime.
    pub async fn start(addr: SocketAddr) -> Result<Self, Error> {
        if addr.ip().is_unspecified() {
            return Err(Error::UnspecifiedAddress(addr));
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared::new(shutdown.clone()));
        let router = server::router(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        });
        Ok(Self {
            addr,
            shared,
            task: Some(task),
        })
    }

    /// The address it listens on (with the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL for Anthropic clients (`ANTHROPIC_BASE_URL`): `http://addr`.
    pub fn base_url_anthropic(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base URL for OpenAI clients (`OPENAI_BASE_URL`): `http://addr/v1`.
    pub fn base_url_openai(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues `reply` for a later model request (first in, first out, across both APIs).
    pub fn push(&self, reply: Reply) {
        self.shared.push([reply]);
    }

    /// Queues several replies in order.
    pub fn push_all(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.push(replies);
    }

    /// The replies not yet used.
    pub fn pending_replies(&self) -> Vec<Reply> {
        self.shared.pending()
    }

    /// Drops every queued reply.
    pub fn clear_replies(&self) {
        self.shared.clear_replies();
    }

    /// Every model request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// Stops accepting, ends open streams (hangs and pauses included) and waits for the server.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        self.shared.shutdown.cancel();
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        match task.await {
            Ok(result) => result.map_err(Error::Serve),
            Err(join_error) => Err(Error::Task(join_error.to_string())),
        }
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

/// Parses a script: a JSON array of replies, or one reply. A bare step (such as
/// `{"bulkText": {...}}`) stands for a reply of that one step.
pub fn parse_script(json: &[u8]) -> Result<Vec<Reply>, Error> {
    let script: serde_json::Value = serde_json::from_slice(json)
        .map_err(|error| Error::Script(format!("not JSON: {error}")))?;
    let items = match script {
        serde_json::Value::Array(items) => items,
        one => vec![one],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            parse_reply(item).map_err(|problem| Error::Script(format!("reply {index}: {problem}")))
        })
        .collect()
}

/// One reply of a script, with a message that names the step at fault.
fn parse_reply(item: serde_json::Value) -> Result<Reply, String> {
    if !item.is_object() {
        return Err(format!("expected an object, got {item}"));
    }
    if item.get("steps").is_none() {
        return Ok(Reply::new(vec![parse_step(item)?]));
    }
    if let Some(steps) = item["steps"].as_array() {
        for (index, step) in steps.iter().enumerate() {
            parse_step(step.clone()).map_err(|problem| format!("step {index}: {problem}"))?;
        }
    }
    let reply: Reply = serde_json::from_value(item).map_err(|error| error.to_string())?;
    if let Some(error) = reply.error_step()
        && !(400..=599).contains(&error.status)
    {
        return Err(format!(
            "error status {} is not an HTTP error status (400-599)",
            error.status
        ));
    }
    Ok(reply)
}

fn parse_step(step: serde_json::Value) -> Result<Step, String> {
    serde_json::from_value(step.clone()).map_err(|_| {
        format!(
            "{step} is not a step: expected one of {{\"text\"}}, {{\"thinking\", \"signature\"?}}, \
             {{\"toolCall\": {{\"name\", \"input\", \"id\"?}}}}, {{\"error\": {{\"status\", \"message\", \"type\"?, \"retryAfter\"?}}}}, \
             {{\"streamError\"}}, {{\"delayMs\"}}, {{\"hang\"}}, {{\"bulkText\": {{\"chunks\", \"chunkText\"}}}}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_arrays_single_replies_or_bare_steps() {
        let script =
            br#"[{"steps": [{"text": "a"}]}, {"bulkText": {"chunks": 2, "chunkText": "x"}}]"#;
        assert_eq!(
            parse_script(script).unwrap(),
            vec![Reply::text("a"), Reply::bulk_text(2, "x")]
        );
        assert_eq!(
            parse_script(br#"{"steps": [{"text": "a"}], "chunkChars": 2}"#).unwrap(),
            vec![Reply {
                chunk_chars: Some(2),
                ..Reply::text("a")
            }]
        );
    }

    #[test]
    fn script_errors_name_the_reply_and_step() {
        let problem = |json: &str| parse_script(json.as_bytes()).unwrap_err().to_string();
        assert!(problem("[1").contains("not JSON"));
        assert!(
            problem(r#"[{"steps": []}, {"steps": [{"text": "a"}, {"txt": "b"}]}]"#)
                .contains("reply 1: step 1: {\"txt\":\"b\"} is not a step")
        );
        assert!(problem(r#"[{"steps": [], "extra": 1}]"#).contains("unknown field `extra`"));
        assert!(
            problem(r#"{"steps": [{"error": {"status": 200, "message": "m"}}]}"#)
                .contains("reply 0: error status 200")
        );
        assert!(problem("[3]").contains("expected an object"));
    }
}
