//! Entry files (front matter + body): parsing never panics, and whatever
//! parses renders back to text that parses to the same title and tags.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(e) = agentops_knowledge::entry::parse(".agents/learnings/fuzz.md", text) {
        if let Ok(rendered) = agentops_knowledge::entry::render(&e) {
            let back = agentops_knowledge::entry::parse(".agents/learnings/fuzz.md", &rendered)
                .expect("a rendered entry parses");
            assert_eq!(back.tags, e.tags);
        }
    }
});
