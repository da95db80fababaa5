//! Property tests: task-file parsing never panics and always answers quickly, whatever the text
//! (random bytes, or a valid file with random edits), in both formats.

use std::time::{Duration, Instant};

use atq_core::task::{Format, ParseBudget};
use atq_core::Task;
use proptest::prelude::*;

const VALID_YAML: &str = "name: t\nworker:\n  image: i\n  replicas: 3\n  environment: {A: 1, B: x}\n  labels: {k: v}\n  healthCheck: {test: 'true', interval: 1}\n  resources: {cpus: 0.5, memory: 64M}\nmaster:\n  image: i\n  args: [a, b]\nwaitCommand: {command: 'true', timeout: 5}\nrunTimeout: 60\nlabels: {team: perf}\n";
const VALID_JSON: &str =
    r#"{"name":"t","worker":{"image":"i","replicas":3,"environment":["A=1"]},"master":{"image":"i"},"delay":1}"#;

fn check(text: &str) {
    for format in [Format::Yaml, Format::Json] {
        let start = Instant::now();
        let result = Task::from_str_with(text, format, &ParseBudget::default());
        assert!(start.elapsed() < Duration::from_secs(2), "{format:?} took {:?} on {text:?}", start.elapsed());
        if let Err(e) = result {
            assert!(!e.problems.is_empty());
            let _ = e.to_string();
        }
    }
}

/// `base` with `edits` applied: each replaces one byte position's char with a YAML-significant one.
fn edited(base: &str, edits: &[(usize, char)]) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    for (at, c) in edits {
        let i = at % (chars.len() + 1);
        if i < chars.len() && at % 3 == 0 {
            chars[i] = *c;
        } else if at % 3 == 1 {
            chars.insert(i.min(chars.len()), *c);
        } else if i < chars.len() {
            chars.remove(i);
        }
    }
    chars.into_iter().collect()
}

fn significant() -> impl Strategy<Value = char> {
    prop::sample::select(vec![
        ':', '-', '[', ']', '{', '}', '&', '*', '!', '"', '\'', '\n', ' ', '#', '|', '>', ',', '?', '%', '@', '\t',
        '0', 'a', '\u{0}', 'é',
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        check(&text);
    }

    #[test]
    fn edited_valid_files_never_panic(edits in prop::collection::vec((0usize..2000, significant()), 1..12)) {
        check(&edited(VALID_YAML, &edits));
        check(&edited(VALID_JSON, &edits));
    }
}
