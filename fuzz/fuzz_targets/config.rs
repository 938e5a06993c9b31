//! config.toml: validation never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = agentops_core::config::check_file(std::path::Path::new(".agents/config.toml"), text);
});
