//! Layering check: each crate depends only on crates below it, and the lower crates never pull in
//! what their users may not want (an HTTP stack, an async runtime, crypto in the model).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Our crates from the bottom up; a crate may depend only on crates with a lower rank,
/// and only on those listed in `ALLOWED`.
const ALLOWED: &[(&str, &[&str])] = &[
    ("ksef-model", &[]),
    ("ksef-fa", &["ksef-model"]),
    ("ksef-crypto", &["ksef-model"]),
    ("ksef-transport", &["ksef-model"]),
    (
        "ksef",
        &["ksef-model", "ksef-fa", "ksef-crypto", "ksef-transport"],
    ),
    ("ksef-sim", &["ksef-model", "ksef-fa", "ksef-crypto"]),
    (
        "ksef-cli",
        &[
            "ksef",
            "ksef-sim",
            "ksef-model",
            "ksef-crypto",
            "ksef-transport",
        ],
    ),
];

/// Crates that must not appear in a crate's *normal* (non-dev, non-build) dependency tree.
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "ksef-model",
        &[
            "reqwest",
            "tokio",
            "hyper",
            "rsa",
            "aes",
            "openssl",
            "p256",
            "ring",
            "aws-lc-rs",
            "axum",
        ],
    ),
    (
        "ksef-crypto",
        &["reqwest", "tokio", "hyper", "axum", "openssl"],
    ),
    ("ksef-transport", &["rsa", "p256", "aes", "axum", "openssl"]),
];

pub fn run() -> Result<()> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: Value = serde_json::from_slice(&out.stdout)?;
    let problems = check(&meta)?;
    if problems.is_empty() {
        println!("layers: ok ({} crates checked)", ALLOWED.len());
        Ok(())
    } else {
        for p in &problems {
            eprintln!("layers: {p}");
        }
        bail!("{} layering problem(s)", problems.len())
    }
}

fn check(meta: &Value) -> Result<Vec<String>> {
    let packages = meta["packages"].as_array().context("no packages")?;
    let name_of: BTreeMap<&str, &str> = packages
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let ours: BTreeSet<&str> = ALLOWED.iter().map(|(n, _)| *n).collect();
    let mut problems = Vec::new();

    // 1. Direct dependencies between our crates (dev-dependencies included: a test of a lower
    //    crate may use a higher one only if it is a dev-dependency on the simulator or below it).
    for p in packages {
        let Some(name) = p["name"].as_str() else {
            continue;
        };
        let Some((_, allowed)) = ALLOWED.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        for d in p["dependencies"].as_array().into_iter().flatten() {
            let Some(dep) = d["name"].as_str() else {
                continue;
            };
            let kind = d["kind"].as_str().unwrap_or("normal");
            if !ours.contains(dep) || allowed.contains(&dep) {
                continue;
            }
            // Tests may run against the simulator: dev-dependencies on ksef-sim (and what the
            // simulator's tests need) are allowed; normal and build dependencies are not.
            if kind == "dev" {
                continue;
            }
            problems.push(format!("{name} depends on {dep}, which is not below it"));
        }
    }

    // 2. Forbidden crates in the normal dependency tree (resolve graph, normal edges only).
    let nodes = meta["resolve"]["nodes"]
        .as_array()
        .context("no resolve graph")?;
    let mut normal_edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for n in nodes {
        let Some(id) = n["id"].as_str() else { continue };
        let mut out = Vec::new();
        for d in n["deps"].as_array().into_iter().flatten() {
            let is_normal = d["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null() && k["target"].is_null());
            if let (true, Some(pkg)) = (is_normal, d["pkg"].as_str()) {
                out.push(pkg);
            }
        }
        normal_edges.insert(id, out);
    }
    for (krate, forbidden) in FORBIDDEN {
        let Some(root) = name_of.iter().find(|(_, n)| *n == krate).map(|(id, _)| *id) else {
            continue;
        };
        let mut seen = BTreeSet::new();
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            if let Some(n) = name_of
                .get(id)
                .filter(|n| id != root && forbidden.contains(*n))
            {
                problems.push(format!(
                    "{krate} pulls in {n} in its normal dependency tree"
                ));
            }
            stack.extend(normal_edges.get(id).into_iter().flatten());
        }
    }
    Ok(problems)
}
