//! Spec-checked simulators for test suites (shared by the ksef-sim, ksef and ksef-cli tests:
//! the other crates include this file by path). `builder.start_checked()` starts a simulator
//! with `validate_responses(true)` and returns a guard that derefs to the handle and fails the
//! test — panics when dropped or shut down — if any response it sent did not match
//! `spec/open-api.json`. With `KSEF_SIM_COVERAGE_DIR` set, the (operation, status) pairs the
//! simulator answered are written to a file there; `cargo xtask response-coverage` runs the
//! suites that way and reports them against the spec.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use ksef_sim::{SimError, SimulatorBuilder, SimulatorHandle};

/// A simulator whose responses are checked against the spec; see the module docs.
#[derive(Debug)]
pub struct CheckedSim(Option<SimulatorHandle>);

impl std::ops::Deref for CheckedSim {
    type Target = SimulatorHandle;
    fn deref(&self) -> &SimulatorHandle {
        self.0.as_ref().expect("a live simulator")
    }
}

impl CheckedSim {
    /// Checks the responses so far, then shuts the simulator down.
    pub async fn shutdown(mut self) {
        let handle = self.0.take().expect("a live simulator");
        finish(&handle);
        handle.shutdown().await;
    }
}

impl Drop for CheckedSim {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            finish(&handle);
        }
    }
}

/// `start_checked()` for [`SimulatorBuilder`].
pub trait StartChecked {
    /// `validate_responses(true).start()`, wrapped in a [`CheckedSim`].
    fn start_checked(self) -> impl Future<Output = Result<CheckedSim, SimError>>;
}

impl StartChecked for SimulatorBuilder {
    async fn start_checked(self) -> Result<CheckedSim, SimError> {
        Ok(CheckedSim(Some(
            self.validate_responses(true).start().await?,
        )))
    }
}

fn finish(handle: &SimulatorHandle) {
    if let Some(dir) = std::env::var_os("KSEF_SIM_COVERAGE_DIR") {
        static N: AtomicUsize = AtomicUsize::new(0);
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let file = std::path::Path::new(&dir).join(format!(
            "{exe}-{}-{}.txt",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let mut out = String::new();
        for ((op, status), n) in handle.covered_responses() {
            let op = op.spec();
            out.push_str(&format!("{} {} {status} {n}\n", op.method, op.path));
        }
        let _ = std::fs::create_dir_all(&dir);
        std::fs::write(file, out).unwrap();
    }
    let violations = handle.response_violations();
    if !violations.is_empty() && !std::thread::panicking() {
        let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
        panic!(
            "{} simulator response(s) do not match spec/open-api.json:\n  {}",
            list.len(),
            list.join("\n  ")
        );
    }
}
