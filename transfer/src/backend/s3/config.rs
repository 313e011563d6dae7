//! S3 repository settings: an `s3://bucket/prefix` location and the
//! StarRocks property names (`aws.s3.endpoint`, `aws.s3.secret_key`, ...).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// Property: the endpoint URL, e.g. `http://127.0.0.1:9000`.
pub const PROP_ENDPOINT: &str = "aws.s3.endpoint";
/// Property: the region (default `us-east-1`).
pub const PROP_REGION: &str = "aws.s3.region";
/// Property: the access key id (else `AWS_ACCESS_KEY_ID`).
pub const PROP_ACCESS_KEY: &str = "aws.s3.access_key";
/// Property: the secret access key (else `AWS_SECRET_ACCESS_KEY`).
pub const PROP_SECRET_KEY: &str = "aws.s3.secret_key";
/// Property: `true` for path-style URLs (`endpoint/bucket/key`), as MinIO
/// and other self-hosted servers want.
pub const PROP_PATH_STYLE: &str = "aws.s3.enable_path_style_access";
/// Property: the timeout of one request in milliseconds (default 300000).
pub const PROP_REQUEST_TIMEOUT_MS: &str = "tabletsnap.s3.request_timeout_ms";
/// Property: objects larger than this many bytes are put in parts.
pub const PROP_MULTIPART_THRESHOLD: &str = "tabletsnap.s3.multipart_threshold";
/// Property: the size of one part of a multipart put (at least 5 MiB).
pub const PROP_PART_SIZE: &str = "tabletsnap.s3.part_size";
/// Property: requests one download keeps in flight (1 to 64, default 8).
pub const PROP_REQUESTS_IN_FLIGHT: &str = "tabletsnap.s3.requests_in_flight";

/// Every property an S3 repository takes; other `aws.s3.` and
/// `tabletsnap.s3.` names are refused, so a misspelt key is not ignored.
pub const KNOWN_PROPERTIES: &[&str] = &[
    PROP_ENDPOINT,
    PROP_REGION,
    PROP_ACCESS_KEY,
    PROP_SECRET_KEY,
    PROP_PATH_STYLE,
    PROP_REQUEST_TIMEOUT_MS,
    PROP_MULTIPART_THRESHOLD,
    PROP_PART_SIZE,
    PROP_REQUESTS_IN_FLIGHT,
];

/// S3's smallest part (every part but the last).
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// S3's largest part, and its largest single PUT: 5 GiB.
pub const MAX_PART_SIZE: u64 = 5 << 30;

/// Where and how to reach one S3 repository location.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Endpoint URL (`http://host:port` or `https://...`).
    pub endpoint: String,
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket: empty, or ending in `/`.
    pub prefix: String,
    /// Region used in signatures.
    pub region: String,
    /// Path-style (`endpoint/bucket/key`) rather than virtual-host URLs.
    pub path_style: bool,
    /// Access key id.
    pub access_key: String,
    /// Secret access key; prints as `***`.
    pub secret_key: Secret,
    /// Who uses the location, for messages: e.g. `repository 'oss'`.
    pub user: String,
    /// Connect timeout of one request.
    pub connect_timeout: Duration,
    /// Whole-request timeout (connect, send, receive the whole body).
    pub request_timeout: Duration,
    /// Objects larger than this are put in parts.
    pub multipart_threshold: u64,
    /// Size of each part but the last.
    pub part_size: u64,
    /// Parts of one object put at the same time.
    pub part_parallelism: usize,
    /// Requests one download keeps in flight: each mostly waits on the
    /// network and the server, so the cores alone keep too few busy.
    pub requests_in_flight: usize,
}

impl S3Config {
    /// Settings for `location` (`s3://bucket[/prefix]`) from the PROPERTIES
    /// of CREATE REPOSITORY; credentials missing there come from
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub fn from_properties(location: &str, props: &[(String, String)]) -> Result<Self> {
        let (bucket, prefix) = parse_location(location)?;
        let get = |k: &str| {
            props
                .iter()
                .rev()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.trim().to_string())
        };
        for (k, _) in props {
            let lower = k.to_ascii_lowercase();
            if (lower.starts_with("aws.s3.") || lower.starts_with("tabletsnap.s3."))
                && !KNOWN_PROPERTIES.contains(&lower.as_str())
            {
                return Err(invalid(
                    k,
                    format!(
                        "unknown S3 property; known ones: {}",
                        KNOWN_PROPERTIES.join(", ")
                    ),
                ));
            }
        }
        let region = get(PROP_REGION).unwrap_or_else(|| "us-east-1".to_string());
        let endpoint = get(PROP_ENDPOINT)
            .map(|e| {
                if e.contains("://") {
                    e
                } else {
                    format!("https://{e}")
                }
            })
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let endpoint = endpoint.trim_end_matches('/').to_string();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(invalid(
                PROP_ENDPOINT,
                "use an http:// or https:// URL".into(),
            ));
        }
        let path_style = match get(PROP_PATH_STYLE) {
            Some(v) => parse_bool(PROP_PATH_STYLE, &v)?,
            // Virtual-host URLs cannot name an IP address or localhost.
            None => endpoint_is_local(&endpoint),
        };
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let access_key = get(PROP_ACCESS_KEY).or_else(|| env("AWS_ACCESS_KEY_ID"));
        let secret_key = get(PROP_SECRET_KEY).or_else(|| env("AWS_SECRET_ACCESS_KEY"));
        let (Some(access_key), Some(secret_key)) = (access_key, secret_key) else {
            return Err(Error::Config(format!(
                "no credentials for {location}: set PROPERTIES (\"{PROP_ACCESS_KEY}\" = ..., \
                 \"{PROP_SECRET_KEY}\" = ...) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )));
        };
        let num = |k: &str, default: u64| -> Result<u64> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.trim().parse::<u64>().map_err(|e| {
                    let why = match e.kind() {
                        std::num::IntErrorKind::PosOverflow => "is far too large",
                        _ => "is not a whole number",
                    };
                    invalid(k, format!("'{v}' {why}"))
                }),
            }
        };
        let timeout_ms = num(PROP_REQUEST_TIMEOUT_MS, 300_000)?;
        if !(1_000..=86_400_000).contains(&timeout_ms) {
            return Err(invalid(
                PROP_REQUEST_TIMEOUT_MS,
                format!("must be from 1000 (1 s) to 86400000 (a day), not {timeout_ms}"),
            ));
        }
        let part_size = num(PROP_PART_SIZE, 16 << 20)?;
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part_size) {
            return Err(invalid(
                PROP_PART_SIZE,
                format!(
                    "must be from {MIN_PART_SIZE} to {MAX_PART_SIZE} (S3's smallest and largest part), not {part_size}"
                ),
            ));
        }
        let multipart_threshold = num(PROP_MULTIPART_THRESHOLD, 64 << 20)?;
        if multipart_threshold > MAX_PART_SIZE {
            return Err(invalid(
                PROP_MULTIPART_THRESHOLD,
                format!(
                    "must be at most {MAX_PART_SIZE} (S3's largest single PUT), not {multipart_threshold}"
                ),
            ));
        }
        let requests_in_flight = num(PROP_REQUESTS_IN_FLIGHT, 8)?;
        if !(1..=64).contains(&requests_in_flight) {
            return Err(invalid(
                PROP_REQUESTS_IN_FLIGHT,
                format!("must be from 1 to 64, not {requests_in_flight}"),
            ));
        }
        Ok(Self {
            endpoint,
            bucket,
            prefix,
            region,
            path_style,
            access_key,
            secret_key: Secret::new(secret_key),
            user: format!("location {location}"),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_millis(timeout_ms),
            // A whole pack (64 MiB by default) goes in one PUT; larger
            // objects in parts put in parallel.
            multipart_threshold,
            part_size,
            part_parallelism: 4,
            requests_in_flight: requests_in_flight as usize,
        })
    }

    /// `s3://bucket/prefix` (no trailing `/`), the location this names.
    pub fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix.trim_end_matches('/'))
            .trim_end_matches('/')
            .to_string()
    }
}

/// Splits `s3://bucket/prefix` into the bucket and a prefix that is empty
/// or ends in `/`. `s3a://` is accepted as StarRocks does.
pub fn parse_location(location: &str) -> Result<(String, String)> {
    let bad = |reason: &'static str| Error::InvalidName {
        kind: "S3 location",
        value: crate::error::printable(location),
        reason: reason.into(),
    };
    let rest = location
        .strip_prefix("s3://")
        .or_else(|| location.strip_prefix("s3a://"))
        .ok_or_else(|| bad("use s3://bucket/prefix"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.');
    if !bucket_ok {
        return Err(bad(
            "the bucket name must be 3 to 63 lowercase letters, digits, '-' or '.'",
        ));
    }
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return Ok((bucket.to_string(), String::new()));
    }
    if crate::backend::validate_key(prefix).is_err() {
        return Err(bad(
            "the prefix must be '/'-separated names, none empty, '.' or '..' or starting with '.'",
        ));
    }
    Ok((bucket.to_string(), format!("{prefix}/")))
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, format!("'{v}' is not true or false"))),
    }
}

fn endpoint_is_local(endpoint: &str) -> bool {
    let host = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, h)| h)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    host == "localhost" || host.parse::<std::net::Ipv4Addr>().is_ok() || endpoint.contains('[')
}

fn invalid(key: &str, reason: String) -> Error {
    Error::Config(format!("property \"{key}\": {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn locations() {
        assert_eq!(
            parse_location("s3://bkt/a/b/").ok(),
            Some(("bkt".into(), "a/b/".into()))
        );
        assert_eq!(
            parse_location("s3://bkt").ok(),
            Some(("bkt".into(), String::new()))
        );
        for bad in [
            "s3://",
            "s3://B",
            "s3://bkt/../x",
            "file:///x",
            "s3://bkt/a//b",
        ] {
            assert!(parse_location(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn properties_and_secret() {
        let c = S3Config::from_properties(
            "s3://bkt/p",
            &props(&[
                (PROP_ENDPOINT, "http://127.0.0.1:9000"),
                (PROP_ACCESS_KEY, "ak"),
                (PROP_SECRET_KEY, "very-secret"),
            ]),
        )
        .expect("config");
        assert!(c.path_style, "an IP endpoint means path style");
        assert_eq!(c.location(), "s3://bkt/p");
        assert!(!format!("{c:?}").contains("very-secret"));
        let e = S3Config::from_properties("s3://bkt", &props(&[("aws.s3.secretkey", "x")]));
        assert!(format!("{:?}", e.err()).contains("unknown S3 property"));
    }

    #[test]
    fn timeouts_and_sizes_are_bounded() {
        let with = |k: &str, v: &str| {
            S3Config::from_properties(
                "s3://bkt/p",
                &props(&[(PROP_ACCESS_KEY, "ak"), (PROP_SECRET_KEY, "sk"), (k, v)]),
            )
        };
        let ok = with(PROP_REQUEST_TIMEOUT_MS, "2000").expect("2 s");
        assert_eq!(ok.request_timeout, Duration::from_secs(2));
        for (k, bad, needle) in [
            (PROP_REQUEST_TIMEOUT_MS, "0", "from 1000"),
            (PROP_REQUEST_TIMEOUT_MS, "999", "from 1000"),
            (PROP_REQUEST_TIMEOUT_MS, "86400001", "a day"),
            (PROP_PART_SIZE, "4194304", "smallest"),
            (PROP_PART_SIZE, "6000000000", "largest"),
            (PROP_PART_SIZE, "99999999999999999999999", "far too large"),
            (PROP_MULTIPART_THRESHOLD, "6000000000", "largest single PUT"),
        ] {
            let e = with(k, bad).expect_err(bad).to_string();
            assert!(e.contains(k) && e.contains(needle), "{k}={bad}: {e}");
        }
    }

    #[test]
    fn requests_in_flight_is_bounded() {
        let with = |v: &str| {
            S3Config::from_properties(
                "s3://bkt/p",
                &props(&[
                    (PROP_ACCESS_KEY, "ak"),
                    (PROP_SECRET_KEY, "sk"),
                    (PROP_REQUESTS_IN_FLIGHT, v),
                ]),
            )
        };
        assert_eq!(with("3").expect("3").requests_in_flight, 3);
        for bad in ["0", "65", "-1", "many", "99999999999999999999999"] {
            let e = with(bad).expect_err(bad).to_string();
            assert!(e.contains(PROP_REQUESTS_IN_FLIGHT), "{bad}: {e}");
        }
    }
}
