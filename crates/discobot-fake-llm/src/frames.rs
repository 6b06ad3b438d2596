//! A rendered stream: SSE bytes, pauses and hangs, and the response body that plays them.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Bytes per write when a bench step repeats one event: big enough that the per-write cost
/// vanishes next to the bytes, small enough to keep the socket moving.
const REPEAT_BATCH_BYTES: usize = 64 * 1024;

/// One piece of a rendered stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Frame {
    /// Bytes written as they are.
    Bytes(Bytes),
    /// Nothing is written for this long.
    Pause(Duration),
    /// `batch` written `batches` times, then `tail`: one event repeated, rendered once.
    Repeat {
        batch: Bytes,
        batches: u64,
        tail: Bytes,
    },
    /// Nothing more is ever written; the stream stays open.
    Hang,
}

/// Collects the frames of one stream, with the reply's pacing.
pub(crate) struct Frames {
    frames: Vec<Frame>,
    chunk_delay: Option<Duration>,
}

impl Frames {
    pub(crate) fn new(chunk_delay_ms: Option<u64>) -> Self {
        Self {
            frames: Vec::new(),
            chunk_delay: chunk_delay_ms
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis),
        }
    }

    /// `event: <name>` and `data: <json>` (Anthropic's framing).
    pub(crate) fn named_event(&mut self, name: &str, data: &Value) {
        self.frames
            .push(Frame::Bytes(Bytes::from(named_event_bytes(name, data))));
    }

    /// `data: <json>` only (OpenAI's framing).
    pub(crate) fn data_event(&mut self, data: &Value) {
        self.frames
            .push(Frame::Bytes(Bytes::from(data_event_bytes(data))));
    }

    /// A raw `data:` line, for OpenAI's `[DONE]`.
    pub(crate) fn raw(&mut self, bytes: &'static [u8]) {
        self.frames.push(Frame::Bytes(Bytes::from_static(bytes)));
    }

    /// The reply's `chunkDelayMs`, before each streamed delta.
    pub(crate) fn pace(&mut self) {
        if let Some(delay) = self.chunk_delay {
            self.frames.push(Frame::Pause(delay));
        }
    }

    pub(crate) fn pause(&mut self, ms: u64) {
        self.frames.push(Frame::Pause(Duration::from_millis(ms)));
    }

    pub(crate) fn hang(&mut self) {
        self.frames.push(Frame::Hang);
    }

    /// `event` (already framed) `count` times, without pacing.
    pub(crate) fn repeat(&mut self, event: &[u8], count: u64) {
        let per_batch = (REPEAT_BATCH_BYTES / event.len().max(1)).max(1) as u64;
        let per_batch = per_batch.min(count.max(1));
        let batch = Bytes::from(event.repeat(per_batch as usize));
        let tail = Bytes::from(event.repeat((count % per_batch) as usize));
        self.frames.push(Frame::Repeat {
            batch,
            batches: count / per_batch,
            tail,
        });
    }

    pub(crate) fn into_frames(self) -> Vec<Frame> {
        self.frames
    }
}

pub(crate) fn named_event_bytes(name: &str, data: &Value) -> Vec<u8> {
    format!("event: {name}\ndata: {data}\n\n").into_bytes()
}

pub(crate) fn data_event_bytes(data: &Value) -> Vec<u8> {
    format!("data: {data}\n\n").into_bytes()
}

/// Splits `text` into pieces of at most `chars` characters (never inside a character).
pub(crate) fn pieces(text: &str, chars: usize) -> Vec<&str> {
    let chars = chars.max(1);
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest
            .char_indices()
            .nth(chars)
            .map_or(rest.len(), |(index, _)| index);
        let (piece, tail) = rest.split_at(end);
        out.push(piece);
        rest = tail;
    }
    out
}

/// The response body that plays `frames`; pauses and hangs end early at `shutdown`, so a
/// graceful shutdown never waits for a scripted hang.
pub(crate) fn body(frames: Vec<Frame>, shutdown: CancellationToken) -> Body {
    Body::from_stream(async_stream::stream! {
        for frame in frames {
            match frame {
                Frame::Bytes(bytes) => yield Ok::<Bytes, Infallible>(bytes),
                Frame::Pause(duration) => {
                    tokio::select! {
                        () = tokio::time::sleep(duration) => {}
                        () = shutdown.cancelled() => break,
                    }
                }
                Frame::Hang => {
                    shutdown.cancelled().await;
                    break;
                }
                Frame::Repeat { batch, batches, tail } => {
                    for _ in 0..batches {
                        if shutdown.is_cancelled() {
                            break;
                        }
                        yield Ok(batch.clone());
                    }
                    if !tail.is_empty() && !shutdown.is_cancelled() {
                        yield Ok(tail);
                    }
                }
            }
        }
    })
}

/// All frames' bytes joined, pauses and hangs skipped: for non-streaming answers and tests.
#[cfg(test)]
pub(crate) fn concat(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in frames {
        match frame {
            Frame::Bytes(bytes) => out.extend_from_slice(bytes),
            Frame::Repeat {
                batch,
                batches,
                tail,
            } => {
                for _ in 0..*batches {
                    out.extend_from_slice(batch);
                }
                out.extend_from_slice(tail);
            }
            Frame::Pause(_) | Frame::Hang => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_on_characters_not_bytes() {
        assert_eq!(pieces("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(pieces("żółw!", 2), vec!["żó", "łw", "!"]);
        assert!(pieces("", 8).is_empty());
    }

    #[test]
    fn repeat_writes_the_event_exactly_count_times() {
        for count in [0, 1, 7, 10_000, 123_457] {
            let mut frames = Frames::new(None);
            frames.repeat(b"ab\n", count);
            let bytes = concat(&frames.into_frames());
            assert_eq!(bytes.len() as u64, 3 * count, "count {count}");
            assert!(bytes.chunks(3).all(|event| event == b"ab\n"));
        }
    }
}
