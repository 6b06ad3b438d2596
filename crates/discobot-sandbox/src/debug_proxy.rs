//! The debug Docker proxy (upstream's `DebugDockerServer`): the Docker Engine API of the local
//! daemon on a loopback port, restricted to one project's sandboxes, so that
//! `DOCKER_HOST=tcp://127.0.0.1:2375 docker ps` (or `docker exec -it …`) reaches them and
//! nothing else.
//!
//! Each connection carries one request. Its head is read and authorised by method and path:
//! `/_ping`, `/version` and `/info`; `GET /containers/json` with a label filter for the project
//! forced into `filters`; and any `/containers/{id}…` or `/exec/{id}…` request whose container
//! (resolved by inspecting it) carries `discobot.project.id=<project>`, with the id replaced by
//! the container's full id so the request cannot reach another container later.
//! Everything else gets a JSON 403. An allowed request is written to the daemon's unix socket
//! with `Connection: close` (keeping an `Upgrade` header) and the two streams are spliced: the
//! daemon answers that one request and closes, unless it hijacks the connection (`docker exec`,
//! `docker attach`), in which case the splice carries the raw stream until the daemon ends it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::InspectContainerOptions;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::error::{SandboxError, is_not_found};

/// The label that names a sandbox's project.
const LABEL_PROJECT: &str = "discobot.project.id";
/// The largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The largest exec-create body read for its check.
const MAX_EXEC_BODY: usize = 1024 * 1024;
/// How long a client gets to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of the debug Docker proxy.
#[derive(Clone, Debug)]
pub struct DebugDockerConfig {
    /// The port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// The project whose sandboxes are reachable.
    pub project: String,
    /// The daemon's unix socket [default: `DOCKER_HOST` when it is `unix://…`, else
    /// `/var/run/docker.sock`].
    pub socket: Option<PathBuf>,
}

/// A running debug Docker proxy; stopped by [`DebugDockerServer::stop`] or when dropped.
pub struct DebugDockerServer {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl DebugDockerServer {
    /// Binds `127.0.0.1:<port>` and serves in the background.
    pub async fn start(config: DebugDockerConfig) -> Result<DebugDockerServer, SandboxError> {
        let socket = match config.socket {
            Some(socket) => socket,
            None => default_socket()?,
        };
        let socket_str = socket.to_str().ok_or_else(|| {
            SandboxError::Other(format!("socket path {} is not UTF-8", socket.display()))
        })?;
        let docker = Docker::connect_with_unix(socket_str, 30, bollard::API_DEFAULT_VERSION)
            .map_err(|error| SandboxError::Unavailable(error.to_string()))?;
        let listener = TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(|error| {
                SandboxError::Other(format!(
                    "the debug Docker proxy cannot listen on 127.0.0.1:{}: {error}",
                    config.port
                ))
            })?;
        let address = listener.local_addr()?;
        let proxy = Arc::new(Proxy {
            docker,
            socket,
            project: config.project,
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, proxy, stopped));
        Ok(DebugDockerServer {
            address,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Stops listening and ends every open connection (including `docker exec` sessions).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for DebugDockerServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The daemon's socket: `DOCKER_HOST=unix://…`, else the default path.
fn default_socket() -> Result<PathBuf, SandboxError> {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => match host.strip_prefix("unix://") {
            Some(path) => Ok(PathBuf::from(path)),
            None => Err(SandboxError::Unavailable(format!(
                "the debug Docker proxy needs the daemon's unix socket, and DOCKER_HOST is {host}"
            ))),
        },
        _ => Ok(PathBuf::from("/var/run/docker.sock")),
    }
}

async fn accept_loop(listener: TcpListener, proxy: Arc<Proxy>, mut stopped: oneshot::Receiver<()>) {
    // Dropping the set at the end aborts the connections still open.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let proxy = proxy.clone();
                    connections.spawn(async move { proxy.serve(stream).await });
                }
                Err(error) => {
                    tracing::warn!(%error, "debug Docker proxy: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// An answer given instead of proxying.
#[derive(Debug, PartialEq)]
struct Refusal {
    status: u16,
    message: String,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }

    /// Docker's error shape, so the CLI prints "Error response from daemon: <message>".
    fn response(&self) -> Vec<u8> {
        let reason = match self.status {
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            408 => "Request Timeout",
            413 => "Payload Too Large",
            431 => "Request Header Fields Too Large",
            _ => "Bad Gateway",
        };
        let body = json!({ "message": self.message }).to_string();
        format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            self.status,
            body.len()
        )
        .into_bytes()
    }
}

/// A parsed request head.
#[derive(Debug, PartialEq)]
struct Head {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The head sent to the daemon: `target` instead of the client's, and `Connection: close`
    /// (with `Upgrade` kept for hijacking endpoints that check the `Connection` header too), so
    /// the daemon serves this one request and nothing the client sends after it.
    fn forwarded(&self, target: &str) -> Vec<u8> {
        let upgrade = self.header("upgrade").is_some()
            && self.header("connection").is_some_and(|connection| {
                connection
                    .split(',')
                    .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
            });
        let mut head = format!("{} {target} {}\r\n", self.method, self.version);
        for (name, value) in &self.headers {
            if ["connection", "keep-alive", "proxy-connection"]
                .iter()
                .any(|hop| name.eq_ignore_ascii_case(hop))
            {
                continue;
            }
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(if upgrade {
            "Connection: Upgrade, close\r\n\r\n"
        } else {
            "Connection: close\r\n\r\n"
        });
        head.into_bytes()
    }
}

/// What an allowed request becomes.
#[derive(Debug, PartialEq)]
struct Allowed {
    /// The target sent to the daemon.
    target: String,
    /// An exec create, whose body is checked before it is sent.
    exec_create: bool,
}

struct Proxy {
    docker: Docker,
    socket: PathBuf,
    project: String,
}

impl Proxy {
    async fn serve(&self, mut client: TcpStream) {
        let _ = client.set_nodelay(true);
        if let Err(refusal) = self.proxy(&mut client).await {
            let _ = client.write_all(&refusal.response()).await;
            let _ = client.shutdown().await;
        }
    }

    async fn proxy(&self, client: &mut TcpStream) -> Result<(), Refusal> {
        let (raw_head, mut body) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(client)).await
        {
            Ok(Ok(Some(read))) => read,
            // The client closed without a request.
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(refusal)) => return Err(refusal),
            Err(_) => return Err(Refusal::new(408, "no request head in time")),
        };
        let head = parse_head(&raw_head)?;
        let allowed = match self.authorize(&head.method, &head.target).await {
            Ok(allowed) => allowed,
            Err(refusal) => {
                tracing::info!(
                    method = head.method,
                    target = head.target,
                    status = refusal.status,
                    reason = refusal.message,
                    "debug Docker proxy refused a request"
                );
                return Err(refusal);
            }
        };
        if allowed.exec_create {
            body = read_body(client, &head, body).await?;
            check_exec_create(&body)?;
        }
        tracing::debug!(
            method = head.method,
            target = allowed.target,
            "debug Docker proxy"
        );
        let mut daemon = UnixStream::connect(&self.socket).await.map_err(|error| {
            Refusal::new(502, format!("the Docker daemon does not answer: {error}"))
        })?;
        let mut first = head.forwarded(&allowed.target);
        first.extend_from_slice(&body);
        daemon
            .write_all(&first)
            .await
            .map_err(|error| Refusal::new(502, format!("the Docker daemon failed: {error}")))?;
        splice(client, &mut daemon).await;
        Ok(())
    }

    /// Decides on `method` and `target`; an allowed request may get a rewritten target.
    async fn authorize(&self, method: &str, target: &str) -> Result<Allowed, Refusal> {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        let refused = || {
            Refusal::new(
                403,
                format!(
                    "the debug Docker proxy serves only project {}'s sandboxes: {method} {path} \
                     is not allowed",
                    self.project
                ),
            )
        };
        let (version, segments) = split_path(path).ok_or_else(refused)?;
        let rebuild = |segments: &[&str], query: Option<&str>| {
            let mut target = version.to_owned();
            for segment in segments {
                target.push('/');
                target.push_str(segment);
            }
            if let Some(query) = query {
                target.push('?');
                target.push_str(query);
            }
            target
        };
        let plain = |exec_create| Allowed {
            target: target.to_owned(),
            exec_create,
        };
        match (method, segments.as_slice()) {
            ("GET" | "HEAD", ["_ping"]) | ("GET", ["version"] | ["info"]) => Ok(plain(false)),
            ("GET", ["containers", "json"]) => {
                let query = with_label_filter(query.unwrap_or(""), &self.project_label())?;
                Ok(Allowed {
                    target: rebuild(&segments, Some(&query)),
                    exec_create: false,
                })
            }
            (_, ["containers", id, rest @ ..]) if !matches!(*id, "json" | "create" | "prune") => {
                let full_id = self.project_container(id).await?;
                let mut rewritten = vec!["containers", full_id.as_str()];
                rewritten.extend_from_slice(rest);
                Ok(Allowed {
                    target: rebuild(&rewritten, query),
                    exec_create: method == "POST" && rest == ["exec"],
                })
            }
            (_, ["exec", id, _, ..]) => {
                let exec = self.docker.inspect_exec(id).await.map_err(|error| {
                    if is_not_found(&error) {
                        Refusal::new(404, format!("No such exec instance: {id}"))
                    } else {
                        Refusal::new(502, format!("the Docker daemon failed: {error}"))
                    }
                })?;
                let container = exec.container_id.unwrap_or_default();
                self.project_container(&container).await?;
                Ok(plain(false))
            }
            _ => Err(refused()),
        }
    }

    fn project_label(&self) -> String {
        format!("{LABEL_PROJECT}={}", self.project)
    }

    /// The full id of container `id` (an id, id prefix or name) if it is one of the project's
    /// sandboxes.
    async fn project_container(&self, id: &str) -> Result<String, Refusal> {
        let container = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|error| {
                if is_not_found(&error) {
                    Refusal::new(404, format!("No such container: {id}"))
                } else {
                    Refusal::new(502, format!("the Docker daemon failed: {error}"))
                }
            })?;
        let project = container
            .config
            .as_ref()
            .and_then(|config| config.labels.as_ref())
            .and_then(|labels| labels.get(LABEL_PROJECT));
        match (project, container.id) {
            (Some(project), Some(full_id)) if *project == self.project => Ok(full_id),
            _ => Err(Refusal::new(
                403,
                format!(
                    "container {id} is not a sandbox of project {}; the debug Docker proxy \
                     serves only those",
                    self.project
                ),
            )),
        }
    }
}

/// Reads up to the end of the request head; returns the head (without the blank line) and
/// the bytes read after it, or `None` when the client closed before sending anything.
async fn read_head(client: &mut TcpStream) -> Result<Option<(Vec<u8>, Vec<u8>)>, Refusal> {
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = client
            .read(&mut chunk)
            .await
            .map_err(|error| Refusal::new(400, format!("reading the request failed: {error}")))?;
        if n == 0 {
            if buffer.is_empty() {
                return Ok(None);
            }
            return Err(Refusal::new(400, "the request head is incomplete"));
        }
        let searched_from = buffer.len().saturating_sub(3);
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer[searched_from..]
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
        {
            let end = searched_from + end;
            let rest = buffer.split_off(end + 4);
            buffer.truncate(end);
            return Ok(Some((buffer, rest)));
        }
        if buffer.len() > MAX_HEAD {
            return Err(Refusal::new(431, "the request head is too large"));
        }
    }
}

/// Parses a request head (request line and headers, CRLF-separated).
fn parse_head(raw: &[u8]) -> Result<Head, Refusal> {
    let bad = |what: &str| Refusal::new(400, format!("malformed request: {what}"));
    let text = std::str::from_utf8(raw).map_err(|_| bad("the head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("the request line"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad("the method"));
    }
    if !target.starts_with('/') || target.bytes().any(|b| b.is_ascii_control() || b == b'#') {
        return Err(bad("the target"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(bad("the HTTP version"));
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad("a header line"));
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            || value.bytes().any(|b| b.is_ascii_control() && b != b'\t')
        {
            return Err(bad("a header line"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(Head {
        method: method.to_owned(),
        target: target.to_owned(),
        version: version.to_owned(),
        headers,
    })
}

/// Reads the whole `Content-Length` body (`already` holds its start); chunked bodies are
/// refused where a body must be checked.
async fn read_body(
    client: &mut TcpStream,
    head: &Head,
    mut already: Vec<u8>,
) -> Result<Vec<u8>, Refusal> {
    if head.header("transfer-encoding").is_some() {
        return Err(Refusal::new(
            400,
            "send this request with a Content-Length, not chunked",
        ));
    }
    let length: usize = match head.header("content-length") {
        Some(value) => value
            .parse()
            .map_err(|_| Refusal::new(400, "malformed request: Content-Length"))?,
        None => 0,
    };
    if length > MAX_EXEC_BODY {
        return Err(Refusal::new(413, "the request body is too large"));
    }
    if already.len() > length {
        return Err(Refusal::new(400, "more data than the Content-Length"));
    }
    let start = already.len();
    already.resize(length, 0);
    client
        .read_exact(&mut already[start..])
        .await
        .map_err(|error| Refusal::new(400, format!("reading the request body failed: {error}")))?;
    Ok(already)
}

/// A privileged exec would get capabilities the sandbox itself does not have.
fn check_exec_create(body: &[u8]) -> Result<(), Refusal> {
    let config: Value = serde_json::from_slice(body)
        .map_err(|_| Refusal::new(400, "malformed request: the exec configuration"))?;
    if config.get("Privileged").and_then(Value::as_bool) == Some(true) {
        return Err(Refusal::new(
            403,
            "privileged exec is not allowed through the debug Docker proxy",
        ));
    }
    Ok(())
}

/// Copies both ways until the daemon has sent everything (it closes after one answer, or at
/// the end of a hijacked stream); the client's half-close is passed on.
async fn splice(client: &mut TcpStream, daemon: &mut UnixStream) {
    let (mut client_read, mut client_write) = client.split();
    let (mut daemon_read, mut daemon_write) = daemon.split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut daemon_write).await;
        let _ = daemon_write.shutdown().await;
        std::future::pending::<()>().await
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut daemon_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}

/// The API version prefix (`/v1.41`, or empty) and the path's segments; `None` for a path
/// with anything but plain segments (no empty, `.` or `..` segments, no escapes).
fn split_path(path: &str) -> Option<(&str, Vec<&str>)> {
    let mut segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let plain = |segment: &&str| {
        !segment.is_empty()
            && *segment != "."
            && *segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    };
    if !segments.iter().all(plain) {
        return None;
    }
    let versioned = segments.first().is_some_and(|first| {
        first.strip_prefix('v').is_some_and(|number| {
            !number.is_empty()
                && number
                    .split('.')
                    .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        })
    });
    let version = if versioned {
        let first = segments.remove(0);
        &path[..first.len() + 1]
    } else {
        ""
    };
    Some((version, segments))
}

/// `query` with `label` added to its `filters` (JSON, possibly given as several parameters),
/// in either of Docker's forms: `{"label": ["k=v"]}` or `{"label": {"k=v": true}}`.
fn with_label_filter(query: &str, label: &str) -> Result<String, Refusal> {
    let bad = || Refusal::new(400, "malformed request: the filters parameter");
    let mut kept = Vec::new();
    let mut filters = serde_json::Map::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(key).ok_or_else(bad)? != "filters" {
            kept.push(pair.to_owned());
            continue;
        }
        let value = percent_decode(value).ok_or_else(bad)?;
        if value.is_empty() {
            continue;
        }
        let Value::Object(given) = serde_json::from_str(&value).map_err(|_| bad())? else {
            return Err(bad());
        };
        for (key, value) in given {
            match (filters.get_mut(&key), value) {
                (Some(Value::Array(values)), Value::Array(more)) => values.extend(more),
                (Some(Value::Object(values)), Value::Object(more)) => values.extend(more),
                (Some(_), _) => return Err(bad()),
                (None, value) => {
                    filters.insert(key, value);
                }
            }
        }
    }
    match filters.get_mut("label") {
        Some(Value::Array(labels)) => labels.push(json!(label)),
        Some(Value::Object(labels)) => {
            labels.insert(label.to_owned(), json!(true));
        }
        Some(_) => return Err(bad()),
        None => {
            filters.insert("label".into(), json!([label]));
        }
    }
    kept.push(format!(
        "filters={}",
        percent_encode(&Value::Object(filters).to_string())
    ));
    Ok(kept.join("&"))
}

/// Form decoding: `+` is a space, `%XX` a byte; the result must be UTF-8.
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Everything but unreserved characters as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_versioned_and_plain_paths() {
        assert_eq!(
            split_path("/v1.41/containers/json"),
            Some(("/v1.41", vec!["containers", "json"]))
        );
        assert_eq!(split_path("/_ping"), Some(("", vec!["_ping"])));
        assert_eq!(
            split_path("/v1/exec/abc/start"),
            Some(("/v1", vec!["exec", "abc", "start"]))
        );
        for bad in [
            "/containers/../images/json",
            "/containers//json",
            "/containers/a%2Fb/json",
            "/containers/json/",
            "containers/json",
            "/./_ping",
        ] {
            assert_eq!(split_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn forces_the_label_filter() {
        let label = "discobot.project.id=local";
        let decoded = |query: &str| {
            let (_, value) = query
                .split('&')
                .find_map(|pair| pair.split_once('=').filter(|(key, _)| *key == "filters"))
                .unwrap();
            serde_json::from_str::<Value>(&percent_decode(value).unwrap()).unwrap()
        };
        let query = with_label_filter("", label).unwrap();
        assert_eq!(decoded(&query), json!({"label": [label]}));

        let given = format!(
            "all=1&filters={}",
            percent_encode(r#"{"label":["a=b"],"status":["running"]}"#)
        );
        let query = with_label_filter(&given, label).unwrap();
        assert!(query.starts_with("all=1&"));
        assert_eq!(
            decoded(&query),
            json!({"label": ["a=b", label], "status": ["running"]})
        );

        // The old map form, and a filter that tries to replace ours in a second parameter.
        let given = format!(
            "filters={}&filters={}",
            percent_encode(r#"{"label":{"a=b":true}}"#),
            percent_encode(r#"{"label":{"discobot.project.id=other":true}}"#)
        );
        let query = with_label_filter(&given, label).unwrap();
        assert_eq!(
            decoded(&query),
            json!({"label": {"a=b": true, "discobot.project.id=other": true, label: true}})
        );
        assert_eq!(query.matches("filters=").count(), 1);

        assert!(with_label_filter("filters=%7Bnot-json", label).is_err());
        assert!(with_label_filter("filters=%5B%5D", label).is_err());
        assert!(with_label_filter("filters=%ZZ", label).is_err());
        assert!(with_label_filter("filters=%+1", label).is_err());
    }

    #[test]
    fn parses_and_rewrites_heads() {
        let raw = b"POST /v1.41/exec/abc/start HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\n\
                    Upgrade: tcp\r\nContent-Length: 2";
        let head = parse_head(raw).unwrap();
        assert_eq!(head.method, "POST");
        assert_eq!(head.header("upgrade"), Some("tcp"));
        let forwarded = String::from_utf8(head.forwarded("/v1.41/exec/abc/start")).unwrap();
        assert_eq!(
            forwarded,
            "POST /v1.41/exec/abc/start HTTP/1.1\r\nHost: api\r\nUpgrade: tcp\r\n\
             Content-Length: 2\r\nConnection: Upgrade, close\r\n\r\n"
        );

        let head = parse_head(b"GET /_ping HTTP/1.1\r\nConnection: keep-alive").unwrap();
        let forwarded = String::from_utf8(head.forwarded("/_ping")).unwrap();
        assert_eq!(
            forwarded,
            "GET /_ping HTTP/1.1\r\nConnection: close\r\n\r\n"
        );

        for bad in [
            &b"GET /_ping"[..],
            b"GET _ping HTTP/1.1",
            b"get /_ping HTTP/1.1",
            b"GET /_ping HTTP/2",
            b"GET /_ping HTTP/1.1\r\nno colon",
            b"GET /_ping HTTP/1.1\r\n folded: x",
            b"GET /_ping HTTP/1.1\r\nX: a\rb",
        ] {
            assert!(parse_head(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn refuses_privileged_execs() {
        assert!(check_exec_create(br#"{"Cmd":["ls"]}"#).is_ok());
        assert!(check_exec_create(br#"{"Cmd":["ls"],"Privileged":false}"#).is_ok());
        assert_eq!(
            check_exec_create(br#"{"Cmd":["ls"],"Privileged":true}"#)
                .unwrap_err()
                .status,
            403
        );
        assert!(check_exec_create(b"not json").is_err());
    }

    #[test]
    fn refusals_look_like_docker_errors() {
        let response = String::from_utf8(Refusal::new(403, "no").response()).unwrap();
        assert!(response.starts_with("HTTP/1.1 403 Forbidden\r\n"));
        assert!(response.contains("Content-Type: application/json\r\n"));
        assert!(response.ends_with("\r\n\r\n{\"message\":\"no\"}"));
    }
}
