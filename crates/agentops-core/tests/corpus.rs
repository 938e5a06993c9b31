//! The checked-in redaction corpus: every secret shape is redacted by the rule
//! named for it, and every look-alike survives unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentops_core::redact;

fn corpus(name: &str) -> String {
    let path = format!("{}/tests/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.is_empty())
        .map(|(i, l)| (i + 1, l))
}

/// The part of a sample that is the secret: the longest run of secret-ish characters.
fn secret_part(sample: &str) -> String {
    sample
        .split(|c: char| c.is_whitespace() || "\"'(),;".contains(c))
        .max_by_key(|s| s.len())
        .unwrap_or("")
        .to_owned()
}

#[test]
fn every_secret_shape_is_redacted_by_its_rule() {
    let text = corpus("secrets.tsv");
    let mut failures = Vec::new();
    let mut count = 0;
    for (line, row) in lines(&text) {
        let (rule, sample) = row.split_once('\t').expect("rule<TAB>text");
        let sample = sample.replace("\\n", "\n");
        count += 1;
        let out = redact::redact(&sample);
        let findings = redact::builtin().findings(&sample);
        let marker = format!("[REDACTED:{rule}]");
        if !out.contains(&marker) || !findings.iter().any(|f| f.rule == rule) {
            failures.push(format!(
                "secrets.tsv:{line}: expected {marker}, got {out:?}"
            ));
            continue;
        }
        // Nothing that looks like the secret survives anywhere in the output.
        let secret = secret_part(&sample);
        if secret.len() > 12 && out.contains(&secret) && !secret.contains("REDACTED") {
            failures.push(format!(
                "secrets.tsv:{line}: `{secret}` survived in {out:?}"
            ));
        }
    }
    assert!(count >= 30, "corpus has only {count} secret shapes");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_lookalike_survives() {
    let text = corpus("lookalikes.txt");
    let mut failures = Vec::new();
    let mut count = 0;
    for (line, sample) in lines(&text) {
        count += 1;
        let out = redact::redact(sample);
        if out != sample {
            failures.push(format!("lookalikes.txt:{line}: {sample:?} became {out:?}"));
        }
    }
    assert!(count >= 30, "corpus has only {count} look-alikes");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
