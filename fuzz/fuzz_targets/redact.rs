//! Redaction never panics, keeps the line count, and is idempotent.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let once = agentops_core::redact::redact(text).into_owned();
    assert_eq!(once.matches('\n').count(), text.matches('\n').count());
    let twice = agentops_core::redact::redact(&once).into_owned();
    assert_eq!(once, twice);
    let _ = agentops_core::redact::builtin().findings(text);
});
