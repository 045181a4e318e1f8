//! Per-call overhead bench (written once the per-operation methods land).

fn main() {}
