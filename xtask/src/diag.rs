//! Which crates a lint run failed on, read from the tools' own output, so that
//! `cargo xtask clippy` can say "lb-user (lib lb_user)" rather than only "clippy
//! failed".

use std::collections::BTreeSet;
use std::path::Path;

/// The diagnostic text of a `compiler-message` line of cargo's
/// `--message-format=json` output, to show the user; `None` for other lines.
pub fn rendered(json_line: &str) -> Option<String> {
    let msg: serde_json::Value = serde_json::from_str(json_line.trim()).ok()?;
    if msg["reason"] != "compiler-message" {
        return None;
    }
    msg["message"]["rendered"].as_str().map(str::to_owned)
}

/// The package name in a cargo package id: `path+file:///w/tests#lb-tests@0.1.0`,
/// `path+file:///w/lb-user#0.1.0` (the name is the directory's),
/// `registry+https://…#serde@1.0.0`, or the older `lb-user 0.1.0 (path+file://…)`.
pub fn package_name(id: &str) -> Option<&str> {
    if !id.contains("://") || id.contains(' ') {
        return id
            .split(' ')
            .next()
            .filter(|n| !n.is_empty() && !n.contains("://"));
    }
    let (url, fragment) = id.rsplit_once('#')?;
    match fragment.split_once('@') {
        Some((name, _)) => Some(name),
        None => url.trim_end_matches('/').rsplit('/').next(),
    }
}

/// The crates (package, target kind and name) that have an error or
/// warning in cargo's `--message-format=json` output, in order, each once.
/// With `-D warnings` every lint is an error; a warning counts as well, so
/// that nothing is let through.
pub fn failing_targets(json_lines: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for line in json_lines.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line.trim()) else {
            continue;
        };
        if msg["reason"] != "compiler-message" {
            continue;
        }
        let level = msg["message"]["level"].as_str().unwrap_or("");
        if level != "error" && level != "warning" {
            continue;
        }
        let package = msg["package_id"]
            .as_str()
            .and_then(package_name)
            .unwrap_or("?");
        let target = &msg["target"];
        let kind = target["kind"][0].as_str().unwrap_or("?");
        let name = target["name"].as_str().unwrap_or("?");
        let label = format!("{package} ({kind} {name})");
        if seen.insert(label.clone()) {
            out.push(label);
        }
    }
    out
}

/// The files `cargo fmt --check` would change, from its output (`Diff in
/// <path>:<line>:` lines), each once, relative to `root` when under it.
pub fn unformatted_files(fmt_output: &str, root: &Path) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in fmt_output.lines() {
        let Some(rest) = line.strip_prefix("Diff in ") else {
            continue;
        };
        // `<path>:<line>:` (older rustfmt: `<path> at line <n>:`).
        let path = rest
            .trim_end_matches(':')
            .rsplit_once(':')
            .map_or(rest, |(p, _)| p);
        let path = path.split(" at line ").next().unwrap_or(path);
        let path = Path::new(path);
        let shown = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        if !out.contains(&shown) {
            out.push(shown);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIPPY: &str = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/lb-common#0.1.0","manifest_path":"/w/lb-common/Cargo.toml","target":{"kind":["lib"],"name":"lb_common"}}
{"reason":"compiler-message","package_id":"path+file:///w/lb-user#0.1.0","manifest_path":"/w/lb-user/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"lb_user"},"message":{"level":"error","rendered":"error: unnecessary qualification\n"}}
{"reason":"compiler-message","package_id":"path+file:///w/lb-user#0.1.0","manifest_path":"/w/lb-user/Cargo.toml","target":{"kind":["lib"],"crate_types":["lib"],"name":"lb_user"},"message":{"level":"error","rendered":"error: aborting due to 1 previous error\n"}}
{"reason":"compiler-message","package_id":"path+file:///w/tests#lb-tests@0.1.0","manifest_path":"/w/tests/Cargo.toml","target":{"kind":["test"],"name":"robustness"},"message":{"level":"warning","rendered":"warning: x\n"}}
{"reason":"compiler-message","package_id":"path+file:///w/xtask#0.1.0","manifest_path":"/w/xtask/Cargo.toml","target":{"kind":["bin"],"name":"xtask"},"message":{"level":"note","rendered":"note: y\n"}}
{"reason":"build-finished","success":false}
"#;

    #[test]
    fn names_each_failing_target_once() {
        assert_eq!(
            failing_targets(CLIPPY),
            ["lb-user (lib lb_user)", "lb-tests (test robustness)"]
        );
        assert!(failing_targets(r#"{"reason":"build-finished","success":true}"#).is_empty());
        assert!(failing_targets("not json\n").is_empty());
    }

    #[test]
    fn package_names_from_ids() {
        let name = package_name;
        assert_eq!(
            name("path+file:///w/tests#lb-tests@0.1.0"),
            Some("lb-tests")
        );
        assert_eq!(name("path+file:///w/lb-user#0.1.0"), Some("lb-user"));
        assert_eq!(
            name("registry+https://github.com/rust-lang/crates.io-index#serde@1.0.228"),
            Some("serde")
        );
        assert_eq!(
            name("lb-user 0.1.0 (path+file:///w/lb-user)"),
            Some("lb-user")
        );
    }

    #[test]
    fn shows_compiler_messages_only() {
        let lines: Vec<_> = CLIPPY.lines().filter_map(rendered).collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], "error: unnecessary qualification\n");
        assert_eq!(rendered("garbage"), None);
    }

    #[test]
    fn lists_unformatted_files() {
        let out = "Diff in /w/lb-user/src/table.rs:12:\n-a\n+b\n\
                   Diff in /w/lb-user/src/table.rs:40:\n-c\n+d\n\
                   Diff in /w/lb-ebpf/src/main.rs:1:\n-e\n";
        assert_eq!(
            unformatted_files(out, Path::new("/w")),
            ["lb-user/src/table.rs", "lb-ebpf/src/main.rs"]
        );
        assert_eq!(
            unformatted_files("Diff in /x/a.rs at line 3:\n", Path::new("/w")),
            ["/x/a.rs"]
        );
        assert!(unformatted_files("", Path::new("/w")).is_empty());
    }
}
