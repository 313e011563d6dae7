//! Stream adapters around a connection, for what opensrv-mysql 0.7 does not
//! let its user decide:
//!
//! - the greeting advertises CLIENT_MULTI_STATEMENTS and CLIENT_MULTI_RESULTS
//!   (so clients may enable them) and not CLIENT_DEPRECATE_EOF (with it the
//!   crate ends a result set with an OK packet that never carries
//!   SERVER_MORE_RESULTS_EXISTS, which breaks multi-statement replies);
//! - a wrong password comes back as 1045 (28000) "Access denied ...", as
//!   MySQL and StarRocks say, instead of the crate's hard-coded 1698;
//! - the capability flags the client sent are recorded, so the shim knows
//!   whether it enabled multi-statements.
//!
//! Writes are buffered until the crate flushes (it does after every reply),
//! so each rewrite sees whole packets.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// CLIENT_MULTI_STATEMENTS.
pub const MULTI_STATEMENTS: u32 = 1 << 16;
const MULTI_RESULTS: u32 = 1 << 17;
const DEPRECATE_EOF: u32 = 1 << 24;
/// ER_ACCESS_DENIED_NO_PASSWORD_ERROR, what the crate sends for a failed login.
const CRATE_AUTH_ERROR: u16 = 1698;
/// ER_ACCESS_DENIED_ERROR.
const ACCESS_DENIED: u16 = 1045;
/// Past this many buffered bytes, writes go through before the flush.
const BUFFER_LIMIT: usize = 64 * 1024;

/// What the shim and the adapters share about one connection.
#[derive(Debug, Default)]
pub struct Shared {
    /// The client's capability flags (0 until its handshake arrived).
    pub client_caps: AtomicU32,
    /// Set by a failed login: the 1045 message to send instead of the crate's.
    pub denied: Mutex<Option<String>>,
}

/// Records the capability flags of the client's first packet.
pub struct Sniff<R> {
    inner: R,
    shared: Arc<Shared>,
    head: Vec<u8>,
}

impl<R> Sniff<R> {
    /// Wraps the read half.
    pub fn new(inner: R, shared: Arc<Shared>) -> Self {
        Sniff {
            inner,
            shared,
            head: Vec::with_capacity(8),
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Sniff<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.head.len() < 8 {
            let new = &buf.filled()[before..];
            let take = new.len().min(8 - this.head.len());
            this.head.extend_from_slice(&new[..take]);
            if this.head.len() == 8 {
                // 3-byte length, sequence id, then the 4-byte capability flags.
                let caps =
                    u32::from_le_bytes([this.head[4], this.head[5], this.head[6], this.head[7]]);
                this.shared.client_caps.store(caps, Ordering::SeqCst);
            }
        }
        res
    }
}

/// Buffers writes and rewrites the greeting and a failed login's error.
pub struct Patch<W> {
    inner: W,
    shared: Arc<Shared>,
    buf: Vec<u8>,
    written: usize,
    greeted: bool,
}

impl<W> Patch<W> {
    /// Wraps the write half.
    pub fn new(inner: W, shared: Arc<Shared>) -> Self {
        Patch {
            inner,
            shared,
            buf: Vec::new(),
            written: 0,
            greeted: false,
        }
    }

    /// Applies the rewrites to what is buffered and not yet written.
    fn rewrite(&mut self) {
        if self.written != 0 {
            return;
        }
        if !self.greeted {
            patch_greeting(&mut self.buf);
            self.greeted = true;
        }
        let denied = self
            .shared
            .denied
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default();
        if let Some(message) = denied {
            replace_auth_error(&mut self.buf, &message);
        }
    }
}

impl<W: AsyncWrite + Unpin> Patch<W> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.rewrite();
        while self.written < self.buf.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => self.written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.buf.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Patch<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.buf.len() + data.len() > BUFFER_LIMIT && !this.buf.is_empty() {
            match this.poll_drain(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        this.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.poll_drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.poll_drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

/// In a HandshakeV10 packet: adds MULTI_STATEMENTS and MULTI_RESULTS to the
/// upper capability bytes and removes DEPRECATE_EOF.
fn patch_greeting(buf: &mut [u8]) {
    // header(4) 0x0a version\0 conn_id(4) scramble1(8) filler(1) caps_low(2)
    // charset(1) status(2) caps_high(2)
    if buf.len() < 5 || buf[4] != 10 {
        return;
    }
    let Some(nul) = buf[5..].iter().position(|b| *b == 0) else {
        return;
    };
    let high = 5 + nul + 1 + 4 + 8 + 1 + 2 + 1 + 2;
    if buf.len() < high + 2 {
        return;
    }
    let mut caps = u16::from_le_bytes([buf[high], buf[high + 1]]);
    caps |= ((MULTI_STATEMENTS | MULTI_RESULTS) >> 16) as u16;
    caps &= !((DEPRECATE_EOF >> 16) as u16);
    buf[high..high + 2].copy_from_slice(&caps.to_le_bytes());
}

/// Replaces the crate's 1698 error packet in `buf` with a 1045 one saying `message`.
fn replace_auth_error(buf: &mut Vec<u8>, message: &str) {
    let mut at = 0;
    while at + 4 <= buf.len() {
        let len =
            usize::from(buf[at]) | usize::from(buf[at + 1]) << 8 | usize::from(buf[at + 2]) << 16;
        let seq = buf[at + 3];
        let end = at + 4 + len;
        if end > buf.len() {
            return;
        }
        let payload = &buf[at + 4..end];
        if payload.len() >= 3
            && payload[0] == 0xff
            && u16::from_le_bytes([payload[1], payload[2]]) == CRATE_AUTH_ERROR
        {
            let mut new = vec![0xff];
            new.extend_from_slice(&ACCESS_DENIED.to_le_bytes());
            new.extend_from_slice(b"#28000");
            new.extend_from_slice(message.as_bytes());
            let n = new.len().min(0xff_ffff);
            let mut packet = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
            packet.extend_from_slice(&new[..n]);
            buf.splice(at..end, packet);
            return;
        }
        at = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_error_is_rewritten_in_place() {
        let mut buf = vec![
            9, 0, 0, 2, 0xff, 0xa2, 0x06, b'#', b'2', b'8', b'0', b'0', b'0',
        ];
        buf.extend_from_slice(&[1, 0, 0, 3, 0]);
        replace_auth_error(&mut buf, "Access denied");
        assert_eq!(&buf[..4], &[22, 0, 0, 2]);
        assert_eq!(&buf[4..7], &[0xff, 0x15, 0x04]);
        assert_eq!(&buf[7..13], b"#28000");
        assert_eq!(&buf[13..26], b"Access denied");
        assert_eq!(&buf[26..], &[1, 0, 0, 3, 0]);
    }

    #[test]
    fn greeting_gains_multi_statements_and_loses_deprecate_eof() {
        let mut g = vec![0, 0, 0, 0, 10];
        g.extend_from_slice(b"8.0\0");
        g.extend_from_slice(&[0; 4 + 8 + 1 + 2 + 1 + 2]);
        g.extend_from_slice(&0x0100u16.to_le_bytes());
        patch_greeting(&mut g);
        let at = g.len() - 2;
        assert_eq!(u16::from_le_bytes([g[at], g[at + 1]]), 0x0003);
    }
}
