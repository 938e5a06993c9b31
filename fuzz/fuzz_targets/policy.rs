//! The command policy never panics on any command line.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = agentops_gates::policy::CommandPolicy::defaults().check(text);
});
