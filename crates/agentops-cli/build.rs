//! Links `agentops` as a position-dependent executable on Linux.
//!
//! The hook runs as a whole process on every tool call of someone else's
//! agent. As a position-independent executable the dynamic loader applies
//! ~40,000 relative relocations at every start, touching (copy-on-write) every
//! page of `.data.rel.ro` — about 220 page faults, more than half of the
//! process's start-up cost. Linked without PIE, those addresses are fixed at
//! link time. See docs/architecture.md ("Start-up cost").
//!
//! The workspace's `.cargo/config.toml` goes further on Linux with glibc
//! (static, `relocation-model=static`, so rustc links `-static -no-pie`
//! itself); this covers builds that do not read it (`cargo install --git`).
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let static_crt = features.split(',').any(|f| f == "crt-static");
    if os == "linux" && env == "gnu" && !static_crt {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
