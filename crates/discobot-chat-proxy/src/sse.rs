//! An incremental server-sent-events parser: bytes in (any chunking), frames out.
//!
//! It keeps one byte buffer and scans it in place; a frame costs only its own strings, so
//! relaying many small frames is as cheap as reading the bytes.

use discobot_core::ports::SseFrame;

/// Parses `id:`, `event:` and `data:` lines into frames; a blank line ends a frame.
/// Comment lines (`:`) and unknown fields are dropped, several `data:` lines are joined with
/// `\n`, and lines may end in `\n` or `\r\n`.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    /// Where the unparsed part of `buf` starts.
    pos: usize,
    frame: SseFrame,
    /// Whether the frame being built has had any field (a comment-only block is no frame).
    has_field: bool,
    /// Whether `frame.data` already holds a `data:` line (the next one needs a `\n` first).
    has_data: bool,
}

impl SseParser {
    pub fn new() -> Self {
        SseParser::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            // Only the unfinished tail moves, once per received chunk.
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame in what was pushed so far.
    pub fn next_frame(&mut self) -> Option<SseFrame> {
        loop {
            let rest = &self.buf[self.pos..];
            let newline = rest.iter().position(|&b| b == b'\n')?;
            let line_start = self.pos;
            self.pos += newline + 1;
            let mut line_end = line_start + newline;
            if line_end > line_start && self.buf[line_end - 1] == b'\r' {
                line_end -= 1;
            }
            if line_end == line_start {
                if self.has_field {
                    self.has_field = false;
                    self.has_data = false;
                    return Some(std::mem::take(&mut self.frame));
                }
                continue;
            }
            self.field(line_start, line_end);
        }
    }

    fn field(&mut self, start: usize, end: usize) {
        let line = &self.buf[start..end];
        if line[0] == b':' {
            return;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.frame.data.push('\n');
                }
                self.frame.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
            b"id" => self.frame.id = Some(String::from_utf8_lossy(value).into_owned()),
            b"event" => self.frame.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => return,
        }
        self.has_field = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseFrame> {
        let mut parser = SseParser::new();
        let mut frames = Vec::new();
        for chunk in chunks {
            parser.push(chunk);
            while let Some(frame) = parser.next_frame() {
                frames.push(frame);
            }
        }
        frames
    }

    fn frame(id: Option<&str>, event: Option<&str>, data: &str) -> SseFrame {
        SseFrame {
            id: id.map(str::to_owned),
            event: event.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    #[test]
    fn fields_comments_and_multi_line_data() {
        let frames = parse_all(&[
            b": keep-alive\n\nid: c1:0\nevent: chunk\ndata: {\"a\":1}\n\n",
            b"data: one\ndata:two\nretry: 10\n\nevent: ping\ndata: {}\n\n",
        ]);
        assert_eq!(
            frames,
            vec![
                frame(Some("c1:0"), Some("chunk"), "{\"a\":1}"),
                frame(None, None, "one\ntwo"),
                frame(None, Some("ping"), "{}"),
            ]
        );
    }

    #[test]
    fn crlf_and_arbitrary_splits() {
        let text = b"id: 7\r\nevent: chunk\r\ndata: x\r\n\r\ndata: y\r\n\r\n";
        let whole = parse_all(&[text]);
        assert_eq!(
            whole,
            vec![frame(Some("7"), Some("chunk"), "x"), frame(None, None, "y")]
        );
        for split in 1..text.len() {
            let (a, b) = text.split_at(split);
            assert_eq!(parse_all(&[a, b]), whole, "split at {split}");
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(parse_all(&bytes), whole);
    }

    #[test]
    fn an_unfinished_frame_is_held_back() {
        let mut parser = SseParser::new();
        parser.push(b"data: half");
        assert_eq!(parser.next_frame(), None);
        parser.push(b"\n");
        assert_eq!(parser.next_frame(), None);
        parser.push(b"\n");
        assert_eq!(parser.next_frame(), Some(frame(None, None, "half")));
    }

    #[test]
    fn empty_data_line_is_a_frame_and_no_space_is_kept() {
        assert_eq!(
            parse_all(&[b"data:\n\nevent:done\n\n"]),
            vec![frame(None, None, ""), frame(None, Some("done"), "")]
        );
    }
}
