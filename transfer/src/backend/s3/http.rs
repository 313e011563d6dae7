//! Sending one signed S3 request and classifying its failure.
//!
//! Nothing here retries: a failure is returned as transient (5xx, 503
//! SlowDown, 408/429, timeouts, resets, refused connections) or permanent
//! (400, 403, 404, anything else), and the caller's one [`crate::RetryPolicy`]
//! decides. A retry loop here would multiply the transfer layer's attempts.

use std::io::Read;

use crate::error::{Error, Result};

use super::S3;

/// A response whose status the caller handles itself.
pub(super) struct Reply {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: ureq::Body,
}

impl Reply {
    /// A header as a string, if present and printable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The whole body (bounded by `limit` bytes).
    pub fn bytes(mut self, limit: u64) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.body
            .as_reader()
            .take(limit)
            .read_to_end(&mut out)
            .map(|_| out)
    }
}

/// How large an error or listing body may be before it is cut off.
pub(super) const XML_LIMIT: u64 = 16 << 20;

impl S3 {
    /// Sends `method` to the signed `url` with `headers` and `body`; returns
    /// the response whatever its status, or a classified transport error.
    /// `op` and `key` name the operation in errors.
    pub(super) fn send(
        &self,
        op: &'static str,
        key: &str,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Reply> {
        let mut req = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let refused = |e: ureq::http::Error| Error::Backend {
            op,
            key: self.display_key(key),
            transient: false,
            message: format!("building the request failed: {e}"),
        };
        let res = match body {
            Some(b) => self.agent.run(req.body(b).map_err(refused)?),
            None => self.agent.run(req.body(()).map_err(refused)?),
        };
        match res {
            Ok(resp) => {
                let (parts, body) = resp.into_parts();
                Ok(Reply {
                    status: parts.status.as_u16(),
                    headers: parts.headers,
                    body,
                })
            }
            Err(e) => Err(self.transport_error(op, key, e)),
        }
    }

    /// Classifies a failure to exchange a request at all. The message never
    /// holds the URL: a presigned URL carries the access key id.
    pub(super) fn transport_error(&self, op: &'static str, key: &str, e: ureq::Error) -> Error {
        use std::io::ErrorKind as K;
        let (transient, message) = match &e {
            ureq::Error::Timeout(t) => (
                true,
                format!("request timed out ({t}) at {}", self.cfg.endpoint),
            ),
            ureq::Error::Io(io) => (
                matches!(
                    io.kind(),
                    K::ConnectionReset
                        | K::ConnectionAborted
                        | K::ConnectionRefused
                        | K::BrokenPipe
                        | K::TimedOut
                        | K::UnexpectedEof
                        | K::Interrupted
                        | K::WouldBlock
                        | K::NotConnected
                ),
                format!("connection to {} failed: {io}", self.cfg.endpoint),
            ),
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => (
                true,
                format!("cannot connect to {}: {e}", self.cfg.endpoint),
            ),
            // A server closing a kept-alive connection mid-exchange shows up
            // as a protocol error: asking again on a fresh one may work.
            ureq::Error::Protocol(_) => (
                true,
                format!("HTTP exchange with {} failed: {e}", self.cfg.endpoint),
            ),
            _ => (
                false,
                format!("request to {} failed: {e}", self.cfg.endpoint),
            ),
        };
        Error::Backend {
            op,
            key: self.display_key(key),
            transient,
            message,
        }
    }

    /// The error for a response with an unexpected status, from its body's
    /// S3 `<Code>` and `<Message>`. `full_key` is the key in the bucket.
    pub(super) fn status_error(&self, op: &'static str, key: &str, reply: Reply) -> Error {
        let status = reply.status;
        let body = if matches!(op, "head") {
            Vec::new()
        } else {
            reply.bytes(64 << 10).unwrap_or_default()
        };
        let text = String::from_utf8_lossy(&body);
        let code = xml_text(&text, "Code").unwrap_or_default();
        let detail = xml_text(&text, "Message").unwrap_or_default();
        let said = match (code.is_empty(), detail.is_empty()) {
            (true, true) => format!("HTTP {status}"),
            (false, true) => format!("HTTP {status} {code}"),
            (_, false) => format!("HTTP {status} {code}: {detail}"),
        };
        let shown = self.display_key(key);
        if status == 404 && code == "NoSuchBucket" {
            return self.no_such_bucket(op, key);
        }
        if status == 404 {
            return Error::NotFound { key: shown };
        }
        if status == 403 || code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId" {
            return Error::Backend {
                op,
                key: shown,
                transient: false,
                message: format!(
                    "access denied to {} by {} ({said}): check \"aws.s3.access_key\" and \
                     \"aws.s3.secret_key\" and the bucket's permissions",
                    self.cfg.user, self.cfg.endpoint
                ),
            };
        }
        let transient = status >= 500
            || status == 408
            || status == 429
            || matches!(
                code.as_str(),
                "SlowDown" | "RequestTimeout" | "InternalError"
            );
        Error::Backend {
            op,
            key: shown,
            transient,
            message: format!("{} answered {said}", self.cfg.endpoint),
        }
    }

    /// The error for a bucket that does not exist.
    pub(super) fn no_such_bucket(&self, op: &'static str, key: &str) -> Error {
        Error::Backend {
            op,
            key: self.display_key(key),
            transient: false,
            message: format!(
                "bucket '{}' does not exist at {} (create it first)",
                self.cfg.bucket, self.cfg.endpoint
            ),
        }
    }

    /// `s3://bucket/prefix/key`, how errors name an object.
    pub(super) fn display_key(&self, key: &str) -> String {
        format!("s3://{}/{}{}", self.cfg.bucket, self.cfg.prefix, key)
    }
}

/// The text of the first `<tag>...</tag>` in `xml`, unescaped; enough for
/// S3's flat error documents.
pub(super) fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    Some(unescape(&xml[start..start + len]))
}

/// The contents of every `<tag>...</tag>` in `xml`, in order, not
/// unescaped (read fields out of them with [`xml_text`]).
pub(super) fn xml_blocks<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find(&open) {
        let inner = &rest[at + open.len()..];
        let Some(len) = inner.find(&close) else {
            break;
        };
        out.push(&inner[..len]);
        rest = &inner[len + close.len()..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_fields() {
        let x = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>a &amp; b</Message></Error>";
        assert_eq!(xml_text(x, "Code").as_deref(), Some("SlowDown"));
        assert_eq!(xml_text(x, "Message").as_deref(), Some("a & b"));
        assert_eq!(xml_text(x, "Key"), None);
    }
}
