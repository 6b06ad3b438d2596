//! The fake over real TCP: both wire formats for every step, errors, the queue, the log, the binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use discobot_fake_llm::{Api, FakeLlm, Reply, Step};
use serde_json::{Value, json};

const API_KEY: &str = "sk-test-key-0123456789wxyz";

async fn start() -> FakeLlm {
    FakeLlm::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("the fake starts on loopback")
}

/// One parsed SSE event: its `event:` name (if any) and its `data:`.
#[derive(Debug)]
struct Event {
    name: Option<String>,
    data: String,
}

impl Event {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|error| panic!("event data is not JSON ({error}): {}", self.data))
    }
}

fn parse_sse(text: &str) -> Vec<Event> {
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "the stream ends inside an event: {text:?}"
    );
    text.split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = Some(value.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push(value);
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            Event {
                name,
                data: data.join("\n"),
            }
        })
        .collect()
}

fn anthropic_request(fake: &FakeLlm) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("{}/v1/messages", fake.base_url_anthropic()))
        .header("x-api-key", API_KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({
            "model": "claude-test",
            "max_tokens": 1024,
            "stream": true,
            "messages": [{"role": "user", "content": "hi"}],
        }))
}

fn openai_request(fake: &FakeLlm) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", fake.base_url_openai()))
        .bearer_auth(API_KEY)
        .json(&json!({
            "model": "gpt-test",
            "stream": true,
            "messages": [{"role": "user", "content": "hi"}],
        }))
}

/// The Anthropic events of one streamed reply, checked for framing (name equals `type`).
async fn anthropic_events(fake: &FakeLlm) -> Vec<Value> {
    let response = anthropic_request(fake).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = parse_sse(&response.text().await.unwrap());
    events
        .iter()
        .map(|event| {
            let data = event.json();
            assert_eq!(event.name.as_deref(), data["type"].as_str(), "{data}");
            data
        })
        .collect()
}

/// The OpenAI chunks of one streamed reply, and whether it ended with `[DONE]`.
async fn openai_chunks(fake: &FakeLlm) -> (Vec<Value>, bool) {
    let response = openai_request(fake).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let events = parse_sse(&response.text().await.unwrap());
    let done = events.last().is_some_and(|event| event.data == "[DONE]");
    let chunks = events
        .iter()
        .filter(|event| event.data != "[DONE]")
        .map(|event| {
            assert_eq!(event.name, None);
            event.json()
        })
        .collect();
    (chunks, done)
}

fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect()
}

/// The concatenated deltas of `field` in the `delta`s of type `delta_type`.
fn anthropic_deltas(events: &[Value], delta_type: &str, field: &str) -> String {
    events
        .iter()
        .filter(|event| {
            event["type"] == "content_block_delta" && event["delta"]["type"] == delta_type
        })
        .map(|event| event["delta"][field].as_str().unwrap())
        .collect()
}

fn openai_deltas(chunks: &[Value], field: &str) -> String {
    chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"][field].as_str())
        .collect()
}

#[tokio::test]
async fn anthropic_text_streams_in_the_real_event_order() {
    let fake = start().await;
    fake.push(Reply::text("Hello from the fake model!"));
    let events = anthropic_events(&fake).await;
    assert_eq!(
        types(&events),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let message = &events[0]["message"];
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["model"], "claude-test");
    assert_eq!(message["content"], json!([]));
    assert!(message["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        events[2]["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(events[3]["delta"]["text"], "Hello fr");
    assert_eq!(
        anthropic_deltas(&events, "text_delta", "text"),
        "Hello from the fake model!"
    );
    assert!(events[2..8].iter().all(|event| event["index"] == 0));
    assert_eq!(events[8]["delta"]["stop_reason"], "end_turn");
    assert!(events[8]["usage"]["output_tokens"].as_u64().unwrap() > 0);
    fake.shutdown().await.unwrap();
}

#[tokio::test]
async fn openai_text_streams_chunks_usage_and_done() {
    let fake = start().await;
    fake.push(Reply::text("Hello from the fake model!"));
    let (chunks, done) = openai_chunks(&fake).await;
    assert!(done);
    let first = &chunks[0];
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["model"], "gpt-test");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        openai_deltas(&chunks, "content"),
        "Hello from the fake model!"
    );
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    let usage = &usage["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    // Every chunk of one completion shares its id.
    assert!(chunks.iter().all(|chunk| chunk["id"] == first["id"]));
    // Only the finish chunk carries a finish reason.
    let finished = chunks
        .iter()
        .filter(|chunk| !chunk["choices"][0]["finish_reason"].is_null())
        .count();
    assert_eq!(finished, 1);
    fake.shutdown().await.unwrap();
}

#[tokio::test]
async fn thinking_streams_as_a_signed_block_and_as_reasoning_content() {
    let fake = start().await;
    let reply = Reply::new(vec![
        Step::thinking("Let me think about this.", Some("c2lnbmVk".into())),
        Step::text("Answer."),
    ]);
    fake.push_all([reply.clone(), reply]);

    let events = anthropic_events(&fake).await;
    let starts: Vec<&Value> = events
        .iter()
        .filter(|event| event["type"] == "content_block_start")
        .collect();
    assert_eq!(starts[0]["content_block"]["type"], "thinking");
    assert_eq!(starts[0]["index"], 0);
    assert_eq!(starts[1]["content_block"]["type"], "text");
    assert_eq!(starts[1]["index"], 1);
    assert_eq!(
        anthropic_deltas(&events, "thinking_delta", "thinking"),
        "Let me think about this."
    );
    assert_eq!(
        anthropic_deltas(&events, "signature_delta", "signature"),
        "c2lnbmVk"
    );
    // The signature is the thinking block's last delta, before its stop.
    let signature_at = events
        .iter()
        .position(|event| event["delta"]["type"] == "signature_delta")
        .unwrap();
    assert_eq!(events[signature_at + 1]["type"], "content_block_stop");
    assert_eq!(events[signature_at + 1]["index"], 0);
    assert_eq!(anthropic_deltas(&events, "text_delta", "text"), "Answer.");

    let (chunks, done) = openai_chunks(&fake).await;
    assert!(done);
    assert_eq!(
        openai_deltas(&chunks, "reasoning_content"),
        "Let me think about this."
    );
    assert_eq!(openai_deltas(&chunks, "content"), "Answer.");
    fake.shutdown().await.unwrap();
}

#[tokio::test]
async fn tool_calls_stream_their_input_json_in_pieces() {
    let fake = start().await;
    let input = json!({"file_path": "/work/notes.txt", "content": "line one\nline \"two\""});
    let reply = Reply::new(vec![
        Step::text("Writing."),
        Step::tool_call("Write", input.clone()),
        Step::ToolCall {
            tool_call: discobot_fake_llm::ToolCall {
                name: "Read".into(),
                input: json!({"file_path": "/work/a"}),
                id: Some("fixed-id".into()),
            },
        },
    ]);
    fake.push_all([reply.clone(), reply]);

    let events = anthropic_events(&fake).await;
    let tool_starts: Vec<&Value> = events
        .iter()
        .filter(|event| event["content_block"]["type"] == "tool_use")
        .collect();
    assert_eq!(tool_starts.len(), 2);
    assert_eq!(tool_starts[0]["content_block"]["name"], "Write");
    assert_eq!(tool_starts[0]["content_block"]["input"], json!({}));
    assert!(
        tool_starts[0]["content_block"]["id"]
            .as_str()
            .unwrap()
            .starts_with("toolu_")
    );
    assert_eq!(tool_starts[1]["content_block"]["id"], "fixed-id");
    let write_index = tool_starts[0]["index"].clone();
    let write_json: String = events
        .iter()
        .filter(|event| {
            event["index"] == write_index && event["delta"]["type"] == "input_json_delta"
        })
        .map(|event| event["delta"]["partial_json"].as_str().unwrap())
        .collect();
    let pieces = events
        .iter()
        .filter(|event| {
            event["index"] == write_index && event["delta"]["type"] == "input_json_delta"
        })
        .count();
    assert!(pieces > 1, "the input came in {pieces} delta(s)");
    assert_eq!(serde_json::from_str::<Value>(&write_json).unwrap(), input);
    let message_delta = events
        .iter()
        .find(|event| event["type"] == "message_delta")
        .unwrap();
    assert_eq!(message_delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(types(&events).last(), Some(&"message_stop"));

    let (chunks, done) = openai_chunks(&fake).await;
    assert!(done);
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .collect();
    let first = calls[0];
    assert_eq!(first["index"], 0);
    assert_eq!(first["type"], "function");
    assert_eq!(first["function"]["name"], "Write");
    assert!(first["id"].as_str().unwrap().starts_with("call_"));
    let arguments: String = calls
        .iter()
        .filter(|call| call["index"] == 0)
        .map(|call| call["function"]["arguments"].as_str().unwrap())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&arguments).unwrap(), input);
    let second: Vec<&&Value> = calls.iter().filter(|call| call["index"] == 1).collect();
    assert_eq!(second[0]["id"], "fixed-id");
    assert_eq!(second[0]["function"]["name"], "Read");
    // Only the first delta of a call names it.
    assert!(calls.iter().filter(|call| call["id"].is_string()).count() == 2);
    let finish = chunks
        .iter()
        .find_map(|chunk| chunk["choices"][0]["finish_reason"].as_str())
        .unwrap();
    assert_eq!(finish, "tool_calls");
    fake.shutdown().await.unwrap();
}

#[tokio::test]
async fn error_steps_answer_the_vendor_error_json_with_that_status() {
    let fake = start().await;
    let rate_limited = Reply::new(vec![Step::Error {
        error: discobot_fake_llm::ErrorStep {
            status: 429,
            message: "slow down".into(),
            error_type: None,
            retry_after: Some(7),
        },
    }]);
    fake.push_all([
        rate_limited.clone(),
        rate_limited,
        Reply::error(500, "boom"),
        Reply::error(500, "boom"),
    ]);

    let response = anthropic_request(&fake).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["message"], "slow down");

    let response = openai_request(&fake).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "slow down");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");

    let response = anthropic_request(&fake).send().await.unwrap();
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "api_error");

    let response = openai_request(&fake).send().await.unwrap();
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "server_error");
    assert_eq!(body["error"]["message"], "boom");

    // The queue is empty again: the default reply.
    let events = anthropic_events(&fake).await;
    assert_eq!(anthropic_deltas(&events, "text_delta", "text"), "ok");
    fake.shutdown().await.unwrap();
}

#[tokio::test]
async fn stream_errors_break_the_stream() {
    let fake = start().await;
    let reply = Reply::new(vec![
        Step::text("partial"),
        Step::stream_error("overloaded"),
    ]);
    fake.push_all([reply.clone(), reply]);

    let events = anthropic_events(&fake).await;
    let last = events.last().unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["error"]["message"], "overloaded");
    assert!(!types(&events).contains(&"message_stop"));
    assert!(!types(&events).contains(&"message_delta"));
    assert_eq!(anthropic_deltas(&events, "text_delta", "text"), "partial");

    let (chunks, done) = openai_chunks(&fake).await;
    assert!(!done, "a broken OpenAI stream has no [DONE]");
    assert_eq!(openai_deltas(&chunks, "content"), "partial");
    assert!(chunks
        .iter()
        .all(|chunk| chunk["choices"][0]["finish_reason"].is_null() && chunk["usage"].is_null()));
    fake.shutdown().await.unwrap();
}

#[tokio::test]
async fn delays_pause_the_stream_mid_way() {
    let fake = start().await;
    let reply = Reply::new(vec![
        Step::text("before"),
        Step::delay_ms(400),
        Step::text("after"),
    ]);
    fake.push_all([reply.clone(), reply]);

    for api in [Api::Anthropic, Api::Openai] {
        let request = match api {
            Api::Anthropic => anthropic_request(&fake),
            Api::Openai => openai_request(&fake),
        };
        let mut response = request.send().await.unwrap();
        let started = Instant::now();
        let mut text = String::new();
        let mut before_at = None;
        while let Some(bytes) = response.chunk().await.unwrap() {
            text.push_str(std::str::from_utf8(&bytes).unwrap());
            if before_at.is_none() && text.contains("before") {
                before_at = Some(started.elapsed());
            }
        }
        let total = started.elapsed();
        let before_at = before_at.expect("the text before the delay arrived");
        assert!(
            total - before_at >= Duration::from_millis(350),
            "{api:?}: before at {before_at:?}, end at {total:?}"
        );
        assert!(text.contains("after"));
    }
    fake.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_hang_keeps_the_stream_open_until_shutdown() {
    let fake = start().await;
    fake.push(Reply::new(vec![Step::text("started"), Step::hang()]));
    let mut response = openai_request(&fake).send().await.unwrap();
    let mut text = String::new();
    while !text.contains("started") {
        let bytes = response.chunk().await.unwrap().expect("the stream is open");
        text.push_str(std::str::from_utf8(&bytes).unwrap());
    }
    let next = tokio::time::timeout(Duration::from_millis(300), response.chunk()).await;
    assert!(
        next.is_err(),
        "a hanging stream sends nothing more: {next:?}"
    );

    let shutdown = tokio::spawn(fake.shutdown());
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        let mut rest = Vec::new();
        while let Ok(Some(bytes)) = response.chunk().await {
            rest.extend_from_slice(&bytes);
        }
        rest
    })
    .await
    .expect("shutdown ends the hanging stream");
    assert!(!String::from_utf8_lossy(&rest).contains("[DONE]"));
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown finishes")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn chunk_delay_slows_every_delta() {
    let fake = start().await;
    fake.push(Reply {
        chunk_delay_ms: Some(50),
        chunk_chars: Some(2),
        ..Reply::text("abcdefgh")
    });
    let started = Instant::now();
    let events = anthropic_events(&fake).await;
    let elapsed = started.elapsed();
    let deltas = types(&events)
        .iter()
        .filter(|name| **name == "content_block_delta")
        .count();
    assert_eq!(deltas, 4);
    assert!(elapsed >= Duration::from_millis(200), "took {elapsed:?}");
    fake.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_queue_serves_both_apis_in_order() {
    let fake = start().await;
    let client = reqwest::Client::new();
    let added: Value = client
        .post(format!("http://{}/_fake/replies", fake.addr()))
        .json(&json!([
            {"steps": [{"text": "first"}]},
            {"steps": [{"text": "second"}]},
            {"steps": [{"text": "third"}]},
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(added, json!({"added": 3, "pending": 3}));

    let events = anthropic_events(&fake).await;
    assert_eq!(anthropic_deltas(&events, "text_delta", "text"), "first");
    let (chunks, _) = openai_chunks(&fake).await;
    assert_eq!(openai_deltas(&chunks, "content"), "second");
    // Without the /v1 prefix too.
    let response = client
        .post(format!("http://{}/chat/completions", fake.addr()))
        .bearer_auth(API_KEY)
        .json(&json!({"model": "m", "stream": true, "messages": []}))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    let chunks: Vec<Value> = parse_sse(&text)
        .iter()
        .filter(|event| event.data != "[DONE]")
        .map(Event::json)
        .collect();
    assert_eq!(openai_deltas(&chunks, "content"), "third");
    let (chunks, _) = openai_chunks(&fake).await;
    assert_eq!(openai_deltas(&chunks, "content"), "ok");

    // Clearing the queue brings back the default reply.
    fake.push(Reply::text("never"));
    let cleared: Value = client
        .delete(format!("http://{}/_fake/replies", fake.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleared, json!({"cleared": 1}));
    let events = anthropic_events(&fake).await;
    assert_eq!(anthropic_deltas(&events, "text_delta", "text"), "ok");
    fake.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_bad_script_is_a_json_400() {
    let fake = start().await;
    let client = reqwest::Client::new();
    for bad in [
        json!([{"steps": [{"txt": "typo"}]}]),
        json!([{"steps": [{"error": {"status": 200, "message": "not an error"}}]}]),
        json!("nonsense"),
    ] {
        let response = client
            .post(format!("http://{}/_fake/replies", fake.addr()))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string(), "{body}");
    }
    assert!(fake.pending_replies().is_empty());
    let response = client
        .get(format!("http://{}/nowhere", fake.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_string());
    fake.shutdown().await.unwrap();
}

#[tokio::test]
async fn requests_are_recorded_without_credential_values() {
    let fake = start().await;
    anthropic_events(&fake).await;
    openai_chunks(&fake).await;

    let client = reqwest::Client::new();
    let recorded: Value = client
        .get(format!("http://{}/_fake/requests", fake.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = recorded.to_string();
    assert!(!text.contains(API_KEY), "a key leaked: {text}");
    assert!(!text.contains("0123456789"), "part of a key leaked: {text}");

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(serde_json::to_value(&requests).unwrap(), recorded);
    let anthropic = &requests[0];
    assert_eq!(anthropic.api, Api::Anthropic);
    assert_eq!(anthropic.method, "POST");
    assert_eq!(anthropic.path, "/v1/messages");
    assert_eq!(anthropic.x_api_key_last4.as_deref(), Some("wxyz"));
    assert_eq!(anthropic.authorization_last4, None);
    assert_eq!(anthropic.headers["anthropic-version"], "2023-06-01");
    assert!(!anthropic.headers.contains_key("x-api-key"));
    assert_eq!(anthropic.body["model"], "claude-test");
    assert_eq!(anthropic.body["messages"][0]["content"], "hi");
    let openai = &requests[1];
    assert_eq!(openai.api, Api::Openai);
    assert_eq!(openai.path, "/v1/chat/completions");
    assert_eq!(openai.authorization_last4.as_deref(), Some("wxyz"));
    assert_eq!(openai.x_api_key_last4, None);
    assert!(!openai.headers.contains_key("authorization"));

    let cleared: Value = client
        .delete(format!("http://{}/_fake/requests", fake.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleared, json!({"cleared": 2}));
    assert!(fake.requests().is_empty());
    fake.shutdown().await.unwrap();
}

#[tokio::test]
async fn requests_without_a_key_get_the_vendor_401_and_keep_the_queue() {
    let fake = start().await;
    fake.push(Reply::text("kept"));
    let client = reqwest::Client::new();
    let body = json!({"model": "m", "stream": true, "messages": []});

    let response = client
        .post(format!("{}/v1/messages", fake.base_url_anthropic()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "authentication_error");

    // A non-bearer Authorization is no key either.
    let response = client
        .post(format!("{}/chat/completions", fake.base_url_openai()))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_api_key");

    assert_eq!(fake.pending_replies(), vec![Reply::text("kept")]);
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].x_api_key_last4, None);
    assert_eq!(requests[1].authorization_last4.as_deref(), Some("YXNz"));
    fake.shutdown().await.unwrap();
}

#[tokio::test]
async fn non_streaming_requests_get_one_json_message() {
    let fake = start().await;
    let reply = Reply::new(vec![
        Step::text("Writing."),
        Step::tool_call("Write", json!({"file_path": "a"})),
    ]);
    fake.push_all([reply.clone(), reply]);
    let client = reqwest::Client::new();

    let message: Value = client
        .post(format!("{}/v1/messages", fake.base_url_anthropic()))
        .header("x-api-key", API_KEY)
        .json(&json!({"model": "claude-test", "max_tokens": 10, "messages": []}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(
        message["content"][0],
        json!({"type": "text", "text": "Writing."})
    );
    assert_eq!(message["content"][1]["input"], json!({"file_path": "a"}));
    assert_eq!(message["stop_reason"], "tool_use");

    let completion: Value = client
        .post(format!("{}/chat/completions", fake.base_url_openai()))
        .bearer_auth(API_KEY)
        .json(&json!({"model": "gpt-test", "messages": []}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(completion["object"], "chat.completion");
    let choice = &completion["choices"][0];
    assert_eq!(choice["message"]["content"], "Writing.");
    assert_eq!(choice["finish_reason"], "tool_calls");
    let arguments = choice["message"]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(arguments).unwrap(),
        json!({"file_path": "a"})
    );
    fake.shutdown().await.unwrap();
}

#[tokio::test]
async fn bench_mode_streams_exactly_the_requested_chunks() {
    const CHUNKS: u64 = 100_000;
    let fake = start().await;
    fake.push_all([Reply::bulk_text(CHUNKS, "x"), Reply::bulk_text(CHUNKS, "x")]);

    let events = anthropic_events(&fake).await;
    let deltas = events
        .iter()
        .filter(|event| event["type"] == "content_block_delta")
        .count() as u64;
    assert_eq!(deltas, CHUNKS);
    assert_eq!(types(&events).last(), Some(&"message_stop"));

    // Counted on the raw bytes, so the client's JSON parsing does not dominate the time.
    let started = Instant::now();
    let response = openai_request(&fake).send().await.unwrap();
    let text = response.text().await.unwrap();
    let elapsed = started.elapsed();
    let content_chunks = text.matches(r#""delta":{"content":"x"}"#).count() as u64;
    assert_eq!(content_chunks, CHUNKS);
    assert!(text.ends_with("data: [DONE]\n\n"));
    eprintln!(
        "bench mode: {CHUNKS} OpenAI chunks in {elapsed:?} ({:.0} chunks/s, debug build)",
        CHUNKS as f64 / elapsed.as_secs_f64()
    );
    fake.shutdown().await.unwrap();
}

#[tokio::test]
async fn it_refuses_unspecified_addresses() {
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let result = FakeLlm::start(addr.parse().unwrap()).await;
        assert!(
            matches!(result, Err(discobot_fake_llm::Error::UnspecifiedAddress(_))),
            "{addr}"
        );
    }
}

#[test]
fn the_binary_prints_its_address_and_serves_the_script() {
    let dir = std::env::temp_dir().join(format!("discobot-fake-llm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("script.json");
    std::fs::write(&script, r#"[{"steps": [{"text": "from the script"}]}]"#).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_discobot-fake-llm"))
        .args(["--listen", "127.0.0.1:0", "--script"])
        .arg(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let addr = first_line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line {first_line:?}"))
        .to_owned();
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{addr}"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let text = runtime.block_on(async {
        let replies: Value = reqwest::get(format!("http://{addr}/_fake/replies"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(replies.as_array().unwrap().len(), 1);
        reqwest::Client::new()
            .post(format!("http://{addr}/v1/messages"))
            .header("x-api-key", API_KEY)
            .json(&json!({"model": "m", "stream": true, "messages": []}))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(text.contains(r#""text":"from the"#), "{text}");

    // SIGTERM ends it cleanly.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "the binary ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_docker_bridge_gateway_is_a_local_address_the_fake_can_serve_on() {
    let has_docker0 = Command::new("ip")
        .args(["-4", "addr", "show", "docker0"])
        .output()
        .is_ok_and(|output| output.status.success() && !output.stdout.is_empty());
    let gateway = discobot_fake_llm::docker_bridge_gateway();
    if has_docker0 {
        assert!(gateway.is_some(), "docker0 exists but no gateway was found");
    }
    let Some(gateway) = gateway else {
        return;
    };
    let fake = FakeLlm::start((gateway, 0).into())
        .await
        .expect("the gateway is an address of this host");
    assert_eq!(fake.addr().ip(), gateway);
    fake.push(Reply::text("via the bridge"));
    let events = anthropic_events(&fake).await;
    assert_eq!(
        anthropic_deltas(&events, "text_delta", "text"),
        "via the bridge"
    );
    fake.shutdown().await.unwrap();
}

#[tokio::test]
async fn delays_before_an_error_step_delay_the_error() {
    let fake = start().await;
    let mut slow_error = Reply::error(503, "try later");
    slow_error.steps.insert(0, Step::delay_ms(300));
    fake.push(slow_error);
    let started = Instant::now();
    let response = openai_request(&fake).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "try later");
    fake.shutdown().await.unwrap();
}
