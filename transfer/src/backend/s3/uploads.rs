//! Multipart uploads left open: a process killed in the middle of a
//! multipart put never completes nor aborts its upload, and S3 keeps (and
//! bills) its parts until someone aborts it. The stale-temp sweep that each
//! backup runs lists the open uploads under the repository
//! (ListMultipartUploads, paged) and aborts those started longer ago than
//! the given age.
//!
//! rusty-s3 0.11 has no ListMultipartUploads action, so the request is
//! signed with its generic presigner (`rusty_s3::signing::sign`). A server
//! that does not implement the call (s3s-fs 0.14.1 answers 501
//! NotImplemented) has nothing this sweep can find: it sweeps nothing, and
//! a bucket lifecycle rule (AbortIncompleteMultipartUpload) is the remedy.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusty_s3::Method;

use super::http::{xml_blocks, xml_text, XML_LIMIT};
use super::{S3, SIGNATURE_TTL};
use crate::error::{Error, Result};

/// Uploads per ListMultipartUploads page (S3's maximum).
const PAGE: &str = "1000";
/// Pages one listing may take before it is refused as a loop (10M uploads).
const MAX_PAGES: usize = 10_000;

/// A multipart upload that was started and neither completed nor aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenUpload {
    /// The object key, relative to the backend's prefix.
    pub key: String,
    /// The upload's id.
    pub upload_id: String,
    /// When the server says it was started (ms since the epoch), if it said
    /// so readably.
    pub initiated_ms: Option<u64>,
}

/// One page of a ListMultipartUploads reply.
#[derive(Debug, Default, PartialEq, Eq)]
struct Page {
    /// (full key, upload id, initiated) of each upload.
    uploads: Vec<(String, String, Option<u64>)>,
    /// Where the next page starts: (key marker, upload id marker).
    next: Option<(String, String)>,
}

impl S3 {
    /// The open multipart uploads whose keys start with `prefix` (relative
    /// to the backend's prefix), every page of them; `None` when the server
    /// does not implement ListMultipartUploads.
    pub fn list_open_uploads(&self, prefix: &str) -> Result<Option<Vec<OpenUpload>>> {
        super::validate_prefix(prefix)?;
        let full_prefix = self.full_key(prefix);
        let mut out = Vec::new();
        let mut marker: Option<(String, String)> = None;
        for _ in 0..MAX_PAGES {
            let Some(page) = self.uploads_page(&full_prefix, marker.as_ref())? else {
                return Ok(None);
            };
            out.extend(
                page.uploads
                    .into_iter()
                    .filter_map(|(key, upload_id, initiated_ms)| {
                        Some(OpenUpload {
                            key: key.strip_prefix(&self.cfg.prefix)?.to_string(),
                            upload_id,
                            initiated_ms,
                        })
                    }),
            );
            match page.next {
                // A server that hands back the marker it was given would
                // loop forever: stop at what was listed.
                Some(next) if marker.as_ref() != Some(&next) => marker = Some(next),
                _ => return Ok(Some(out)),
            }
        }
        Err(self.bad_listing(
            &full_prefix,
            format!("more than {MAX_PAGES} pages of multipart uploads"),
        ))
    }

    /// Aborts the open multipart uploads under `prefix` started more than
    /// `older_than` ago (all of them for zero); returns how many. Uploads
    /// whose start time the server did not give readably are left alone
    /// unless `older_than` is zero.
    pub(super) fn sweep_open_uploads(&self, prefix: &str, older_than: Duration) -> Result<u64> {
        let Some(uploads) = self.list_open_uploads(prefix)? else {
            return Ok(0);
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let age_ms = u64::try_from(older_than.as_millis()).unwrap_or(u64::MAX);
        let mut swept = 0;
        for u in uploads {
            let stale = older_than.is_zero()
                || u.initiated_ms
                    .is_some_and(|t| t.saturating_add(age_ms) <= now_ms);
            if stale {
                self.abort_upload(&u.key, &u.upload_id)?;
                swept += 1;
            }
        }
        Ok(swept)
    }

    /// One ListMultipartUploads request; `None` if the server does not
    /// implement it.
    fn uploads_page(
        &self,
        full_prefix: &str,
        marker: Option<&(String, String)>,
    ) -> Result<Option<Page>> {
        let mut query: Vec<(&str, &str)> = vec![
            ("max-uploads", PAGE),
            ("prefix", full_prefix),
            ("uploads", ""),
        ];
        if let Some((key, id)) = marker {
            query.push(("key-marker", key));
            query.push(("upload-id-marker", id));
        }
        // The presigner wants the query sorted by name, then value.
        query.sort_unstable();
        let url = rusty_s3::signing::sign(
            &jiff::Timestamp::now(),
            Method::Get,
            self.bucket.base_url().clone(),
            self.creds.key(),
            self.creds.secret(),
            self.creds.token(),
            self.bucket.region(),
            SIGNATURE_TTL.as_secs(),
            query.iter().copied(),
            std::iter::empty(),
        );
        let reply = self.send("list", full_prefix, "GET", url.as_str(), &[], None)?;
        match reply.status {
            200..=299 => {}
            // S3's answer for an operation the server does not have.
            501 => return Ok(None),
            404 => return Err(self.no_such_bucket("list", full_prefix)),
            _ => {
                let e = self.status_error("list", full_prefix, reply);
                return match &e {
                    Error::Backend { message, .. } if message.contains("NotImplemented") => {
                        Ok(None)
                    }
                    _ => Err(e),
                };
            }
        }
        let body = reply
            .bytes(XML_LIMIT)
            .map_err(|e| self.transport_error("list", full_prefix, ureq::Error::Io(e)))?;
        let text = String::from_utf8_lossy(&body);
        parse_page(&text)
            .map(Some)
            .map_err(|why| self.bad_listing(full_prefix, why))
    }

    fn bad_listing(&self, full_prefix: &str, why: String) -> Error {
        Error::Backend {
            op: "list",
            key: format!("s3://{}/{full_prefix}", self.cfg.bucket),
            transient: true,
            message: format!("unreadable ListMultipartUploads reply: {why}"),
        }
    }
}

/// Reads one ListMultipartUploads reply.
fn parse_page(xml: &str) -> std::result::Result<Page, String> {
    if !xml.contains("<ListMultipartUploadsResult") {
        return Err("no ListMultipartUploadsResult element".into());
    }
    let mut uploads = Vec::new();
    for u in xml_blocks(xml, "Upload") {
        let key = xml_text(u, "Key").ok_or("an upload without a Key")?;
        let id = xml_text(u, "UploadId").ok_or("an upload without an UploadId")?;
        let initiated = xml_text(u, "Initiated")
            .and_then(|t| t.trim().parse::<jiff::Timestamp>().ok())
            .and_then(|t| u64::try_from(t.as_millisecond()).ok());
        uploads.push((key, id, initiated));
    }
    let truncated = xml_text(xml, "IsTruncated").is_some_and(|t| t.trim() == "true");
    let next = if truncated {
        let key = xml_text(xml, "NextKeyMarker").unwrap_or_default();
        let id = xml_text(xml, "NextUploadIdMarker").unwrap_or_default();
        if key.is_empty() {
            return Err("truncated without a NextKeyMarker".into());
        }
        Some((key, id))
    } else {
        None
    };
    Ok(Page { uploads, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_read_with_their_markers() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>bucket</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>pre/b &amp; c</NextKeyMarker><NextUploadIdMarker>id-2</NextUploadIdMarker>
  <MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>pre/a</Key><UploadId>id-1</UploadId>
    <Initiator><ID>x</ID><DisplayName>u</DisplayName></Initiator>
    <StorageClass>STANDARD</StorageClass><Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload>
  <Upload><Key>pre/b &amp; c</Key><UploadId>id-2</UploadId><Initiated>soon</Initiated></Upload>
</ListMultipartUploadsResult>"#;
        let page = parse_page(xml).expect("parses");
        assert_eq!(
            page,
            Page {
                uploads: vec![
                    ("pre/a".into(), "id-1".into(), Some(1_289_422_113_000)),
                    ("pre/b & c".into(), "id-2".into(), None),
                ],
                next: Some(("pre/b & c".into(), "id-2".into())),
            }
        );
        let last = "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>\
                    </ListMultipartUploadsResult>";
        assert_eq!(parse_page(last).expect("parses"), Page::default());
        assert!(parse_page("<ListMultipartUploadsResult><IsTruncated>true</IsTruncated></ListMultipartUploadsResult>").is_err());
        assert!(parse_page("<Error><Code>NotImplemented</Code></Error>").is_err());
    }
}
