//! An S3-compatible backend: rusty-s3 signs each request (no I/O), ureq
//! sends it (sync, one connection pool per backend, a timeout on every
//! request). No async runtime, so it fits the sync [`Backend`] trait.
//!
//! Requests per operation: `put` one PUT up to the multipart threshold (a
//! whole pack by default), else create + parallel parts + complete (abort on
//! failure); `get_range` one ranged GET (the download coalesces neighbouring
//! pieces into one range); `list` one ListObjectsV2 per 1000 keys;
//! `delete_many` one DeleteObjects per 1000 keys; `sweep_stale_temp` one
//! ListMultipartUploads per 1000 open uploads and an abort per stale one
//! (see [`uploads`]). Nothing here retries: see
//! [`http`] for how failures are classified for the caller's retry policy.

mod config;
mod http;
mod multipart;
mod uploads;

use std::time::Duration;

use rusty_s3::actions::{
    DeleteObject, DeleteObjects, GetObject, HeadBucket, HeadObject, ListObjectsV2,
    ObjectIdentifier, PutObject,
};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

pub use config::{
    parse_location, S3Config, KNOWN_PROPERTIES, MIN_PART_SIZE, PROP_ACCESS_KEY, PROP_ENDPOINT,
    PROP_MULTIPART_THRESHOLD, PROP_PART_SIZE, PROP_PATH_STYLE, PROP_REGION,
    PROP_REQUEST_TIMEOUT_MS, PROP_SECRET_KEY,
};

pub use uploads::OpenUpload;

use super::{validate_key, validate_prefix, Backend, StreamSink};
use crate::error::{Error, Result};
use http::XML_LIMIT;

/// How long a signature stays valid; requests are signed just before sending.
const SIGNATURE_TTL: Duration = Duration::from_secs(3600);
/// Keys per ListObjectsV2 request (S3's maximum); DeleteObjects takes
/// [`super::DELETE_BATCH`].
const BATCH: usize = 1000;
/// A streamed GET hands its bytes over this many at a time: small enough
/// that the socket keeps receiving while the caller writes a slice.
const STREAM_SLICE: u64 = 1 << 20;

/// An S3 bucket (and key prefix) as a [`Backend`].
pub struct S3 {
    cfg: S3Config,
    bucket: Bucket,
    creds: Credentials,
    agent: ureq::Agent,
}

impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3")
            .field("location", &self.cfg.location())
            .field("endpoint", &self.cfg.endpoint)
            .finish_non_exhaustive()
    }
}

impl S3 {
    /// A backend for `cfg`. Sends nothing; [`S3::check_bucket`] does.
    pub fn new(cfg: S3Config) -> Result<Self> {
        let style = if cfg.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bad_endpoint = |reason: String| {
            Error::Config(format!(
                "\"aws.s3.endpoint\" '{}' for {}: {reason}",
                cfg.endpoint, cfg.user
            ))
        };
        let endpoint = cfg
            .endpoint
            .parse()
            .map_err(|e| bad_endpoint(format!("{e}")))?;
        let bucket =
            Bucket::new(endpoint, style, cfg.bucket.clone(), cfg.region.clone()).map_err(|e| {
                bad_endpoint(format!(
                    "{e} (for an IP address or a self-hosted server set \
                     \"aws.s3.enable_path_style_access\" = \"true\")"
                ))
            })?;
        let creds = Credentials::new(cfg.access_key.clone(), cfg.secret_key.expose());
        let agent_cfg = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(cfg.connect_timeout))
            .timeout_global(Some(cfg.request_timeout))
            .max_idle_connections_per_host(64)
            .build();
        Ok(Self {
            cfg,
            bucket,
            creds,
            agent: ureq::Agent::new_with_config(agent_cfg),
        })
    }

    /// The settings this backend was made from.
    pub fn config(&self) -> &S3Config {
        &self.cfg
    }

    /// Checks that the endpoint answers, the bucket exists and the
    /// credentials are accepted, in one HEAD request; the error says which
    /// failed. CREATE REPOSITORY calls it so a bad location is refused there.
    pub fn check_bucket(&self) -> Result<()> {
        let url = HeadBucket::new(&self.bucket, Some(&self.creds)).sign(SIGNATURE_TTL);
        let reply = self
            .send("head", "", "HEAD", url.as_str(), &[], None)
            .map_err(|e| match e {
                Error::Backend {
                    op, key, message, ..
                } => Error::Backend {
                    op,
                    key,
                    transient: false,
                    message: format!("S3 endpoint is not reachable: {message}"),
                },
                e => e,
            })?;
        match reply.status {
            200..=299 => Ok(()),
            404 => Err(self.no_such_bucket("head", "")),
            _ => Err(self.status_error("head", "", reply)),
        }
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.cfg.prefix)
    }

    fn put_object(&self, key: &str, data: &[u8], if_absent: bool) -> Result<bool> {
        let full = self.full_key(key);
        let mut action = PutObject::new(&self.bucket, Some(&self.creds), &full);
        if if_absent {
            action.headers_mut().insert("if-none-match", "*");
        }
        let url = action.sign(SIGNATURE_TTL);
        let headers: &[(&str, &str)] = if if_absent {
            &[("if-none-match", "*")]
        } else {
            &[]
        };
        let reply = self.send("put", key, "PUT", url.as_str(), headers, Some(data))?;
        match reply.status {
            200..=299 => Ok(true),
            412 if if_absent => Ok(false),
            // Another conditional write to the key is in flight: ask again.
            409 if if_absent => Err(Error::Backend {
                op: "put",
                key: self.display_key(key),
                transient: true,
                message: "a concurrent conditional write to the same key is in progress".into(),
            }),
            _ => Err(self.status_error("put", key, reply)),
        }
    }

    /// Sends a GET of `key` (of `range` = (offset, len) when given) and
    /// checks the status; returns the reply and how many leading bytes of
    /// its body to drop (a server that ignores Range sends the whole object).
    fn open_get(
        &self,
        op: &'static str,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> Result<(http::Reply, u64)> {
        validate_key(key)?;
        let full = self.full_key(key);
        let mut action = GetObject::new(&self.bucket, Some(&self.creds), &full);
        let range_header =
            range.map(|(offset, len)| format!("bytes={offset}-{}", offset + len - 1));
        if let Some(r) = &range_header {
            action.headers_mut().insert("range", r.clone());
        }
        let url = action.sign(SIGNATURE_TTL);
        let headers: Vec<(&str, &str)> = range_header
            .as_deref()
            .map(|r| vec![("range", r)])
            .unwrap_or_default();
        let reply = self.send(op, key, "GET", url.as_str(), &headers, None)?;
        match (reply.status, range) {
            (416, Some((offset, len))) => return Err(past_end(key, offset, len, "a shorter")),
            (200..=299, _) => {}
            _ => return Err(self.status_error(op, key, reply)),
        }
        let skip = match (reply.status, range) {
            (200, Some((offset, _))) => offset,
            _ => 0,
        };
        Ok((reply, skip))
    }

    fn get_into(
        &self,
        op: &'static str,
        key: &str,
        range: Option<(u64, u64)>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let (mut reply, skip) = self.open_get(op, key, range)?;
        let expected = match range {
            Some((_, len)) => Some(len),
            None => reply
                .header("content-length")
                .and_then(|v| v.parse::<u64>().ok()),
        };
        buf.clear();
        // Size the buffer by what the server says it sends, never by the
        // requested range alone: that comes from a manifest, i.e. the repository.
        let sent = reply
            .header("content-length")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        buf.reserve(usize::try_from(sent.min(expected.unwrap_or(sent))).unwrap_or(0));
        let read_err = |e: std::io::Error| self.transport_error(op, key, ureq::Error::Io(e));
        {
            use std::io::Read;
            let mut reader = reply.body.as_reader();
            if skip > 0 {
                std::io::copy(&mut (&mut reader).take(skip), &mut std::io::sink())
                    .map_err(read_err)?;
            }
            let limit = expected.map_or(u64::MAX, |n| n.saturating_add(1));
            reader.take(limit).read_to_end(buf).map_err(read_err)?;
        }
        if let Some((offset, len)) = range {
            if (buf.len() as u64) < len {
                return Err(past_end(key, offset, len, "a shorter"));
            }
            buf.truncate(len as usize);
        }
        Ok(())
    }

    /// Checks a ranged read of `key` before any request: the key, and a
    /// range that overflows. An empty range is not expressible in HTTP: its
    /// bounds are checked with a HEAD and no GET is needed (`false`).
    fn range_needs_get(&self, key: &str, offset: u64, len: u64) -> Result<bool> {
        validate_key(key)?;
        if offset.checked_add(len).is_none() {
            return Err(past_end(key, offset, len, "the"));
        }
        if len > 0 {
            return Ok(true);
        }
        match self.head(key)? {
            None => Err(Error::NotFound {
                key: self.display_key(key),
            }),
            Some(size) if offset > size => Err(past_end(key, offset, len, "the")),
            Some(_) => Ok(false),
        }
    }

    /// One ranged GET of `len` (> 0) bytes at `offset`, handed to `sink` in
    /// slices of [`STREAM_SLICE`] as they arrive.
    fn get_stream(
        &self,
        key: &str,
        offset: u64,
        len: u64,
        buf: &mut Vec<u8>,
        sink: &mut StreamSink<'_>,
    ) -> Result<()> {
        use std::io::Read;
        const OP: &str = "get_range";
        let (mut reply, skip) = self.open_get(OP, key, Some((offset, len)))?;
        let read_err = |e: std::io::Error| self.transport_error(OP, key, ureq::Error::Io(e));
        let mut reader = reply.body.as_reader();
        if skip > 0 {
            std::io::copy(&mut (&mut reader).take(skip), &mut std::io::sink()).map_err(read_err)?;
        }
        let slice = usize::try_from(len.min(STREAM_SLICE)).unwrap_or(STREAM_SLICE as usize);
        if buf.len() < slice {
            buf.resize(slice, 0);
        }
        let mut left = len;
        while left > 0 {
            let want = usize::try_from(left.min(STREAM_SLICE)).unwrap_or(slice);
            let mut filled = 0;
            while filled < want {
                match reader.read(&mut buf[filled..want]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // What arrived whole is delivered: a retry asks for the rest.
                        if filled > 0 {
                            sink(&buf[..filled])?;
                        }
                        return Err(read_err(e));
                    }
                }
            }
            if filled == 0 {
                return Err(past_end(key, offset, len, "a shorter"));
            }
            sink(&buf[..filled])?;
            left -= filled as u64;
        }
        Ok(())
    }

    fn list_page(
        &self,
        full_prefix: &str,
        token: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>)> {
        let mut action = ListObjectsV2::new(&self.bucket, Some(&self.creds));
        action.with_prefix(full_prefix);
        action.with_max_keys(BATCH);
        if let Some(t) = token {
            action.with_continuation_token(t);
        }
        let url = action.sign(SIGNATURE_TTL);
        let reply = self.send("list", full_prefix, "GET", url.as_str(), &[], None)?;
        if reply.status == 404 {
            return Err(self.no_such_bucket("list", full_prefix));
        }
        if !(200..=299).contains(&reply.status) {
            return Err(self.status_error("list", full_prefix, reply));
        }
        let body = reply
            .bytes(XML_LIMIT)
            .map_err(|e| self.transport_error("list", full_prefix, ureq::Error::Io(e)))?;
        let text = String::from_utf8_lossy(&body);
        let parsed = ListObjectsV2::parse_response(&text).map_err(|e| Error::Backend {
            op: "list",
            key: self.display_key(full_prefix),
            transient: true,
            message: format!("unreadable ListObjectsV2 response: {e}"),
        })?;
        let keys = parsed.contents.into_iter().map(|c| c.key).collect();
        Ok((
            keys,
            parsed.next_continuation_token.filter(|t| !t.is_empty()),
        ))
    }

    fn delete_batch(&self, keys: &[String]) -> Result<()> {
        let ids: Vec<ObjectIdentifier> = keys
            .iter()
            .map(|k| ObjectIdentifier::new(self.full_key(k)))
            .collect();
        let mut action = DeleteObjects::new(&self.bucket, Some(&self.creds), ids.iter());
        action.set_quiet(true);
        let url = action.sign(SIGNATURE_TTL);
        let (body, md5) = action.body_with_md5();
        let first = keys.first().map(String::as_str).unwrap_or("");
        let reply = self.send(
            "delete",
            first,
            "POST",
            url.as_str(),
            &[("content-md5", &md5), ("content-type", "application/xml")],
            Some(body.as_bytes()),
        )?;
        if !(200..=299).contains(&reply.status) {
            return Err(self.status_error("delete", first, reply));
        }
        let text = reply
            .bytes(XML_LIMIT)
            .map_err(|e| self.transport_error("delete", first, ureq::Error::Io(e)))?;
        let text = String::from_utf8_lossy(&text);
        self.check_delete_result(&text, keys.len())
    }

    /// Turns the keys a DeleteObjects response lists as not deleted into an
    /// error naming the bucket and the first such key. S3 answers 200 even
    /// when some keys failed; in quiet mode it lists only those (s3s-fs
    /// ignores quiet mode and lists every deleted key as well, and fails
    /// the whole request instead of reporting a key).
    fn check_delete_result(&self, xml: &str, sent: usize) -> Result<()> {
        let failures: Vec<(String, String, String)> = http::xml_blocks(xml, "Error")
            .into_iter()
            .map(|e| {
                (
                    http::xml_text(e, "Key").unwrap_or_default(),
                    http::xml_text(e, "Code").unwrap_or_default(),
                    http::xml_text(e, "Message").unwrap_or_default(),
                )
            })
            .collect();
        let Some((key, code, message)) = failures.first() else {
            return Ok(());
        };
        let transient = failures.iter().all(|(_, code, _)| {
            matches!(
                code.as_str(),
                "InternalError" | "SlowDown" | "ServiceUnavailable" | "RequestTimeout"
            )
        });
        let detail = if message.is_empty() {
            code.clone()
        } else {
            format!("{code}: {message}")
        };
        let others = match failures.len() {
            1 => String::new(),
            n => format!(
                "; {} other keys of the {sent} in the request were not deleted either",
                n - 1
            ),
        };
        Err(Error::Backend {
            op: "delete",
            key: format!("s3://{}/{key}", self.cfg.bucket),
            transient,
            message: format!(
                "{} did not delete the object ({detail}){others}",
                self.cfg.endpoint
            ),
        })
    }
}

fn past_end(key: &str, offset: u64, len: u64, size: &str) -> Error {
    Error::Corrupt {
        what: format!("object '{key}'"),
        reason: format!("range {offset}+{len} is past the end of {size} object"),
    }
}

impl Backend for S3 {
    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        validate_key(key)?;
        if data.len() as u64 > self.cfg.multipart_threshold {
            return self.put_multipart(key, data);
        }
        self.put_object(key, data, false).map(|_| ())
    }

    fn put_if_absent(&self, key: &str, data: &[u8]) -> Result<bool> {
        validate_key(key)?;
        self.put_object(key, data, true)
    }

    fn get(&self, key: &str) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.get_into("get", key, None, &mut buf)?;
        Ok(buf)
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.get_range_into(key, offset, len, &mut buf)?;
        Ok(buf)
    }

    fn get_range_into(&self, key: &str, offset: u64, len: u64, buf: &mut Vec<u8>) -> Result<()> {
        if !self.range_needs_get(key, offset, len)? {
            buf.clear();
            return Ok(());
        }
        self.get_into("get_range", key, Some((offset, len)), buf)
    }

    fn get_range_stream(
        &self,
        key: &str,
        offset: u64,
        len: u64,
        buf: &mut Vec<u8>,
        sink: &mut StreamSink<'_>,
    ) -> Result<()> {
        if !self.range_needs_get(key, offset, len)? {
            return Ok(());
        }
        self.get_stream(key, offset, len, buf, sink)
    }

    fn requests_in_flight(&self) -> Option<usize> {
        Some(self.cfg.requests_in_flight)
    }

    fn head(&self, key: &str) -> Result<Option<u64>> {
        validate_key(key)?;
        let full = self.full_key(key);
        let url = HeadObject::new(&self.bucket, Some(&self.creds), &full).sign(SIGNATURE_TTL);
        let reply = self.send("head", key, "HEAD", url.as_str(), &[], None)?;
        match reply.status {
            200..=299 => reply
                .header("content-length")
                .and_then(|v| v.parse::<u64>().ok())
                .map(Some)
                .ok_or_else(|| Error::Backend {
                    op: "head",
                    key: self.display_key(key),
                    transient: true,
                    message: "the response has no Content-Length".into(),
                }),
            404 => Ok(None),
            _ => Err(self.status_error("head", key, reply)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        let full_prefix = self.full_key(prefix);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (keys, next) = self.list_page(&full_prefix, token.as_deref())?;
            out.extend(
                keys.into_iter()
                    .filter_map(|k| k.strip_prefix(&self.cfg.prefix).map(str::to_string)),
            );
            match next {
                Some(t) if token.as_deref() != Some(t.as_str()) => token = Some(t),
                _ => break,
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        let full = self.full_key(key);
        let url = DeleteObject::new(&self.bucket, Some(&self.creds), &full).sign(SIGNATURE_TTL);
        let reply = self.send("delete", key, "DELETE", url.as_str(), &[], None)?;
        match reply.status {
            200..=299 | 404 => Ok(()),
            _ => Err(self.status_error("delete", key, reply)),
        }
    }

    fn delete_many(&self, keys: &[String]) -> Result<()> {
        for k in keys {
            validate_key(k)?;
        }
        for batch in keys.chunks(super::DELETE_BATCH) {
            self.delete_batch(batch)?;
        }
        Ok(())
    }

    /// Puts leave no temp objects on S3, but a process killed inside a
    /// multipart put leaves its upload open: aborts those under `prefix`
    /// started more than `older_than` ago. Nothing to do (0) on a server
    /// without ListMultipartUploads.
    fn sweep_stale_temp(&self, prefix: &str, older_than: Duration) -> Result<u64> {
        validate_prefix(prefix)?;
        // `prefix` names a directory: "r" must not reach "r2/".
        let dir = match prefix {
            "" => String::new(),
            p if p.ends_with('/') => p.to_string(),
            p => format!("{p}/"),
        };
        self.sweep_open_uploads(&dir, older_than)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> S3Config {
        let props = [
            (PROP_ENDPOINT, "http://127.0.0.1:1"),
            (PROP_ACCESS_KEY, "AK"),
            (PROP_SECRET_KEY, "the-secret-value"),
            (PROP_REQUEST_TIMEOUT_MS, "2000"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        S3Config::from_properties("s3://bkt/pre", &props).expect("config")
    }

    #[test]
    fn debug_hides_the_secret() {
        let s3 = S3::new(cfg()).expect("backend");
        let shown = format!("{s3:?} {:?}", s3.config());
        assert!(!shown.contains("the-secret-value"), "{shown}");
    }

    #[test]
    fn delete_objects_reports_keys_it_did_not_delete() {
        let s3 = S3::new(cfg()).expect("backend");
        // Quiet mode (S3): only the failures are listed.
        let quiet = r#"<?xml version="1.0" encoding="UTF-8"?>
<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Error><Key>pre/p/1.pack</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>
  <Error><Key>pre/p/2 &amp; 3.pack</Key><Code>InternalError</Code><Message>oops</Message></Error>
</DeleteResult>"#;
        let e = s3
            .check_delete_result(quiet, 1000)
            .expect_err("two keys failed");
        let msg = e.to_string();
        assert!(!e.is_retryable(), "AccessDenied is permanent: {msg}");
        assert!(msg.contains("s3://bkt/pre/p/1.pack"), "{msg}");
        assert!(msg.contains("AccessDenied: Access Denied"), "{msg}");
        assert!(msg.contains("1 other keys of the 1000"), "{msg}");
        let only_transient = r#"<DeleteResult><Deleted><Key>pre/a</Key></Deleted>
<Error><Key>pre/b</Key><Code>SlowDown</Code></Error></DeleteResult>"#;
        let e = s3
            .check_delete_result(only_transient, 2)
            .expect_err("b failed");
        assert!(e.is_retryable(), "{e}");
        assert!(e.to_string().contains("s3://bkt/pre/b"), "{e}");
        // Every key deleted (a server that ignores quiet mode lists them all).
        let all = "<DeleteResult><Deleted><Key>pre/a</Key></Deleted>\
                   <Deleted><Key>pre/b</Key></Deleted></DeleteResult>";
        s3.check_delete_result(all, 2).expect("nothing failed");
        s3.check_delete_result("<DeleteResult/>", 2)
            .expect("quiet, nothing failed");
    }

    #[test]
    fn unreachable_endpoint_is_transient_then_refused_clearly() {
        let s3 = S3::new(cfg()).expect("backend");
        let e = s3.head("k").expect_err("nothing listens on port 1");
        assert!(e.is_retryable(), "{e}");
        let e = s3.check_bucket().expect_err("nothing listens on port 1");
        let msg = e.to_string();
        assert!(msg.contains("not reachable"), "{msg}");
        assert!(
            !msg.contains("the-secret-value") && !msg.contains("X-Amz"),
            "{msg}"
        );
    }
}
