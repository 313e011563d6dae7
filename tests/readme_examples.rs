//! The README's Usage examples work exactly as written: the `sh` blocks
//! marked `<!-- readme-test -->` run in order under `bash -euo pipefail`,
//! with `tabletsnap` found on PATH (as `cargo install --path .` leaves it)
//! and their `/tmp/` paths moved into a temp dir. Blocks whose marker says
//! `needs s3s-fs` find it on PATH or in the tools dir `.ci/s3-server`
//! installs it into; outside CI they are skipped when it is not there.
//! Whatever a block left running (a server) is killed with its process group.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

const MARKER: &str = "<!-- readme-test";

/// The Usage section: from its heading to the next `## ` heading.
fn usage_section(readme: &str) -> &str {
    let start = readme.find("\n## Usage\n").expect("a Usage section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

/// The marked `sh` blocks, in order, each with its marker line.
fn marked_blocks(section: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if !line.starts_with(MARKER) {
            continue;
        }
        assert_eq!(
            lines.next(),
            Some("```sh"),
            "a marker not before a sh block"
        );
        let marker = line.to_string();
        let mut block = String::new();
        for l in lines.by_ref() {
            if l == "```" {
                break;
            }
            block.push_str(l);
            block.push('\n');
        }
        blocks.push((marker, block));
    }
    blocks
}

/// The dir `.ci/s3-server` installs s3s-fs into.
fn tools_bin() -> std::path::PathBuf {
    std::env::var_os("TABLETSNAP_TOOLS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").unwrap_or_default()).join(".cache/tabletsnap-tools")
        })
        .join("bin")
}

/// The value of `table`'s row in `--batch` CHECKSUM TABLE output.
fn checksum(stdout: &str, table: &str) -> String {
    let prefix = format!("{table}\t");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no checksum of {table} in {stdout}"));
    line[prefix.len()..].to_string()
}

#[test]
fn usage_examples_run_as_written() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("reading README.md");
    let usage = usage_section(&readme);
    let install = usage
        .find("cargo install --path .")
        .expect("the Usage section says how to install the command");
    let first = usage.find(MARKER).expect("marked examples");
    assert!(install < first, "install before the examples");
    let blocks = marked_blocks(usage);
    assert!(blocks.len() >= 2, "{blocks:?}");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tabletsnap"))
        .parent()
        .expect("the binary's dir");
    let path = std::env::join_paths([bin_dir.to_path_buf(), tools_bin()].into_iter().chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("a PATH");
    let have_s3s_fs = std::env::split_paths(&path).any(|d| d.join("s3s-fs").is_file());
    let needs_s3 = |marker: &str| marker.contains("needs s3s-fs");
    if !have_s3s_fs && blocks.iter().any(|(m, _)| needs_s3(m)) {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "the S3 example needs s3s-fs on PATH or in {} (.ci/s3-server installs it)",
            tools_bin().display()
        );
        eprintln!(
            "skipping the S3 example: no s3s-fs on PATH or in {}",
            tools_bin().display()
        );
    }
    let s3_ran = have_s3s_fs && blocks.iter().any(|(m, _)| needs_s3(m));
    let script: String = blocks
        .iter()
        .filter(|(m, _)| have_s3s_fs || !needs_s3(m))
        .map(|(_, b)| b.as_str())
        .collect();
    assert!(
        !script.contains("tabletsnap shell"),
        "the interactive shell is not run"
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let script = script.replace("/tmp/", &format!("{}/", tmp.path().display()));
    let child = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("PATH", path)
        .current_dir(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("running bash");
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    let out = child.wait_with_output().expect("waiting for bash");
    // A server a failed example left behind (a passing one kills its own).
    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the README examples failed: {:?}\n{script}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert_eq!(stderr, "", "nothing on stderr");
    // The backup and the restore, both FINISHED (vertical rows after \G).
    let finished = stdout
        .lines()
        .filter(|l| l.trim() == "State: FINISHED")
        .count();
    // The S3 example adds a restore.
    assert_eq!(finished, if s3_ran { 3 } else { 2 }, "{stdout}");
    assert_eq!(checksum(&stdout, "d.t"), checksum(&stdout, "d.t2"));
    if s3_ran {
        assert_eq!(checksum(&stdout, "d.t"), checksum(&stdout, "d.t3"));
    }
}
