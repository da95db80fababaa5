//! Untrusted text (a task file, the body of a request) read into a tree of [`Node`]s that
//! remember their line, within a [`ParseBudget`].
//!
//! Both formats go through one YAML parser, serde-saphyr (no `unsafe`, documented budgets, spans
//! on every node): YAML 1.2 is a superset of JSON, and JSON text is first checked to be strict
//! JSON by serde_json, so a JSON body is never read more loosely than JSON allows. The budget is
//! enforced twice: on the parser's event stream (nesting depth, nodes, aliases, one document) and
//! while the tree is built (nodes and bytes *after* alias expansion, which the event stream does
//! not see), so no input makes the tree larger than the budget says.

use std::cell::Cell;
use std::fmt;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::Spanned;

use crate::error::Problem;

/// Limits on reading one untrusted document (a task file or a request body).
///
/// Past any of them the document is refused at once with a problem naming the limit; nothing
/// past it is read or allocated. The defaults fit any real task file many times over.
///
/// ```
/// use atq_core::task::{Format, ParseBudget, Task};
///
/// let budget = ParseBudget { max_bytes: 64 * 1024, ..ParseBudget::default() };
/// let text = "name: t\nworker: {image: i}\nmaster: {image: i}\n";
/// let task = Task::from_str_with(text, Format::Yaml, &budget)?;
/// assert_eq!(task.name(), "t");
/// # Ok::<(), atq_core::ValidationError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseBudget {
    /// Largest document, in bytes (default 1 MiB).
    pub max_bytes: usize,
    /// Deepest nesting of lists and maps (default 32; a task file needs 5).
    pub max_depth: usize,
    /// Most values (scalars, lists and maps) in the document after alias expansion (default 100,000).
    pub max_nodes: usize,
    /// Most YAML aliases (`*name`) and anchors (`&name`) each (default 100).
    pub max_aliases: usize,
    /// Most bytes of text (keys and values) after alias expansion (default 4 MiB).
    pub max_text_bytes: usize,
}

impl Default for ParseBudget {
    fn default() -> Self {
        ParseBudget {
            max_bytes: 1024 * 1024,
            max_depth: 32,
            max_nodes: 100_000,
            max_aliases: 100,
            max_text_bytes: 4 * 1024 * 1024,
        }
    }
}

/// The format of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (task files).
    Yaml,
    /// JSON (ATQ-Director's payload; the HTTP API's bodies).
    Json,
}

impl Format {
    /// JSON for a `.json` file or text that starts with `{`; YAML otherwise.
    #[must_use]
    pub fn guess(path: Option<&Path>, text: &str) -> Format {
        let json_name = path.and_then(Path::extension).is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if json_name || text.trim_start().starts_with('{') {
            Format::Json
        } else {
            Format::Yaml
        }
    }
}

/// One value of a document and the line (1-based) it starts on; 0 when the source gave no lines
/// (a document handed over by another serde deserializer).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) line: usize,
    /// The byte range of a scalar's source text, when known (`1.10` stays `1.10` as text).
    pub(crate) source: Option<(usize, usize)>,
    pub(crate) kind: Kind,
}

/// What a [`Node`] holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
    List(Vec<Node>),
    /// Entries in document order, duplicates kept (the reader of the map reports them).
    Map(Vec<(Key, Node)>),
}

/// A map key: always text, with its line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    pub(crate) name: String,
    pub(crate) line: usize,
}

impl Node {
    /// What kind of value this is, in a user's words ("a list", "the number -2").
    pub(crate) fn describe(&self, text: Option<&str>) -> String {
        match &self.kind {
            Kind::Null => "nothing (null)".to_owned(),
            Kind::Bool(b) => format!("{b}"),
            Kind::Int(_) | Kind::UInt(_) | Kind::Float(_) => {
                format!("the number {}", self.scalar_text(text).unwrap_or_default())
            }
            Kind::Text(s) => format!("the text {:?}", crate::document::clip(s, 40)),
            Kind::List(_) => "a list".to_owned(),
            Kind::Map(_) => "a map".to_owned(),
        }
    }

    /// A scalar as text, as it was written when the source is known (`1.10`, `0x1F`).
    pub(crate) fn scalar_text(&self, text: Option<&str>) -> Option<String> {
        let written = self.source.and_then(|(start, len)| text?.get(start..start.checked_add(len)?));
        match &self.kind {
            Kind::Text(s) => Some(s.clone()),
            Kind::Bool(_) | Kind::Int(_) | Kind::UInt(_) | Kind::Float(_) if written.is_some() => {
                written.map(str::to_owned)
            }
            Kind::Bool(b) => Some(b.to_string()),
            Kind::Int(n) => Some(n.to_string()),
            Kind::UInt(n) => Some(n.to_string()),
            Kind::Float(f) => Some(f.to_string()),
            Kind::Null | Kind::List(_) | Kind::Map(_) => None,
        }
    }

    /// The value as JSON (for fields read through their serde implementation).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(n) => Value::from(*n),
            Kind::UInt(n) => Value::from(*n),
            Kind::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Kind::Text(s) => Value::String(s.clone()),
            Kind::List(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect()),
        }
    }
}

/// At most `max` characters of `s`, with `…` when cut (for messages quoting user text).
pub(crate) fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Reads `text` as `format` into a tree, within `budget`.
///
/// The error is one problem (field `task`) with the line of the syntax error or of the limit
/// that was reached.
pub(crate) fn parse(text: &str, format: Format, budget: &ParseBudget) -> Result<Node, Problem> {
    if text.len() > budget.max_bytes {
        return Err(whole_file(
            format!(
                "the document is {} bytes, more than the limit of {} bytes: a task file is small; keep data in a data bundle",
                text.len(),
                budget.max_bytes
            ),
            None,
        ));
    }
    if text.trim().is_empty() {
        return Err(whole_file("the document is empty: a task needs at least name, worker and master", None));
    }
    if format == Format::Json {
        // Strict JSON first (linear, no allocation; serde_json refuses nesting past 128 at once).
        if let Err(e) = serde_json::from_str::<de::IgnoredAny>(text) {
            let line = (e.line() > 0).then_some(e.line());
            return Err(whole_file(format!("not valid JSON: {}", strip_location(&e.to_string())), line));
        }
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(budget.max_bytes),
            max_depth: budget.max_depth,
            // The scanner counts flow nesting ahead of the depth budget: its refusal is the same limit.
            flow_nesting_limit: budget.max_depth,
            max_nodes: budget.max_nodes,
            max_events: budget.max_nodes.saturating_mul(2).saturating_add(8),
            max_aliases: budget.max_aliases,
            max_anchors: budget.max_aliases,
            max_documents: 1,
            max_total_scalar_bytes: budget.max_text_bytes,
            max_merge_keys: budget.max_aliases,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: budget.max_nodes,
            max_replay_stack_depth: budget.max_depth,
        },
        duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::PassThrough,
        strict_booleans: true,
        with_snippet: false,
    };
    let tally = Tally::install(budget, true);
    let result = serde_saphyr::from_str_with_options::<Node>(text, options);
    let breach = tally.finish();
    if let Ok(Node { kind: Kind::Null, .. }) = result {
        return Err(whole_file("the document is empty: a task needs at least name, worker and master", None));
    }
    result.map_err(|e| {
        let e = original(&e);
        let line = e.location().map(|l| l.line()).and_then(|l| usize::try_from(l).ok()).filter(|l| *l > 0);
        let message = match (breach, e) {
            (Some(limit), _) => limit.message(budget),
            (None, serde_saphyr::Error::Budget { breach, .. }) => breach_message(breach, budget),
            // granit-parser's words when `flow_nesting_limit` (our depth) is reached.
            (None, e) if e.to_string().contains("recursion limit exceeded") => Limit::Depth.message(budget),
            (None, e) => format!("not valid {}: {}", format.name(), strip_location(&e.to_string())),
        };
        whole_file(message, line)
    })
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Yaml => "YAML",
            Format::Json => "JSON",
        }
    }
}

/// The error itself, without the snippet and alias-location wrappers.
fn original(mut e: &serde_saphyr::Error) -> &serde_saphyr::Error {
    while let serde_saphyr::Error::AliasError { error, .. } | serde_saphyr::Error::WithSnippet { error, .. } = e {
        e = error;
    }
    e
}

fn whole_file(message: impl Into<String>, line: Option<usize>) -> Problem {
    Problem { field: "task".to_owned(), message: message.into(), line }
}

/// The parser's words for a budget breach, in the budget's terms.
fn breach_message(breach: &BudgetBreach, budget: &ParseBudget) -> String {
    match breach {
        BudgetBreach::Depth { .. } => Limit::Depth.message(budget),
        BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. } => Limit::Nodes.message(budget),
        BudgetBreach::Aliases { .. } | BudgetBreach::Anchors { .. } | BudgetBreach::AliasAnchorRatio { .. } => {
            Limit::Aliases.message(budget)
        }
        BudgetBreach::ScalarBytes { .. } => Limit::TextBytes.message(budget),
        BudgetBreach::Documents { .. } => {
            "the file holds more than one YAML document (`---`): a task file is one document".to_owned()
        }
        BudgetBreach::InputBytes { .. } => format!("the document is more than the limit of {} bytes", budget.max_bytes),
        other => format!("the document is too large or too complex ({other:?})"),
    }
}

fn strip_location(message: &str) -> String {
    let message = message.trim().trim_start_matches("error: ");
    // serde-saphyr: "line 3 column 5: message"; serde_json: "message at line 3 column 5".
    let message = match message.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => rest,
        _ => message,
    };
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// A limit the tree builder enforces itself (after alias expansion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    Depth,
    Nodes,
    Aliases,
    TextBytes,
}

impl Limit {
    fn message(self, budget: &ParseBudget) -> String {
        match self {
            Limit::Depth => format!(
                "lists and maps are nested more than {} deep, the limit: a task file needs a handful of levels",
                budget.max_depth
            ),
            Limit::Nodes => {
                format!("the document holds more than {} values (after expanding aliases), the limit", budget.max_nodes)
            }
            Limit::Aliases => format!(
                "the document uses more than {} YAML aliases or anchors (`*name`, `&name`), the limit",
                budget.max_aliases
            ),
            Limit::TextBytes => format!(
                "the document holds more than {} bytes of text (after expanding aliases), the limit",
                budget.max_text_bytes
            ),
        }
    }
}

/// What is left of the budget while a tree is built on this thread.
///
/// `Spanned<T>` (the only way to get a node's line from serde-saphyr) requires `T: Deserialize`,
/// which takes no seed, so the builder finds its budget here. [`Tally::install`] sets it for one
/// parse and restores the previous one when dropped.
#[derive(Debug, Clone, Copy)]
struct Left {
    /// Whether the deserializer is serde-saphyr's, which gives spans (`Spanned<T>` fails on
    /// other deserializers' map keys).
    spanned: bool,
    nodes: usize,
    text_bytes: usize,
    depth: usize,
    breach: Option<Limit>,
}

thread_local! {
    static LEFT: Cell<Option<Left>> = const { Cell::new(None) };
}

/// The budget of one tree build on this thread (see [`Left`]).
pub(crate) struct Tally {
    previous: Option<Left>,
}

impl Tally {
    /// Starts counting against `budget` on this thread, for a tree read from serde-saphyr
    /// (`spanned`: lines kept) or from any other deserializer (no lines).
    pub(crate) fn install(budget: &ParseBudget, spanned: bool) -> Tally {
        let left = Left {
            spanned,
            nodes: budget.max_nodes,
            text_bytes: budget.max_text_bytes,
            depth: budget.max_depth,
            breach: None,
        };
        Tally { previous: LEFT.with(|l| l.replace(Some(left))) }
    }

    /// Stops counting; the limit that was reached, if any.
    fn finish(self) -> Option<Limit> {
        LEFT.with(|l| l.get()).and_then(|left| left.breach)
    }

    /// The limit that was reached, as a message, if any (for callers outside this module).
    pub(crate) fn finish_message(self, budget: &ParseBudget) -> Option<String> {
        self.finish().map(|limit| limit.message(budget))
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        LEFT.with(|l| l.set(self.previous));
    }
}

/// Spends from this thread's budget; `Err` names the limit reached. Without an installed
/// budget (never the case inside this crate) nothing is counted.
fn spend(nodes: usize, text_bytes: usize) -> Result<(), Limit> {
    LEFT.with(|cell| {
        let Some(mut left) = cell.get() else { return Ok(()) };
        let result = if left.nodes < nodes {
            Err(Limit::Nodes)
        } else if left.text_bytes < text_bytes {
            Err(Limit::TextBytes)
        } else {
            left.nodes -= nodes;
            left.text_bytes -= text_bytes;
            Ok(())
        };
        if let Err(limit) = result {
            left.breach.get_or_insert(limit);
        }
        cell.set(Some(left));
        result
    })
}

/// Enters (`true`) or leaves (`false`) one level of nesting.
fn nest(enter: bool) -> Result<(), Limit> {
    LEFT.with(|cell| {
        let Some(mut left) = cell.get() else { return Ok(()) };
        let result = if !enter {
            left.depth = left.depth.saturating_add(1);
            Ok(())
        } else if left.depth == 0 {
            left.breach.get_or_insert(Limit::Depth);
            Err(Limit::Depth)
        } else {
            left.depth -= 1;
            Ok(())
        };
        cell.set(Some(left));
        result
    })
}

fn over<E: de::Error>(limit: Limit) -> E {
    E::custom(format!("budget reached: {limit:?}"))
}

fn line_of(location: &serde_saphyr::Location) -> usize {
    usize::try_from(location.line()).unwrap_or(0)
}

fn spanned() -> bool {
    LEFT.with(|l| l.get()).is_some_and(|left| left.spanned)
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        spend(1, 0).map_err(over)?;
        if !spanned() {
            return Ok(Node { line: 0, source: None, kind: Kind::deserialize(d)? });
        }
        let spanned = Spanned::<Kind>::deserialize(d)?;
        let span = spanned.referenced.span();
        let source = match (&spanned.value, span.byte_offset(), span.byte_len()) {
            (Kind::Bool(_) | Kind::Int(_) | Kind::UInt(_) | Kind::Float(_), Some(start), Some(len)) => {
                usize::try_from(start).ok().zip(usize::try_from(len).ok())
            }
            _ => None,
        };
        Ok(Node { line: line_of(&spanned.referenced), source, kind: spanned.value })
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !spanned() {
            let name = String::deserialize(d)?;
            spend(0, name.len()).map_err(over)?;
            return Ok(Key { name, line: 0 });
        }
        let spanned = Spanned::<String>::deserialize(d)?;
        spend(0, spanned.value.len()).map_err(over)?;
        Ok(Key { line: line_of(&spanned.referenced), name: spanned.value })
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value")
    }
    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        Kind::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Kind, E> {
        Ok(Kind::UInt(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Kind, E> {
        Ok(i64::try_from(v).map_or(Kind::Float(v as f64), Kind::Int))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Kind, E> {
        Ok(u64::try_from(v).map_or(Kind::Float(v as f64), Kind::UInt))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
        spend(0, v.len()).map_err(over)?;
        Ok(Kind::Text(v.to_owned()))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Kind, E> {
        match std::str::from_utf8(v) {
            Ok(s) => self.visit_str(s),
            Err(_) => Err(E::custom("binary data where text was expected")),
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        nest(true).map_err(over)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        nest(false).map_err(over)?;
        Ok(Kind::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        nest(true).map_err(over)?;
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Key>()? {
            entries.push((key, map.next_value::<Node>()?));
        }
        nest(false).map_err(over)?;
        Ok(Kind::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<Node, Problem> {
        parse(text, Format::Yaml, &ParseBudget::default())
    }

    #[test]
    fn nodes_remember_their_line_and_scalars_their_source() {
        let node = yaml("a: 1\nb:\n  c: 1.10\n  d: [x, 'y']\n").unwrap();
        let Kind::Map(entries) = &node.kind else { panic!("{node:?}") };
        assert_eq!(entries[1].0, Key { name: "b".into(), line: 2 });
        let Kind::Map(inner) = &entries[1].1.kind else { panic!() };
        assert_eq!(inner[0].1.line, 3);
        assert_eq!(inner[0].1.scalar_text(Some("a: 1\nb:\n  c: 1.10\n  d: [x, 'y']\n")).as_deref(), Some("1.10"));
        assert_eq!(inner[1].1.line, 4);
    }

    #[test]
    fn duplicate_keys_are_kept_for_the_reader() {
        let node = yaml("a: 1\na: 2\n").unwrap();
        let Kind::Map(entries) = &node.kind else { panic!() };
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn yes_and_no_stay_text() {
        let node = yaml("a: yes\nn: no\n").unwrap();
        let Kind::Map(entries) = &node.kind else { panic!() };
        assert_eq!(entries[0].1.kind, Kind::Text("yes".into()));
        assert_eq!(entries[1].0.name, "n");
    }

    #[test]
    fn a_document_over_the_size_limit_is_refused_before_parsing() {
        let budget = ParseBudget { max_bytes: 10, ..ParseBudget::default() };
        let e = parse("name: a-long-name\n", Format::Yaml, &budget).unwrap_err();
        assert!(e.message.contains("limit of 10 bytes"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused_naming_the_limit() {
        let text = format!("a: {}{}\n", "[".repeat(40), "]".repeat(40));
        let e = yaml(&text).unwrap_err();
        assert!(e.message.contains("nested more than 32 deep"), "{e}");
        let text = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        let e = parse(&format!("{{\"a\": {text}}}"), Format::Json, &ParseBudget::default()).unwrap_err();
        assert!(e.message.contains("nested more than 32 deep"), "{e}");
        let block: String = (0..40).map(|i| format!("{}k:\n", "  ".repeat(i))).collect();
        let e = yaml(&block).unwrap_err();
        assert!(e.message.contains("nested more than 32 deep"), "{e}");
    }

    #[test]
    fn alias_expansion_is_bounded_by_nodes_and_bytes() {
        // 20 aliases of a 300 KB string: 6 MB after expansion, past the 4 MiB default.
        let text = format!("a: &a \"{}\"\nb: [{}]\n", "x".repeat(300_000), vec!["*a"; 20].join(", "));
        let e = yaml(&text).unwrap_err();
        assert!(e.message.contains("bytes of text (after expanding aliases)"), "{e}");
        // Aliases of a list: nodes multiply.
        let list = vec!["1"; 1000].join(", ");
        let text = format!("a: &a [{list}]\nb: [{}]\n", vec!["*a"; 99].join(", "));
        let e = yaml(&text).unwrap_err();
        assert!(e.message.contains("values (after expanding aliases)"), "{e}");
        let text = format!("a: &a 1\nb: [{}]\n", vec!["*a"; 101].join(", "));
        let e = yaml(&text).unwrap_err();
        assert!(e.message.contains("aliases or anchors"), "{e}");
    }

    #[test]
    fn one_document_only() {
        let e = yaml("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(e.message.contains("more than one YAML document"), "{e}");
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn json_is_strict_json_with_lines() {
        let e = parse("{\n  \"a\": yes\n}", Format::Json, &ParseBudget::default()).unwrap_err();
        assert!(e.message.starts_with("not valid JSON"), "{e}");
        assert_eq!(e.line, Some(2));
        let node =
            parse("{\n\t\"a\": \"\\/\\ud83d\\ude00\",\n\t\"b\": [1, 2.5]\n}", Format::Json, &ParseBudget::default())
                .unwrap();
        let Kind::Map(entries) = &node.kind else { panic!() };
        assert_eq!(entries[0].1.kind, Kind::Text("/😀".into()));
        assert_eq!(entries[1].0.line, 3);
    }

    #[test]
    fn the_budget_is_restored_after_a_parse() {
        let _ = yaml("a: 1\n");
        assert!(LEFT.with(|l| l.get()).is_none());
    }

    #[test]
    fn format_is_guessed_from_the_name_or_the_first_brace() {
        assert_eq!(Format::guess(Some(Path::new("t.JSON")), "name: a"), Format::Json);
        assert_eq!(Format::guess(None, "  {\"name\": 1}"), Format::Json);
        assert_eq!(Format::guess(Some(Path::new("t.yaml")), "name: a"), Format::Yaml);
    }
}
