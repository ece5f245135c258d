//! Splits a byte stream into JSON-RPC messages.
//!
//! OVSDB's JSON-RPC is not line-delimited: messages are JSON objects written back to back. The decoder
//! tracks nesting depth outside strings as bytes arrive (each byte is scanned once, however the stream
//! is chunked) and hands out each complete top-level value. A message that grows past the configured
//! limit is an error, so a broken or hostile server cannot make the client buffer without bound.

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The message exceeded the size limit.
    TooLarge(usize),
    /// A byte that cannot start a JSON-RPC message.
    Garbage(u8),
}

/// Finds where back-to-back JSON values end, without keeping any bytes: the connection runs it over
/// the stream to enforce the size limit and to tell a clean close from one in mid-message, while the
/// parser deserializes the same bytes as they arrive.
#[derive(Debug, Clone)]
pub struct FrameScanner {
    depth: u32,
    in_string: bool,
    escaped: bool,
    in_message: bool,
    /// Bytes of the current message seen so far.
    len: usize,
    max: usize,
}

impl FrameScanner {
    /// A scanner that refuses messages longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameScanner {
            depth: 0,
            in_string: false,
            escaped: false,
            in_message: false,
            len: 0,
            max,
        }
    }

    /// True while a message has started and not ended.
    pub fn in_message(&self) -> bool {
        self.in_message
    }

    /// Scans `data`, the next bytes of the stream; returns the offset just past the first message that
    /// ends within it, if one does (call again with the rest).
    pub fn scan(&mut self, data: &[u8]) -> Result<Option<usize>, FrameError> {
        let n = data.len();
        let mut i = 0;
        // The current message's length is `carried + (offset - begin)`: what earlier scans saw of it
        // plus its bytes in this scan.
        let mut carried = self.len;
        let mut begin = 0;
        while i < n {
            let b = data[i];
            if !self.in_message {
                match b {
                    b' ' | b'\t' | b'\r' | b'\n' => {
                        i += 1;
                        continue;
                    }
                    b'{' | b'[' => {
                        self.in_message = true;
                        self.depth = 1;
                        carried = 0;
                        begin = i;
                        i += 1;
                        continue;
                    }
                    other => return Err(FrameError::Garbage(other)),
                }
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    i += 1;
                    continue;
                }
                // Skip quickly to the next quote or backslash.
                match data[i..].iter().position(|&c| c == b'"' || c == b'\\') {
                    Some(off) => {
                        i += off;
                        if data[i] == b'\\' {
                            self.escaped = true;
                        } else {
                            self.in_string = false;
                        }
                        i += 1;
                    }
                    None => i = n,
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        let end = i + 1;
                        self.in_message = false;
                        // A message can arrive whole in one read: the limit applies to it too.
                        if carried + (end - begin) > self.max {
                            return Err(FrameError::TooLarge(self.max));
                        }
                        self.len = 0;
                        return Ok(Some(end));
                    }
                }
                _ => {}
            }
            i += 1;
        }
        if self.in_message {
            self.len = carried + (n - begin);
            if self.len > self.max {
                return Err(FrameError::TooLarge(self.max));
            }
        }
        Ok(None)
    }
}

/// Splits a byte stream into whole messages (for tools and tests that need the bytes of each
/// message; the client itself parses while receiving and never holds a whole message).
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Next byte to scan.
    pos: usize,
    scanner: FrameScanner,
}

impl FrameDecoder {
    /// A decoder that refuses messages longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameDecoder {
            buf: Vec::with_capacity(64 * 1024),
            pos: 0,
            scanner: FrameScanner::new(max),
        }
    }

    /// The buffer to read more bytes into (append only).
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Appends bytes (for callers that do not read into [`FrameDecoder::buffer`]).
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held but not yet handed out.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Returns the next complete message, if the buffer holds one.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let scanned = self.scanner.scan(&self.buf[self.pos..])?;
        match scanned {
            Some(off) => {
                let end = self.pos + off;
                let frame: Vec<u8> = self.buf.drain(..end).collect();
                self.pos = 0;
                let text = frame.trim_ascii_start();
                Ok(Some(text.to_vec()))
            }
            None => {
                self.pos = self.buf.len();
                if !self.scanner.in_message() {
                    // Only whitespace so far: drop it.
                    self.buf.clear();
                    self.pos = 0;
                }
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(d: &mut FrameDecoder) -> Vec<String> {
        let mut v = vec![];
        while let Some(f) = d.next_frame().unwrap() {
            v.push(String::from_utf8(f).unwrap());
        }
        v
    }

    #[test]
    fn splits_any_chunking() {
        let text = r#"{"a":"}{\"x"} [1,[2]]{"b":{"c":"\\"}}"#;
        for chunk in 1..text.len() {
            let mut d = FrameDecoder::new(1 << 20);
            let mut got = vec![];
            for c in text.as_bytes().chunks(chunk) {
                d.extend(c);
                got.extend(all(&mut d));
            }
            assert_eq!(
                got,
                vec![r#"{"a":"}{\"x"}"#, "[1,[2]]", r#"{"b":{"c":"\\"}}"#],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn limits_size_and_garbage() {
        let mut d = FrameDecoder::new(8);
        d.extend(b"{\"aaaaaaaaaaaa");
        assert_eq!(d.next_frame(), Err(FrameError::TooLarge(8)));
        let mut d = FrameDecoder::new(8);
        d.extend(b"{\"a\":\"0123456789\"}");
        assert_eq!(
            d.next_frame(),
            Err(FrameError::TooLarge(8)),
            "a whole message counts too"
        );
        let mut d = FrameDecoder::new(8);
        d.extend(b"[1234,7] {\"a\":1}");
        assert_eq!(
            d.next_frame().unwrap().unwrap(),
            b"[1234,7]",
            "exactly the limit is fine"
        );
        assert_eq!(d.next_frame().unwrap().unwrap(), b"{\"a\":1}");
        let mut d = FrameDecoder::new(8);
        d.extend(b"  x");
        assert_eq!(d.next_frame(), Err(FrameError::Garbage(b'x')));
    }
}
