//! The `ksef` command-line program (work in progress).
fn main() {}
