//! The crates' module layout: no two modules of a crate import each other,
//! directly or around a loop. A cycle makes a crate one tangle that can only
//! be read (and changed) whole; the data plane, for one, is meant to read
//! in the order an event flows (ingest -> routing -> delivery -> outcomes).
//!
//! Each source file is a module; `crate::a::b` and `super::` paths name the
//! module they reach into (the longest prefix that is a module). A
//! reference between two modules is an edge between the siblings that
//! contain them, under their closest common parent, and each family of
//! siblings must form no cycle. A module using its parent's items, or a
//! parent using its children, is not a cycle. Unit tests (everything from a
//! file's `#[cfg(test)]` on) are left out: a test may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every crate of the workspace with modules of its own.
const CRATES: &[&str] = &[
    ".",
    "proto/partners",
    "proto/server-kit",
    "control-plane",
    "data-plane",
    "stats-service",
    "tests",
];

type Module = Vec<String>;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_owned()
}

/// Every module of the crate whose sources are in `src`, with its file.
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("a source directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("under src");
            let mut module: Module = relative
                .with_extension("")
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            if module.first().is_some_and(|m| m == "bin") {
                continue;
            }
            found.insert(module, path);
        }
    }
    found
}

/// The code of a file: comments left out, and each item marked
/// `#[cfg(test)]` (a `mod x;` line, or a block to its closing brace).
fn code(text: &str) -> String {
    let mut kept = Vec::new();
    let mut lines = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default());
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            kept.push(line);
            continue;
        }
        let mut depth = 0i32;
        for item in lines.by_ref() {
            depth += item.matches('{').count() as i32 - item.matches('}').count() as i32;
            if depth <= 0 && (item.contains('}') || item.trim_end().ends_with(';')) {
                break;
            }
        }
    }
    kept.join("\n")
}

/// The paths that follow each `prefix` (`crate::` or `super::`) in `code`,
/// with brace groups (`crate::{a, b::c}`) expanded.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        paths.extend(expand(rest));
    }
    paths
}

/// The paths at the start of `text`: `a::b::C`, or a brace group.
fn expand(text: &str) -> Vec<Vec<String>> {
    let mut segments = Vec::new();
    let mut rest = text;
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut end = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = i;
                    break;
                }
            }
            let inner = &group[..end];
            let mut items = Vec::new();
            let (mut depth, mut start) = (0, 0);
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(&inner[start..i]);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            items.push(&inner[start..]);
            return items
                .into_iter()
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .flat_map(|item| {
                    expand(item).into_iter().map(|tail| {
                        let mut path = segments.clone();
                        path.extend(tail);
                        path
                    })
                })
                .collect();
        }
        let length = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if length == 0 {
            break;
        }
        segments.push(rest[..length].to_owned());
        rest = &rest[length..];
        match rest.strip_prefix("::") {
            Some(next) => rest = next,
            None => break,
        }
    }
    vec![segments]
}

/// The longest prefix of `path` that is a module.
fn module_of(path: &[String], known: &BTreeMap<Module, PathBuf>) -> Module {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| known.contains_key(prefix))
        .unwrap_or_default()
}

/// Each module's references to the other modules of the crate.
fn references(known: &BTreeMap<Module, PathBuf>) -> BTreeSet<(Module, Module)> {
    let mut edges = BTreeSet::new();
    for (module, file) in known {
        let text = std::fs::read_to_string(file).expect("a readable source file");
        let code = code(&text);
        let mut targets = Vec::new();
        for path in paths_after(&code, "crate::") {
            targets.push(module_of(&path, known));
        }
        for path in paths_after(&code, "super::") {
            // `super::super::x`: up one level per `super`.
            let ups = 1 + path.iter().take_while(|s| *s == "super").count();
            let tail: Vec<String> = path.into_iter().skip(ups - 1).collect();
            // mod.rs and lib.rs are their directory's module; `super` is
            // the parent of that module.
            let base = module.len().saturating_sub(ups);
            let mut absolute = module[..base].to_vec();
            absolute.extend(tail);
            targets.push(module_of(&absolute, known));
        }
        for target in targets {
            if target != *module {
                edges.insert((module.clone(), target));
            }
        }
    }
    edges
}

/// A cycle among `edges`, if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

/// Each family of siblings (by parent) with the edges between them.
type Families = BTreeMap<Module, BTreeMap<String, BTreeSet<String>>>;
/// The module references behind each sibling edge (parent, from, to).
type Reasons = BTreeMap<(Module, String, String), Vec<String>>;

fn sibling_edges(references: &BTreeSet<(Module, Module)>) -> (Families, Reasons) {
    let mut families = Families::new();
    let mut reasons = Reasons::new();
    for (from, to) in references {
        let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
        // One contains the other: a parent and its descendant.
        let (Some(a), Some(b)) = (from.get(common), to.get(common)) else {
            continue;
        };
        let parent = from[..common].to_vec();
        families
            .entry(parent.clone())
            .or_default()
            .entry(a.clone())
            .or_default()
            .insert(b.clone());
        reasons
            .entry((parent, a.clone(), b.clone()))
            .or_default()
            .push(format!("{} uses {}", from.join("::"), to.join("::")));
    }
    (families, reasons)
}

fn cycles_of(crate_dir: &str) -> Vec<String> {
    let known = modules(&workspace().join(crate_dir).join("src"));
    assert!(known.len() > 1, "{crate_dir} has modules");
    let (families, reasons) = sibling_edges(&references(&known));
    families
        .iter()
        .filter_map(|(parent, edges)| {
            let cycle = find_cycle(edges)?;
            let why: Vec<String> = cycle
                .windows(2)
                .flat_map(|pair| {
                    reasons[&(parent.clone(), pair[0].clone(), pair[1].clone())].clone()
                })
                .collect();
            let under = if parent.is_empty() {
                "the crate root".to_owned()
            } else {
                parent.join("::")
            };
            Some(format!(
                "{crate_dir}, under {under}: {} ({})",
                cycle.join(" -> "),
                why.join("; ")
            ))
        })
        .collect()
}

#[test]
fn no_crate_has_a_module_cycle() {
    let cycles: Vec<String> = CRATES.iter().flat_map(|c| cycles_of(c)).collect();
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_checker_sees_a_cycle_and_its_paths() {
    let text = "use crate::a;\n#[cfg(test)]\nmod helper;\nuse crate::b;\n#[cfg(test)]\nmod tests {\n    use crate::c;\n    fn f() {\n    }\n}\nuse crate::d; // crate::e\n";
    assert_eq!(
        paths_after(&code(text), "crate::"),
        [
            vec!["a".to_owned()],
            vec!["b".to_owned()],
            vec!["d".to_owned()]
        ]
    );
    assert_eq!(
        expand("{a, b::{c, D}, e::f};"),
        [
            vec!["a".to_owned()],
            vec!["b".to_owned(), "c".to_owned()],
            vec!["b".to_owned(), "D".to_owned()],
            vec!["e".to_owned(), "f".to_owned()],
        ]
    );
    assert_eq!(
        paths_after(
            "use crate::x::Y; let z = my_crate::q; crate::w();",
            "crate::"
        ),
        [vec!["x".to_owned(), "Y".to_owned()], vec!["w".to_owned()]]
    );
    let module = |path: &str| -> Module { path.split('/').map(str::to_owned).collect() };
    let references: BTreeSet<(Module, Module)> = [
        (module("routing/admit"), module("delivery")),
        (module("delivery/worker"), module("routing")),
        (module("delivery/worker"), module("delivery")),
    ]
    .into();
    let (families, _) = sibling_edges(&references);
    let root = &families[&Vec::new()];
    assert_eq!(
        find_cycle(root),
        Some(vec![
            "delivery".to_owned(),
            "routing".to_owned(),
            "delivery".to_owned()
        ])
    );
    assert!(
        !families.contains_key(&module("delivery")),
        "child to parent"
    );
}
