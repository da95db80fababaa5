//! Reading typed fields out of a document tree while collecting every problem: each one with its
//! field path (`worker.replicas`), the line it is on, and what is allowed, in a user's words.
//!
//! A reader never stops at the first problem: a value it cannot use is reported and left out
//! (the caller falls back to a placeholder), and the path is marked *refused* so that the rule
//! checks run afterwards on the typed task do not report the same field a second time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use crate::document::{clip, Key, Kind, Node};
use crate::error::Problem;
use crate::serde_util::{secs_from_f64, ByteSize};

/// Collects the problems and the line of every field read from one document.
pub(crate) struct Decoder<'t> {
    /// The document's text, to quote scalars as written (`1.10`); None for a tree without source.
    text: Option<&'t str>,
    problems: Vec<Problem>,
    /// Field path → the line its key is on.
    lines: HashMap<String, usize>,
    /// Paths already reported.
    refused: HashSet<String>,
}

impl<'t> Decoder<'t> {
    pub(crate) fn new(text: Option<&'t str>) -> Self {
        Decoder { text, problems: Vec::new(), lines: HashMap::new(), refused: HashSet::new() }
    }

    /// Reports a problem with the field at `path` (on `line`; 0: unknown).
    pub(crate) fn problem(&mut self, path: &str, line: usize, message: impl Into<String>) {
        let field = if path.is_empty() { "task".to_owned() } else { path.to_owned() };
        self.refused.insert(path.to_owned());
        self.problems.push(Problem { field, message: message.into(), line: (line > 0).then_some(line) });
    }

    /// Remembers that the field at `path` is on `line`.
    pub(crate) fn record(&mut self, path: &str, line: usize) {
        if line > 0 {
            self.lines.entry(path.to_owned()).or_insert(line);
        }
    }

    /// Adds the problems a rule check found on the typed value: those about a field already
    /// reported are dropped, the others get the line of their field (or of its closest parent).
    pub(crate) fn add_rule_problems(&mut self, problems: Vec<Problem>) {
        for mut p in problems {
            if prefixes(&p.field).any(|prefix| self.refused.contains(prefix)) || self.refused.contains("") {
                continue;
            }
            if p.line.is_none() {
                p.line = prefixes(&p.field).find_map(|prefix| self.lines.get(prefix).copied());
            }
            self.problems.push(p);
        }
    }

    /// Every problem, sorted by line (those without a line last), at most [`MAX_PROBLEMS`]
    /// of them plus one saying how many more there are.
    pub(crate) fn into_problems(self) -> Vec<Problem> {
        let mut problems = self.problems;
        problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        if problems.len() > MAX_PROBLEMS {
            let more = problems.len() - MAX_PROBLEMS;
            problems.truncate(MAX_PROBLEMS);
            problems.push(Problem {
                field: "task".to_owned(),
                message: format!("{more} more problems not shown: fix these first"),
                line: None,
            });
        }
        problems
    }

    /// The fields of a map at `path`; a problem (and None) if the node is not a map.
    pub(crate) fn fields<'n>(&mut self, node: &'n Node, path: &str, what: &str) -> Option<Fields<'n>> {
        match &node.kind {
            Kind::Map(entries) => Some(Fields {
                path: path.to_owned(),
                line: node.line,
                entries: entries.iter().map(|(k, v)| (k, v, false)).collect(),
                known: Vec::new(),
            }),
            _ => {
                let got = node.describe(self.text);
                self.problem(path, node.line, format!("must be {what}, not {got}"));
                None
            }
        }
    }

    /// A refusal: the node is not `what`.
    pub(crate) fn expected(&mut self, node: &Node, path: &str, what: &str) {
        let got = node.describe(self.text);
        self.problem(path, node.line, format!("must be {what}, not {got}"));
    }

    /// Text; a number or `true`/`false` is taken as written.
    pub(crate) fn text(&mut self, node: &Node, path: &str) -> Option<String> {
        match node.scalar_text(self.text) {
            Some(text) => Some(text),
            None => {
                self.expected(node, path, "text");
                None
            }
        }
    }

    /// `true` or `false`.
    pub(crate) fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match node.kind {
            Kind::Bool(b) => Some(b),
            _ => {
                self.expected(node, path, "true or false");
                None
            }
        }
    }

    /// A whole number that fits a `u32`; `words` says which ones the field allows
    /// ("a whole number from 1 to 10000"). The range itself is the rule check's to enforce.
    pub(crate) fn whole_number(&mut self, node: &Node, path: &str, words: &str) -> Option<u32> {
        match node.kind {
            Kind::UInt(n) => match u32::try_from(n) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.expected(node, path, words);
                    None
                }
            },
            _ => {
                self.expected(node, path, words);
                None
            }
        }
    }

    /// Any number (`0.5`, `2`).
    pub(crate) fn number(&mut self, node: &Node, path: &str, words: &str) -> Option<f64> {
        match node.kind {
            Kind::UInt(n) => Some(n as f64),
            Kind::Int(n) => Some(n as f64),
            Kind::Float(f) => Some(f),
            _ => {
                self.expected(node, path, words);
                None
            }
        }
    }

    /// A duration in seconds (whole or fractional, not negative); `words` says which the field
    /// allows ("a number of seconds from 0 to 86400 (one day)").
    pub(crate) fn seconds(&mut self, node: &Node, path: &str, words: &str) -> Option<Duration> {
        let value = match node.kind {
            Kind::UInt(n) => n as f64,
            Kind::Int(n) => n as f64,
            Kind::Float(f) => f,
            _ => {
                self.expected(node, path, words);
                return None;
            }
        };
        match secs_from_f64(path, value) {
            Ok(d) => Some(d),
            Err(_) => {
                self.expected(node, path, words);
                None
            }
        }
    }

    /// A byte size: a whole number of bytes, or text with a unit (`512M`, `1g`).
    pub(crate) fn byte_size(&mut self, node: &Node, path: &str) -> Option<ByteSize> {
        const WORDS: &str = "a size: a number of bytes, or a number with k, m or g (like 512M)";
        match &node.kind {
            Kind::UInt(n) => Some(ByteSize(*n)),
            Kind::Text(s) => match ByteSize::parse(s) {
                Ok(size) => Some(size),
                Err(message) => {
                    self.problem(path, node.line, format!("{message} ({WORDS})"));
                    None
                }
            },
            _ => {
                self.expected(node, path, WORDS);
                None
            }
        }
    }

    /// One of `choices` (exact text).
    pub(crate) fn one_of<'c>(&mut self, node: &Node, path: &str, choices: &[&'c str]) -> Option<&'c str> {
        let found = match &node.kind {
            Kind::Text(s) => choices.iter().find(|c| **c == s.as_str()).copied(),
            _ => None,
        };
        if found.is_none() {
            self.expected(node, path, &format!("one of {}", choices.join(", ")));
        }
        found
    }

    /// One character (a CSV delimiter: `","`, `";"`, a tab).
    pub(crate) fn character(&mut self, node: &Node, path: &str) -> Option<char> {
        let text = self.text(node, path)?;
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Some(c),
            _ => {
                self.expected(node, path, "one character, like \",\" or \";\"");
                None
            }
        }
    }

    /// A list of text (`[a, b]`); each item that is not text is reported at `path[i]`.
    pub(crate) fn text_list(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let Kind::List(items) = &node.kind else {
            self.expected(node, path, "a list of text, like [a, b]");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if let Some(text) = self.text(item, &format!("{path}[{i}]")) {
                out.push(text);
            }
        }
        Some(out)
    }

    /// A map of text to text (labels): every key once.
    pub(crate) fn text_map(&mut self, node: &Node, path: &str) -> Option<BTreeMap<String, String>> {
        let Kind::Map(entries) = &node.kind else {
            self.expected(node, path, "a map of KEY: VALUE");
            return None;
        };
        let mut out = BTreeMap::new();
        let mut seen = HashMap::new();
        for (key, value) in entries {
            let entry_path = format!("{path}.{}", key.name);
            if !self.first_time(&mut seen, key, &entry_path) {
                continue;
            }
            match self.map_value(value, &entry_path) {
                Some(v) => {
                    out.insert(key.name.clone(), v);
                }
                None => continue,
            }
        }
        Some(out)
    }

    /// An environment: a list of `"KEY=VALUE"` (ATQ-Director's form) or a map of KEY: VALUE;
    /// every variable once, in order.
    pub(crate) fn environment(&mut self, node: &Node, path: &str) -> Option<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut seen = HashMap::new();
        match &node.kind {
            Kind::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    let Some(entry) = self.text(item, &item_path) else { continue };
                    let Some((k, v)) = entry.split_once('=') else {
                        self.problem(
                            &item_path,
                            item.line,
                            format!("\"{}\" has no '=': write it as \"KEY=VALUE\"", clip(&entry, 40)),
                        );
                        continue;
                    };
                    let key = Key { name: k.to_owned(), line: item.line };
                    if self.first_time(&mut seen, &key, &format!("{path}.{k}")) {
                        out.push((key.name, v.to_owned()));
                    }
                }
            }
            Kind::Map(entries) => {
                for (key, value) in entries {
                    let entry_path = format!("{path}.{}", key.name);
                    if !self.first_time(&mut seen, key, &entry_path) {
                        continue;
                    }
                    if let Some(v) = self.map_value(value, &entry_path) {
                        out.push((key.name.clone(), v));
                    }
                }
            }
            _ => {
                self.expected(node, path, "a list of \"KEY=VALUE\" or a map of KEY: VALUE");
                return None;
            }
        }
        Some(out)
    }

    /// Whether `key` is new in `seen`; a second one is reported (naming both lines).
    fn first_time(&mut self, seen: &mut HashMap<String, usize>, key: &Key, path: &str) -> bool {
        match seen.get(&key.name) {
            Some(first) => {
                let first = *first;
                let name = clip(&key.name, 60);
                let message = if first > 0 {
                    format!("\"{name}\" is set twice (first on line {first}): keep one")
                } else {
                    format!("\"{name}\" is set twice: keep one")
                };
                self.problem(path, key.line, message);
                false
            }
            None => {
                seen.insert(key.name.clone(), key.line);
                self.record(path, key.line);
                true
            }
        }
    }

    /// The value of a KEY: VALUE entry: text, a number or a boolean, kept as written.
    fn map_value(&mut self, node: &Node, path: &str) -> Option<String> {
        match node.kind {
            Kind::Null => {
                self.problem(path, node.line, "has no value: write KEY: \"\" for an empty one");
                None
            }
            _ => self.text(node, path),
        }
    }

    /// A field whose type reads itself with serde (for a new field before it has a reader of
    /// its own here): its first problem is reported at `path`, in serde's words.
    #[allow(dead_code)]
    pub(crate) fn serde<T: serde::de::DeserializeOwned>(&mut self, node: &Node, path: &str) -> Option<T> {
        match T::deserialize(node.to_json()) {
            Ok(value) => Some(value),
            Err(e) => {
                self.problem(path, node.line, e.to_string());
                None
            }
        }
    }
}

/// Most problems one validation reports (the rest are counted).
pub(crate) const MAX_PROBLEMS: usize = 200;

/// `a.b.c`, `a.b`, `a` (longest first): the paths of a field and its parents.
fn prefixes(field: &str) -> impl Iterator<Item = &str> {
    let cuts = field.char_indices().filter(|(_, c)| *c == '.' || *c == '[').map(|(i, _)| i);
    std::iter::once(field).chain(cuts.collect::<Vec<_>>().into_iter().rev().map(move |i| &field[..i]))
}

/// The fields of one map, read one by one; what is left at [`finish`](Fields::finish) is unknown.
pub(crate) struct Fields<'n> {
    path: String,
    line: usize,
    entries: Vec<(&'n Key, &'n Node, bool)>,
    known: Vec<&'static str>,
}

impl<'n> Fields<'n> {
    fn child(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// The field `name`, if set (a null value counts as not set); set twice is a problem.
    fn get(&mut self, d: &mut Decoder<'_>, name: &'static str) -> Option<(&'n Node, String)> {
        self.known.push(name);
        let path = self.child(name);
        let mut found: Option<(&'n Node, usize)> = None;
        for (key, node, used) in &mut self.entries {
            if key.name != name {
                continue;
            }
            *used = true;
            match found {
                None => found = Some((node, key.line)),
                Some((_, first)) => {
                    d.problem(&path, key.line, format!("is set twice (first on line {first}): keep one"))
                }
            }
        }
        let (node, line) = found?;
        d.record(&path, line);
        (node.kind != Kind::Null).then_some((node, path))
    }

    /// The field `name` read by `read`, if it is set.
    pub(crate) fn optional<'t, T>(
        &mut self,
        d: &mut Decoder<'t>,
        name: &'static str,
        read: impl FnOnce(&mut Decoder<'t>, &Node, &str) -> Option<T>,
    ) -> Option<T> {
        let (node, path) = self.get(d, name)?;
        read(d, node, &path)
    }

    /// The field `name` read by `read`; a problem if it is not set (`what` says what to write).
    pub(crate) fn required<'t, T>(
        &mut self,
        d: &mut Decoder<'t>,
        name: &'static str,
        what: &str,
        read: impl FnOnce(&mut Decoder<'t>, &Node, &str) -> Option<T>,
    ) -> Option<T> {
        match self.get(d, name) {
            Some((node, path)) => read(d, node, &path),
            None => {
                let path = self.child(name);
                if !d.refused.contains(&path) {
                    d.problem(&path, self.line, format!("missing: {what}"));
                }
                None
            }
        }
    }

    /// Reports every field that was not read, suggesting the known field it resembles.
    pub(crate) fn finish(self, d: &mut Decoder<'_>) {
        for (key, _, used) in &self.entries {
            if *used {
                continue;
            }
            let closest = self
                .known
                .iter()
                .map(|k| (strsim::jaro_winkler(&key.name.to_ascii_lowercase(), &k.to_ascii_lowercase()), k))
                .filter(|(score, _)| *score > 0.85)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let name = clip(&key.name, 60);
            let message = match closest {
                Some((_, k)) => format!("unknown field \"{name}\": did you mean `{k}`?"),
                None => format!("unknown field \"{name}\": the fields here are {}", self.known.join(", ")),
            };
            d.problem(&self.child(&key.name), key.line, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_run_from_the_field_to_its_root() {
        let all: Vec<&str> = prefixes("worker.environment[3].x").collect();
        assert_eq!(all, ["worker.environment[3].x", "worker.environment[3]", "worker.environment", "worker"]);
    }
}
