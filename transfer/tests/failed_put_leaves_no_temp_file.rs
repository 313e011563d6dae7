//! A LocalFs put that fails half-way through writing its temp file (here:
//! the file size limit, standing in for a full disk) removes the temp file
//! and leaves no object. One test in its own binary: the limit is
//! process-wide.

use std::time::Duration;

use tabletsnap_transfer::{Backend, LocalFs, TEMP_PREFIX};

#[test]
fn a_put_failing_mid_write_removes_its_temp_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fs = LocalFs::new(tmp.path()).expect("fs");
    let big = vec![7u8; 4 << 20];
    #[expect(
        unsafe_code,
        reason = "setrlimit and signal have no safe wrapper in our nix features"
    )]
    // SAFETY: plain libc calls with valid arguments; ignoring SIGXFSZ makes an
    // over-limit write fail with EFBIG instead of killing the process.
    unsafe {
        nix::libc::signal(nix::libc::SIGXFSZ, nix::libc::SIG_IGN);
        let limit = nix::libc::rlimit {
            rlim_cur: 1 << 20,
            rlim_max: nix::libc::RLIM_INFINITY,
        };
        assert_eq!(nix::libc::setrlimit(nix::libc::RLIMIT_FSIZE, &limit), 0);
    }
    let r = fs.put("d/big", &big);
    #[expect(unsafe_code, reason = "restoring the limit set above")]
    // SAFETY: as above.
    unsafe {
        let limit = nix::libc::rlimit {
            rlim_cur: nix::libc::RLIM_INFINITY,
            rlim_max: nix::libc::RLIM_INFINITY,
        };
        nix::libc::setrlimit(nix::libc::RLIMIT_FSIZE, &limit);
    }
    assert!(
        r.is_err(),
        "a 4 MiB put under a 1 MiB file size limit succeeded"
    );
    let names: Vec<String> = std::fs::read_dir(tmp.path().join("d"))
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with(TEMP_PREFIX)),
        "temp file left behind: {names:?}"
    );
    assert_eq!(fs.head("d/big").expect("head"), None);
    assert_eq!(fs.sweep_stale_temp("", Duration::ZERO).expect("sweep"), 0);
}
