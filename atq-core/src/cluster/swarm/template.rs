//! Swarm's Go templates: literal text kept literal, and per-replica configs.
//!
//! Swarm expands every service environment value, and the data of a config created with
//! `Templating: {Name: "golang"}`, as a Go `text/template` for each task, on the node that runs
//! it (swarmkit `template/expand.go`, `template/context.go`): `{{.Task.Slot}}` is the task's
//! slot, 1 to N for a replicated service. There are no arithmetic functions (engine 20.10:
//! `function "add" not defined`), which is why atq's worker index is the slot itself.
//!
//! A per-replica config ([`ConfigSpec::per_replica`]) becomes one templated config holding
//! every replica's content, each behind its slot:
//!
//! ```text
//! <data>{{$s := .Task.Slot}}{{if eq $s "1"}}<replica 1>{{else if eq $s "2"}}<replica 2>…{{end}}
//! ```
//!
//! Replicas whose content is empty get no branch. Literal text is escaped so that it can never
//! open an action: every `{` becomes `{{"{"}}` (only `{{` opens one, but a literal `{` just
//! before a branch's `{{` would). Bytes that are not UTF-8, NUL and CR pass through a Go
//! template unchanged (checked on engine 20.10). A template that fails to expand fails the task
//! ("failed to expand templated config"); it is never delivered as raw text.

use crate::cluster::ConfigSpec;

/// What a literal `{` becomes: an action printing the string "{".
const OPEN_BRACE: &[u8] = br#"{{"{"}}"#;

/// Appends `text` to `out` so that a Go template prints it as it is.
fn push_literal(out: &mut Vec<u8>, text: &[u8]) {
    for chunk in text.split_inclusive(|b| *b == b'{') {
        match chunk.split_last() {
            Some((b'{', before)) => {
                out.extend_from_slice(before);
                out.extend_from_slice(OPEN_BRACE);
            }
            _ => out.extend_from_slice(chunk),
        }
    }
}

/// An environment value as swarm must receive it to set it literally: unchanged unless it
/// holds `{{`, else with every `{` escaped.
pub(super) fn literal_env_value(value: &str) -> String {
    if !value.contains("{{") {
        return value.to_owned();
    }
    let mut out = Vec::with_capacity(value.len() + 16);
    push_literal(&mut out, value.as_bytes());
    // Only ASCII was inserted, at character boundaries: still UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| value.to_owned())
}

/// The value that makes swarm set a variable to the task's slot.
pub(super) const SLOT: &str = "{{.Task.Slot}}";

/// The templated data of a per-replica config (see the module docs).
pub(super) fn per_replica_template(spec: &ConfigSpec) -> Vec<u8> {
    let own: usize = spec.per_replica.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(spec.data.len() + own + own / 8 + 32 * spec.per_replica.len() + 64);
    push_literal(&mut out, &spec.data);
    let mut first = true;
    for (i, content) in spec.per_replica.iter().enumerate().filter(|(_, c)| !c.is_empty()) {
        if first {
            out.extend_from_slice(b"{{$s := .Task.Slot}}{{if eq $s \"");
            first = false;
        } else {
            out.extend_from_slice(b"{{else if eq $s \"");
        }
        out.extend_from_slice((i + 1).to_string().as_bytes());
        out.extend_from_slice(b"\"}}");
        push_literal(&mut out, content);
    }
    if !first {
        out.extend_from_slice(b"{{end}}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_left_alone_and_delimiters_escaped() {
        assert_eq!(literal_env_value("a {b} c}}"), "a {b} c}}");
        assert_eq!(literal_env_value("{{.Task.Slot}}"), r#"{{"{"}}{{"{"}}.Task.Slot}}"#);
        assert_eq!(literal_env_value("é{{"), r#"é{{"{"}}{{"{"}}"#);
    }

    #[test]
    fn each_replica_content_sits_behind_its_slot() {
        let spec = ConfigSpec {
            data: b"id,name\n".to_vec(),
            per_replica: vec![b"1,a\n".to_vec(), Vec::new(), b"3,{x}\n".to_vec()],
            ..ConfigSpec::default()
        };
        assert_eq!(
            String::from_utf8(per_replica_template(&spec)).unwrap(),
            r#"id,name
{{$s := .Task.Slot}}{{if eq $s "1"}}1,a
{{else if eq $s "3"}}3,{{"{"}}x}
{{end}}"#
        );
    }

    #[test]
    fn with_no_replica_content_the_template_is_the_escaped_data() {
        let spec = ConfigSpec { data: b"h{\n".to_vec(), per_replica: vec![Vec::new(); 3], ..ConfigSpec::default() };
        assert_eq!(
            per_replica_template(&spec),
            br#"h{{"{"}}
"#
        );
    }
}
