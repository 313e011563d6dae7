//! The README's Usage examples work exactly as written: the `sh` blocks
//! marked `<!-- readme-test -->` run in order under `bash -euo pipefail`,
//! with `tabletsnap` found on PATH (as `cargo install --path .` leaves it)
//! and their `/tmp/` paths moved into a temp dir.

use std::path::Path;
use std::process::Command;

const MARKER: &str = "<!-- readme-test";

/// The Usage section: from its heading to the next `## ` heading.
fn usage_section(readme: &str) -> &str {
    let start = readme.find("\n## Usage\n").expect("a Usage section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

/// The marked `sh` blocks, in order.
fn marked_blocks(section: &str) -> Vec<String> {
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
        let mut block = String::new();
        for l in lines.by_ref() {
            if l == "```" {
                break;
            }
            block.push_str(l);
            block.push('\n');
        }
        blocks.push(block);
    }
    blocks
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
    let script = blocks.concat();
    assert!(
        !script.contains("tabletsnap shell"),
        "the interactive shell is not run"
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let script = script.replace("/tmp/", &format!("{}/", tmp.path().display()));
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tabletsnap"))
        .parent()
        .expect("the binary's dir");
    let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("a PATH");
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("PATH", path)
        .current_dir(tmp.path())
        .output()
        .expect("running bash");
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
    assert_eq!(finished, 2, "{stdout}");
    assert_eq!(checksum(&stdout, "d.t"), checksum(&stdout, "d.t2"));
}
