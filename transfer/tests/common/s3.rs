//! The S3 server the S3 tests run against (s3s-fs in CI, see `.ci/run`).
//!
//! Needs TABLETSNAP_S3_ENDPOINT, TABLETSNAP_S3_ACCESS_KEY,
//! TABLETSNAP_S3_SECRET_KEY and TABLETSNAP_S3_BUCKET. With CI=true a missing
//! variable fails the tests; elsewhere they print why and pass.

use tabletsnap_transfer::backend::s3::{
    PROP_ACCESS_KEY, PROP_ENDPOINT, PROP_PATH_STYLE, PROP_SECRET_KEY,
};
use tabletsnap_transfer::{S3Config, S3};

pub struct Server {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
}

pub fn server() -> Option<Server> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let got = (
        var("TABLETSNAP_S3_ENDPOINT"),
        var("TABLETSNAP_S3_ACCESS_KEY"),
        var("TABLETSNAP_S3_SECRET_KEY"),
        var("TABLETSNAP_S3_BUCKET"),
    );
    match got {
        (Some(endpoint), Some(access_key), Some(secret_key), Some(bucket)) => Some(Server {
            endpoint,
            access_key,
            secret_key,
            bucket,
        }),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "S3 tests need TABLETSNAP_S3_ENDPOINT, TABLETSNAP_S3_ACCESS_KEY, \
             TABLETSNAP_S3_SECRET_KEY and TABLETSNAP_S3_BUCKET (.ci/run starts s3s-fs and sets them)"
        ),
        _ => {
            eprintln!("skipping: no S3 server (set TABLETSNAP_S3_* or run .ci/run)");
            None
        }
    }
}

/// A location no other test uses.
pub fn fresh_location(s: &Server, what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("s3://{}/t-{what}-{}-{nanos}", s.bucket, std::process::id())
}

pub fn props(s: &Server, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p = vec![
        (PROP_ENDPOINT.to_string(), s.endpoint.clone()),
        (PROP_ACCESS_KEY.to_string(), s.access_key.clone()),
        (PROP_SECRET_KEY.to_string(), s.secret_key.clone()),
        (PROP_PATH_STYLE.to_string(), "true".to_string()),
    ];
    p.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    p
}

pub fn backend(s: &Server, what: &str, extra: &[(&str, &str)]) -> S3 {
    let cfg =
        S3Config::from_properties(&fresh_location(s, what), &props(s, extra)).expect("S3 config");
    S3::new(cfg).expect("S3 backend")
}
