//! Finding a built file in cargo's `--message-format=json` output, instead of
//! guessing paths under the target dir.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// Returns the file cargo produced for the target `name` of kind `kind` ("bin",
/// "lib", …), read from the JSON lines cargo printed on stdout.
///
/// For executables cargo reports the uplifted path in `executable`; otherwise the
/// first entry of `filenames` is used. When a target was reported more than once,
/// the last report wins (that is the one cargo finished with).
pub fn find(json_lines: &str, name: &str, kind: &str) -> Result<PathBuf> {
    let mut found = None;
    for (n, line) in json_lines.lines().enumerate() {
        let line = line.trim();
        if !line.starts_with('{') {
            continue; // cargo only prints JSON here, but be lenient with stray lines
        }
        let msg: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("cargo message line {} is not JSON: {line}", n + 1))?;
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let target = &msg["target"];
        let kinds = target["kind"].as_array();
        if target["name"] != name || !kinds.is_some_and(|k| k.iter().any(|k| k == kind)) {
            continue;
        }
        let path = msg["executable"]
            .as_str()
            .or_else(|| msg["filenames"].as_array()?.first()?.as_str());
        match path {
            Some(p) => found = Some(PathBuf::from(p)),
            None => bail!("cargo reported {kind} target `{name}` without a file: {line}"),
        }
    }
    found.with_context(|| format!("cargo did not report building {kind} target `{name}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINES: &str = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/lb-common#0.1.0","target":{"kind":["lib"],"crate_types":["lib"],"name":"lb_common","src_path":"/w/lb-common/src/lib.rs"},"filenames":["/w/target/bpf/bpfel-unknown-none/release/deps/liblb_common-1.rlib"],"executable":null,"fresh":true}
{"reason":"compiler-artifact","package_id":"path+file:///w/lb-ebpf#0.1.0","target":{"kind":["lib"],"crate_types":["lib"],"name":"lb_ebpf","src_path":"/w/lb-ebpf/src/lib.rs"},"filenames":["/w/target/bpf/bpfel-unknown-none/release/liblb_ebpf.rlib"],"executable":null,"fresh":false}
{"reason":"compiler-message","message":{"rendered":"warning: unused"}}
{"reason":"compiler-artifact","package_id":"path+file:///w/lb-ebpf#0.1.0","target":{"kind":["bin"],"crate_types":["bin"],"name":"lb-ebpf","src_path":"/w/lb-ebpf/src/main.rs"},"filenames":["/w/target/bpf/bpfel-unknown-none/release/lb-ebpf"],"executable":"/w/target/bpf/bpfel-unknown-none/release/lb-ebpf","fresh":false}
{"reason":"build-finished","success":true}
"#;

    #[test]
    fn picks_the_bin_not_the_lib() {
        assert_eq!(
            find(LINES, "lb-ebpf", "bin").unwrap(),
            PathBuf::from("/w/target/bpf/bpfel-unknown-none/release/lb-ebpf")
        );
        assert_eq!(
            find(LINES, "lb_ebpf", "lib").unwrap(),
            PathBuf::from("/w/target/bpf/bpfel-unknown-none/release/liblb_ebpf.rlib")
        );
    }

    #[test]
    fn missing_target_is_an_error() {
        let err = find(LINES, "lbctl", "bin").unwrap_err().to_string();
        assert!(err.contains("lbctl"), "{err}");
        // right name, wrong kind
        assert!(find(LINES, "lb-ebpf", "lib").is_err());
    }

    #[test]
    fn falls_back_to_filenames_and_last_wins() {
        let lines = concat!(
            r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"x"},"filenames":["/a/x"],"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"x"},"filenames":["/b/x"],"executable":null}"#,
            "\n"
        );
        assert_eq!(find(lines, "x", "bin").unwrap(), PathBuf::from("/b/x"));
    }

    #[test]
    fn bad_json_is_reported() {
        assert!(find("{not json\n", "x", "bin").is_err());
        // non-JSON lines are skipped
        assert!(find("Compiling x\n", "x", "bin").is_err());
    }
}
