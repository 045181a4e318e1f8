//! The `ksef` binary end to end: exit codes, `--json` shapes, and the demo against the embedded
//! simulator.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may unwrap

use assert_cmd::Command;
use predicates::prelude::*;

fn ksef() -> Command {
    Command::cargo_bin("ksef").unwrap()
}

#[test]
fn version_and_help() {
    ksef()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("ksef "));
    ksef()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes"));
}

#[test]
fn usage_error_exits_2() {
    ksef().arg("--no-such-flag").assert().code(2);
    ksef().args(["nip", "validate"]).assert().code(2);
}

#[test]
fn nip_validate() {
    ksef()
        .args(["nip", "validate", "5265877635"])
        .assert()
        .success()
        .stdout(predicate::str::contains("valid NIP"));
    ksef()
        .args(["nip", "validate", "5265877636"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("checksum"));
    let out = ksef()
        .args(["--json", "nip", "validate", "526587763"])
        .assert()
        .code(3)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["nip"], "526587763");
    assert!(v["error"].as_str().unwrap().contains("NIP"));
}

#[test]
fn nip_generate_gives_valid_nips() {
    let out = ksef()
        .args(["--json", "nip", "generate", "-n", "5"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let nips = v["nips"].as_array().unwrap();
    assert_eq!(nips.len(), 5);
    for n in nips {
        let n = n.as_str().unwrap();
        ksef().args(["nip", "validate", n]).assert().success();
    }
}

#[test]
fn ksef_number_validate() {
    let out = ksef()
        .args([
            "--json",
            "ksef-number",
            "validate",
            "5265877635-20250826-0100001AF629-AF",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["sellerNip"], "5265877635");
    assert_eq!(v["date"], "2025-08-26");
    ksef()
        .args([
            "ksef-number",
            "validate",
            "5265877635-20250826-0100001AF629-AA",
        ])
        .assert()
        .code(3);
}

#[test]
fn completions() {
    ksef()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("ksef"));
}

#[test]
fn demo_runs_the_seed_flow_against_the_embedded_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let out = ksef()
        .args(["--json", "demo", "--out"])
        .arg(dir.path())
        .assert()
        .success()
        .get_output()
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    let ksef_number = v["ksefNumber"].as_str().unwrap();
    ksef()
        .args(["ksef-number", "validate", ksef_number])
        .assert()
        .success();
    // The invoice UPO names the KSeF number; the session UPO exists.
    let upo = std::fs::read_to_string(v["invoiceUpo"].as_str().unwrap()).unwrap();
    assert!(upo.contains(ksef_number));
    assert!(upo.contains("http://upo.schematy.mf.gov.pl/KSeF/v4-3"));
    assert_eq!(v["sessionUpo"].as_array().unwrap().len(), 1);
    // Progress goes to stderr under --json, one line per step.
    let progress = String::from_utf8(out.stderr).unwrap();
    assert!(progress.contains("KSeF number"), "{progress}");
    assert!(progress.contains("XAdES authentication"), "{progress}");
}

#[test]
fn demo_with_invalid_nip_exits_3() {
    ksef()
        .args(["demo", "--nip", "123"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("--nip"));
}

/// `ksef PATH -h`: the subcommands and the long flags it lists.
fn help_of(path: &[String]) -> (Vec<String>, Vec<String>) {
    let out = ksef().args(path).arg("-h").output().unwrap();
    assert!(out.status.success(), "ksef {path:?} -h");
    let text = String::from_utf8(out.stdout).unwrap();
    let (mut subs, mut flags) = (Vec::new(), Vec::new());
    let mut in_commands = false;
    for line in text.lines() {
        if !line.starts_with(' ') {
            in_commands = line == "Commands:";
            continue;
        }
        let trimmed = line.trim_start();
        if in_commands && line.starts_with("  ") && !line.starts_with("   ") {
            let name = trimmed.split_whitespace().next().unwrap_or("");
            if !name.is_empty() && name != "help" {
                subs.push(name.to_owned());
            }
        } else if trimmed.starts_with('-')
            && line.len() - trimmed.len() <= 6
            && let Some(flag) = trimmed
                .split(|c: char| c.is_whitespace() || c == ',')
                .find(|t| t.starts_with("--"))
        {
            flags.push(flag.trim_end_matches("...").to_owned());
        }
    }
    (subs, flags)
}

#[test]
fn docs_cli_md_lists_every_subcommand_and_flag() {
    let doc = include_str!("../../../docs/cli.md");
    let global = [
        "--json",
        "--verbose",
        "--env",
        "--profile",
        "--ca-cert",
        "--help",
        "--version",
    ];
    for g in &global[..5] {
        assert!(
            doc.contains(&format!("`{g}")),
            "docs/cli.md: global flag {g}"
        );
    }
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    let mut leaves = 0;
    while let Some(path) = todo.pop() {
        let (subs, flags) = help_of(&path);
        if !subs.is_empty() {
            for s in subs {
                let mut p = path.clone();
                p.push(s);
                todo.push(p);
            }
            continue;
        }
        leaves += 1;
        let heading = format!("### `ksef {}`", path.join(" "));
        let start = doc
            .find(&format!("{heading}\n"))
            .unwrap_or_else(|| panic!("docs/cli.md has no section {heading}"));
        let section = &doc[start + heading.len()..];
        let section = &section[..section.find("\n### ").unwrap_or(section.len())];
        for f in flags.iter().filter(|f| !global.contains(&f.as_str())) {
            assert!(
                section.contains(&format!("`{f}")),
                "docs/cli.md: {heading} does not document {f}"
            );
        }
    }
    assert!(leaves >= 35, "only {leaves} commands found");
}
