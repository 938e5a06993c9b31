//! Compiles the built-in deny patterns to dense DFAs ahead of time, so that
//! a denied command on the hook's clock deserialises a table (no parser, no
//! NFA, no lazy DFA cache) instead of compiling its pattern.

use std::io::Write;

include!("src/builtin_deny.rs");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=src/builtin_deny.rs");
    println!("cargo::rerun-if-changed=build.rs");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").ok_or("cargo set no OUT_DIR")?);
    let mut table = String::from("&[\n");
    for (i, (id, pattern, _)) in DEFAULT_DENY.iter().enumerate() {
        // An empty file stands for a pattern that could not be compiled
        // here: the crate compiles it at run time instead.
        let bytes = dfa_bytes(pattern).unwrap_or_default();
        let name = format!("deny-{i}.dfa");
        std::fs::File::create(out.join(&name)).and_then(|mut f| f.write_all(&bytes))?;
        table.push_str(&format!(
            "    ({id:?}, &Aligned {{ _align: [], bytes: *include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{name}\")) }}.bytes),\n"
        ));
    }
    table.push(']');
    std::fs::write(out.join("deny_dfas.rs"), table)?;
    Ok(())
}

/// The pattern as the crate reads it at run time (over bytes, ASCII
/// classes), as a minimised dense DFA in little-endian form.
fn dfa_bytes(pattern: &str) -> Option<Vec<u8>> {
    use regex_automata::dfa::{StartKind, dense};
    use regex_automata::nfa::thompson;
    use regex_automata::util::syntax;
    let dfa = dense::Builder::new()
        .configure(
            dense::Config::new()
                .start_kind(StartKind::Unanchored)
                .minimize(true),
        )
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .thompson(
            thompson::Config::new()
                .utf8(false)
                .which_captures(thompson::WhichCaptures::None),
        )
        .build(pattern)
        .ok()?;
    let (bytes, pad) = dfa.to_bytes_little_endian();
    Some(bytes[pad..].to_vec())
}
