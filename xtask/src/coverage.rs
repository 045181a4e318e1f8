//! `cargo xtask response-coverage [--from DIR]`: which (operation, status) pairs the test suites
//! make the simulator answer, against the statuses `spec/open-api.json` defines.
//!
//! Runs `cargo test -p ksef-sim -p ksef -p ksef-cli` with `KSEF_SIM_COVERAGE_DIR` set: every
//! spec-checked simulator the tests start (`start_checked`, which also fails a test on any response
//! that does not match the spec) writes the pairs it answered there. `--from DIR` reports on
//! files an earlier run left in DIR instead. Prints one line per operation and fails if an
//! operation's success status was never answered, or if the tests failed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .to_path_buf();
    let (dir, tests_ok) = match args {
        [flag, dir] if flag == "--from" => (PathBuf::from(dir), true),
        [] => {
            let dir =
                std::env::temp_dir().join(format!("ksef-response-coverage-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            let status =
                std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
                    .current_dir(&root)
                    .args([
                        "test", "-p", "ksef-sim", "-p", "ksef", "-p", "ksef-cli", "--locked",
                    ])
                    .env("KSEF_SIM_COVERAGE_DIR", &dir)
                    .status()
                    .context("running cargo test")?;
            (dir, status.success())
        }
        _ => bail!("usage: cargo xtask response-coverage [--from DIR]"),
    };
    let seen = read_dir(&dir)?;
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("spec/open-api.json"))?)?;
    let mut missing = Vec::new();
    let (mut ops, mut pairs_defined, mut pairs_seen) = (0, 0, 0);
    println!(
        "{:<7} {:<62} {:>7} {:>9}  other statuses answered / defined but never answered",
        "method", "path", "success", "answered"
    );
    for (path, methods) in spec["paths"].as_object().context("spec paths")? {
        for (method, op) in methods.as_object().into_iter().flatten() {
            let Some(responses) = op["responses"].as_object() else {
                continue;
            };
            ops += 1;
            let method = method.to_ascii_uppercase();
            let defined: BTreeSet<u16> = responses.keys().filter_map(|k| k.parse().ok()).collect();
            let success = defined
                .iter()
                .copied()
                .find(|s| (200..300).contains(s))
                .unwrap_or(0);
            let answered: BTreeMap<u16, u64> = seen
                .range((method.clone(), path.clone(), 0)..=(method.clone(), path.clone(), u16::MAX))
                .map(|((_, _, s), n)| (*s, *n))
                .collect();
            pairs_defined += defined.len();
            pairs_seen += defined.iter().filter(|s| answered.contains_key(s)).count();
            let n = answered.get(&success).copied().unwrap_or(0);
            if n == 0 {
                missing.push(format!("{method} {path} {success}"));
            }
            let others: Vec<String> = answered
                .iter()
                .filter(|(s, _)| **s != success)
                .map(|(s, n)| format!("{s}×{n}"))
                .collect();
            let never: Vec<String> = defined
                .iter()
                .filter(|s| !answered.contains_key(s))
                .map(u16::to_string)
                .collect();
            println!(
                "{method:<7} {path:<62} {success:>7} {n:>9}  {} / {}",
                others.join(" "),
                never.join(" ")
            );
        }
    }
    println!(
        "{ops} operations; success status answered for {} of them; {pairs_seen} of the {pairs_defined} (operation, status) pairs the spec defines were answered",
        ops - missing.len()
    );
    if !missing.is_empty() {
        bail!(
            "success status never answered by the suites: {}",
            missing.join(", ")
        );
    }
    if !tests_ok {
        bail!("the test suites failed (see above)");
    }
    Ok(())
}

/// (METHOD, path template, status) → count, summed over the files in `dir`.
fn read_dir(dir: &Path) -> anyhow::Result<BTreeMap<(String, String, u16), u64>> {
    let mut seen = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let text = std::fs::read_to_string(entry?.path())?;
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let [method, path, status, n] = f[..] {
                *seen
                    .entry((method.to_owned(), path.to_owned(), status.parse()?))
                    .or_default() += n.parse::<u64>()?;
            }
        }
    }
    Ok(seen)
}
