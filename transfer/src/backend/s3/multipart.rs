//! Multipart puts: create, put the parts from a few threads, complete; on
//! any failure abort, so no orphaned parts stay billed in the bucket.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use rusty_s3::actions::{
    AbortMultipartUpload, CompleteMultipartUpload, CreateMultipartUpload, UploadPart,
};
use rusty_s3::S3Action;

use super::http::XML_LIMIT;
use super::{S3, SIGNATURE_TTL};
use crate::error::{Error, Result};

/// S3's most parts per upload.
const MAX_PARTS: u64 = 10_000;

impl S3 {
    /// Puts `data` under `key` in parts of the configured size, several at a
    /// time. The object appears whole at complete, or not at all.
    pub(super) fn put_multipart(&self, key: &str, data: &[u8]) -> Result<()> {
        let len = data.len() as u64;
        // Grow the parts if the object would need more than S3 allows.
        let part_size = self.cfg.part_size.max(len.div_ceil(MAX_PARTS));
        let parts: Vec<&[u8]> = data.chunks(part_size as usize).collect();
        let upload_id = self.create_upload(key)?;
        let result = self
            .put_parts(key, &upload_id, &parts)
            .and_then(|etags| self.complete_upload(key, &upload_id, &etags));
        if result.is_err() {
            // Best effort: a failed abort leaves parts a bucket lifecycle
            // rule (AbortIncompleteMultipartUpload) removes; the put's own
            // error is the one to report.
            let _ = self.abort_upload(key, &upload_id);
        }
        result
    }

    fn create_upload(&self, key: &str) -> Result<String> {
        let full = self.full_key(key);
        let url =
            CreateMultipartUpload::new(&self.bucket, Some(&self.creds), &full).sign(SIGNATURE_TTL);
        let reply = self.send("put", key, "POST", url.as_str(), &[], Some(&[]))?;
        if !(200..=299).contains(&reply.status) {
            return Err(self.status_error("put", key, reply));
        }
        let body = self.xml_body(key, reply)?;
        CreateMultipartUpload::parse_response(&body)
            .map(|r| r.upload_id().to_string())
            .map_err(|e| {
                self.bad_reply(key, format!("unreadable CreateMultipartUpload reply: {e}"))
            })
    }

    /// Puts every part, `part_parallelism` at a time; the etags in part order.
    fn put_parts(&self, key: &str, upload_id: &str, parts: &[&[u8]]) -> Result<Vec<String>> {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let etags: Mutex<Vec<Option<String>>> = Mutex::new(vec![None; parts.len()]);
        let first_error: Mutex<Option<Error>> = Mutex::new(None);
        let workers = self.cfg.part_parallelism.clamp(1, parts.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= parts.len() || failed.load(Ordering::SeqCst) {
                        return;
                    }
                    match self.put_part(key, upload_id, i, parts[i]) {
                        Ok(etag) => {
                            etags.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(etag);
                        }
                        Err(e) => {
                            failed.store(true, Ordering::SeqCst);
                            first_error
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(e);
                            return;
                        }
                    }
                });
            }
        });
        if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
        etags
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .map(|t| t.ok_or_else(|| self.bad_reply(key, "a part has no ETag".into())))
            .collect()
    }

    fn put_part(&self, key: &str, upload_id: &str, index: usize, data: &[u8]) -> Result<String> {
        let full = self.full_key(key);
        let number = u16::try_from(index + 1)
            .map_err(|_| self.bad_reply(key, "more than 10000 parts".into()))?;
        let url = UploadPart::new(&self.bucket, Some(&self.creds), &full, number, upload_id)
            .sign(SIGNATURE_TTL);
        let reply = self.send("put", key, "PUT", url.as_str(), &[], Some(data))?;
        if !(200..=299).contains(&reply.status) {
            return Err(self.status_error("put", key, reply));
        }
        reply
            .header("etag")
            .map(str::to_string)
            .ok_or_else(|| self.bad_reply(key, format!("part {number} was stored without an ETag")))
    }

    fn complete_upload(&self, key: &str, upload_id: &str, etags: &[String]) -> Result<()> {
        let full = self.full_key(key);
        let action = CompleteMultipartUpload::new(
            &self.bucket,
            Some(&self.creds),
            &full,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(SIGNATURE_TTL);
        let body = action.body();
        let reply = self.send(
            "put",
            key,
            "POST",
            url.as_str(),
            &[("content-type", "application/xml")],
            Some(body.as_bytes()),
        )?;
        if !(200..=299).contains(&reply.status) {
            return Err(self.status_error("put", key, reply));
        }
        // S3 may answer 200 and report the failure in the body.
        let text = self.xml_body(key, reply)?;
        if text.contains("<Error>") {
            let code = super::http::xml_text(&text, "Code").unwrap_or_default();
            return Err(Error::Backend {
                op: "put",
                key: self.display_key(key),
                transient: matches!(code.as_str(), "InternalError" | "SlowDown"),
                message: format!("completing the multipart upload failed: {code}"),
            });
        }
        Ok(())
    }

    /// Starts a multipart upload of `key` and leaves it open; returns its
    /// id. [`crate::Backend::put`] does this itself; this is for tools and
    /// tests that need an upload such as a killed process leaves behind.
    pub fn begin_upload(&self, key: &str) -> Result<String> {
        crate::backend::validate_key(key)?;
        self.create_upload(key)
    }

    /// Puts part `number` (1 to 10000) of the open upload `upload_id` of
    /// `key`; returns the part's ETag. An aborted or completed upload
    /// refuses it.
    pub fn put_upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u16,
        data: &[u8],
    ) -> Result<String> {
        crate::backend::validate_key(key)?;
        let index = usize::from(number)
            .checked_sub(1)
            .ok_or_else(|| Error::InvalidInput("multipart part numbers start at 1".into()))?;
        self.put_part(key, upload_id, index, data)
    }

    /// Aborts the upload `upload_id` of `key`, removing its parts; an upload
    /// that is already gone is fine.
    pub fn abort_upload(&self, key: &str, upload_id: &str) -> Result<()> {
        let full = self.full_key(key);
        let url = AbortMultipartUpload::new(&self.bucket, Some(&self.creds), &full, upload_id)
            .sign(SIGNATURE_TTL);
        let reply = self.send("put", key, "DELETE", url.as_str(), &[], None)?;
        match reply.status {
            200..=299 | 404 => Ok(()),
            _ => Err(self.status_error("put", key, reply)),
        }
    }

    fn xml_body(&self, key: &str, reply: super::http::Reply) -> Result<String> {
        let bytes = reply
            .bytes(XML_LIMIT)
            .map_err(|e| self.transport_error("put", key, ureq::Error::Io(e)))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn bad_reply(&self, key: &str, message: String) -> Error {
        Error::Backend {
            op: "put",
            key: self.display_key(key),
            transient: true,
            message,
        }
    }
}
