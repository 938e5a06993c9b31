//! Links `agentops` as a position-dependent executable on Linux.
//!
//! The hook runs as a whole process on every tool call of someone else's
//! agent. As a position-independent executable the dynamic loader applies
//! ~40,000 relative relocations at every start, touching (copy-on-write) every
//! page of `.data.rel.ro` — about 220 page faults, more than half of the
//! process's start-up cost. Linked without PIE, those addresses are fixed at
//! link time. See docs/architecture.md ("Start-up cost").
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
