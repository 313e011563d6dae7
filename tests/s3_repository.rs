//! S3 repositories through SQL, against a real S3 server (s3s-fs in CI,
//! see `.ci/run`): migration between two homes, secrets kept out of the
//! catalog and SHOW REPOSITORIES, READ ONLY, refusals at CREATE, a wrong
//! secret, and a random fault schedule with `Faulty` in front of S3.
//!
//! Needs TABLETSNAP_S3_ENDPOINT, TABLETSNAP_S3_ACCESS_KEY,
//! TABLETSNAP_S3_SECRET_KEY and TABLETSNAP_S3_BUCKET; with CI=true a
//! missing variable fails, elsewhere the tests print why and pass.

mod common;

use std::sync::Arc;

use common::*;
use tabletsnap_transfer::{FaultConfig, Faulty, S3Config, S3};

struct Server {
    endpoint: String,
    access_key: String,
    secret_key: String,
    bucket: String,
}

fn server() -> Option<Server> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        var("TABLETSNAP_S3_ENDPOINT"),
        var("TABLETSNAP_S3_ACCESS_KEY"),
        var("TABLETSNAP_S3_SECRET_KEY"),
        var("TABLETSNAP_S3_BUCKET"),
    ) {
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

fn fresh_location(s: &Server, what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "s3://{}/sql-{what}-{}-{nanos}",
        s.bucket,
        std::process::id()
    )
}

fn create_stmt(s: &Server, name: &str, location: &str, secret: &str, read_only: bool) -> String {
    format!(
        "CREATE {}REPOSITORY {name} WITH BROKER ON LOCATION \"{location}\" PROPERTIES (\
         \"aws.s3.endpoint\" = \"{}\", \"aws.s3.region\" = \"us-east-1\", \
         \"aws.s3.access_key\" = \"{}\", \"aws.s3.secret_key\" = \"{secret}\", \
         \"aws.s3.enable_path_style_access\" = \"true\")",
        if read_only { "READ ONLY " } else { "" },
        s.endpoint,
        s.access_key
    )
}

#[test]
fn migrate_through_an_s3_repository_keeping_the_secret_private() {
    let Some(srv) = server() else { return };
    let loc = fresh_location(&srv, "mig");
    let tmp = tempfile::tempdir().expect("tempdir");
    let home_a = tmp.path().join("a");
    let mut a = open(&home_a);
    make_db_and_table(&mut a, "sales", "orders", 3);
    sql(
        &mut a,
        &create_stmt(&srv, "shared", &loc, &srv.secret_key, false),
    );
    let source_sum = checksum(&mut a, "orders");
    let h = backup(
        &mut a,
        "BACKUP SNAPSHOT sales.nightly TO shared ON (orders)",
    );
    let ts = timestamp(&h);

    // The secret is in secrets.json (0600) only.
    let shown = format!("{:?}", rows(&mut a, "SHOW REPOSITORIES"));
    assert!(
        shown.contains(&loc) && !shown.contains(&srv.secret_key),
        "{shown}"
    );
    let secrets = tabletsnap::secrets::path(&home_a);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&secrets)
        .expect("secrets.json")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    for entry in walk(&home_a) {
        if entry != secrets {
            let bytes = std::fs::read(&entry).unwrap_or_default();
            let found = bytes
                .windows(srv.secret_key.len())
                .any(|w| w == srv.secret_key.as_bytes());
            assert!(!found, "the secret is in {}", entry.display());
        }
    }

    // A second cluster restores it: the migration scenario over S3.
    let mut b = open(&tmp.path().join("b"));
    sql(&mut b, "CREATE DATABASE sales; USE sales");
    sql(
        &mut b,
        &create_stmt(&srv, "shared", &loc, &srv.secret_key, true),
    );
    let e = err(&mut b, "BACKUP SNAPSHOT sales.x TO shared");
    assert_mentions(&e, &["read only"]);
    // Nor can the reading cluster delete the writer's backups.
    let e = err(&mut b, "DROP SNAPSHOT nightly ON shared");
    assert_mentions(&e, &["read only", "DROP SNAPSHOT"]);
    restore(
        &mut b,
        &format!(
            "RESTORE SNAPSHOT sales.nightly FROM shared ON (orders) PROPERTIES (\"backup_timestamp\" = \"{ts}\")"
        ),
    );
    assert_eq!(checksum(&mut b, "orders"), source_sum);

    // Reopened, the home finds its secret again.
    drop(a);
    let mut a = open(&home_a);
    let snaps = rows(&mut a, "SHOW SNAPSHOT ON shared");
    assert_eq!(column(&snaps, "Snapshot"), vec!["nightly"]);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn bad_locations_and_keys_are_refused_at_create() {
    let Some(srv) = server() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = open(&tmp.path().join("a"));
    let e = err(
        &mut a,
        &create_stmt(
            &srv,
            "nob",
            "s3://no-such-bucket-x/p",
            &srv.secret_key,
            false,
        ),
    );
    assert_mentions(&e, &["bucket 'no-such-bucket-x' does not exist"]);
    let e = err(
        &mut a,
        &create_stmt(
            &srv,
            "bad",
            &fresh_location(&srv, "bad"),
            "wrong-secret",
            false,
        ),
    );
    assert_mentions(&e, &["access denied to repository 'bad'"]);
    assert!(!e.contains("wrong-secret"), "{e}");
    let dead = Server {
        endpoint: "http://127.0.0.1:1".into(),
        access_key: srv.access_key.clone(),
        secret_key: srv.secret_key.clone(),
        bucket: srv.bucket.clone(),
    };
    let e = err(
        &mut a,
        &create_stmt(
            &dead,
            "dead",
            &fresh_location(&srv, "dead"),
            &srv.secret_key,
            false,
        ),
    );
    assert_mentions(&e, &["not reachable"]);
    assert!(rows(&mut a, "SHOW REPOSITORIES").rows.is_empty());
}

#[test]
fn backup_and_restore_through_faulty_s3() {
    let Some(srv) = server() else { return };
    let seed = std::env::var("TABLETSNAP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    eprintln!("fault schedule seed {seed} (TABLETSNAP_SEED={seed} replays it)");
    let loc = fresh_location(&srv, "faulty");
    let props = [
        ("aws.s3.endpoint", srv.endpoint.as_str()),
        ("aws.s3.access_key", srv.access_key.as_str()),
        ("aws.s3.secret_key", srv.secret_key.as_str()),
        ("aws.s3.enable_path_style_access", "true"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let s3 = S3::new(S3Config::from_properties(&loc, &props).expect("config")).expect("s3");
    let faulty = Arc::new(Faulty::new(s3, FaultConfig::transient(seed, 0.05)));
    tabletsnap::repo::set_backend_override(&loc, faulty.clone());
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = open(&tmp.path().join("a"));
    make_db_and_table(&mut a, "d", "t", 3);
    sql(
        &mut a,
        &create_stmt(&srv, "r", &loc, &srv.secret_key, false),
    );
    let sum = checksum(&mut a, "t");
    let h = backup(&mut a, "BACKUP SNAPSHOT d.s1 TO r ON (t)");
    let ts = timestamp(&h);
    restore(
        &mut a,
        &format!(
            "RESTORE SNAPSHOT d.s1 FROM r ON (t AS t2) PROPERTIES (\"backup_timestamp\" = \"{ts}\")"
        ),
    );
    assert_eq!(checksum(&mut a, "t2"), sum);
    tabletsnap::repo::clear_backend_override(&loc);
}
