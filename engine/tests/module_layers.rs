//! The engine's top-level modules form layers: no module imports another in
//! a circle. Reads every file under engine/src, takes each `crate::X`
//! reference (in `use` lines and in paths) as an edge from the file's
//! top-level module to `X` (a folder counts as one module), and fails naming
//! a cycle if there is one.
//!
//! `#[cfg(test)]` modules (inline, or in a file of their own) are left out:
//! a unit test may build a whole store (`crate::store::Store`) to test a low
//! layer through it, which is a use of the layer, not a dependency of it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module -> the top-level modules it refers to.
type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn no_engine_module_imports_another_in_a_circle() {
    // Every reference between top-level modules of engine/src, then a
    // depth-first search for a back edge.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    assert!(graph.len() > 5, "found only {} modules under {}", graph.len(), src.display());
    if let Some(cycle) = find_cycle(&graph) {
        let edges: Vec<String> = graph
            .iter()
            .map(|(from, to)| format!("  {from} -> {}", to.iter().cloned().collect::<Vec<_>>().join(", ")))
            .collect();
        panic!("modules import each other in a circle: {}\nall edges:\n{}", cycle.join(" -> "), edges.join("\n"));
    }
    println!("layers, lowest first: {}", layers(&graph).join(" < "));
}

/// The reference graph of the top-level modules under `src` (lib.rs, the
/// crate root, is not a module of its own).
fn module_graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    let files = rust_files(src);
    let test_files = test_module_files(&files);
    for file in files.iter().filter(|file| !test_files.contains(*file)) {
        let relative = file.strip_prefix(src).expect("under src");
        let Some(module) = top_module(relative) else { continue };
        let text = std::fs::read_to_string(file).expect("read a source file");
        let targets = graph.entry(module.clone()).or_default();
        for target in crate_references(&without_test_modules(&text)) {
            if target != module {
                targets.insert(target);
            }
        }
    }
    graph
}

/// The files of modules declared `#[cfg(test)] mod name;`.
fn test_module_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut test_files = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(file).expect("read a source file");
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            let Some(name) = pair[1].strip_prefix("mod ").and_then(|rest| rest.strip_suffix(';')) else { continue };
            if pair[0] != "#[cfg(test)]" {
                continue;
            }
            let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let dir = file.parent().expect("a file has a directory");
            let dir = if stem == "mod" || stem == "lib" { dir.to_path_buf() } else { dir.join(stem) };
            test_files.insert(dir.join(format!("{name}.rs")));
            test_files.insert(dir.join(name).join("mod.rs"));
        }
    }
    test_files
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read engine/src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// `store.rs` -> store, `recovery/scan.rs` -> recovery, `lib.rs` -> None.
fn top_module(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?.to_string();
    if relative.components().count() > 1 {
        return Some(first);
    }
    let name = first.strip_suffix(".rs")?;
    (name != "lib").then(|| name.to_string())
}

/// The text without comments and without `#[cfg(test)] mod ... { ... }`
/// blocks.
fn without_test_modules(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(|line| line.split("//").next().unwrap_or("")).collect();
    let mut kept = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        let next = lines.get(i + 1).map_or("", |l| l.trim());
        if line == "#[cfg(test)]" && (next.starts_with("mod ") || next.starts_with("pub mod ")) && next.ends_with('{') {
            let mut depth = 0i64;
            i += 1;
            while i < lines.len() {
                depth += lines[i].matches('{').count() as i64 - lines[i].matches('}').count() as i64;
                i += 1;
                if depth <= 0 {
                    break;
                }
            }
            continue;
        }
        kept.push_str(lines[i]);
        kept.push('\n');
        i += 1;
    }
    kept
}

/// The top-level module names after every `crate::` (`crate::a::b`,
/// `crate::{a, b::c}`).
fn crate_references(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.extend(leading_ident(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            names.extend(leading_ident(&item));
        } else {
            names.extend(leading_ident(rest));
        }
    }
    names
}

fn leading_ident(text: &str) -> Option<String> {
    let ident: String = text.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!ident.is_empty() && ident != "self").then_some(ident)
}

/// A cycle as a path that starts and ends at the same module, if any.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(node: &str, graph: &Graph, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// The modules grouped in layers, lowest first: each refers only to
/// modules of lower layers (for the test's output).
fn layers(graph: &Graph) -> Vec<String> {
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    while placed.len() < graph.len() {
        let layer: Vec<String> = graph
            .iter()
            .filter(|(node, to)| {
                !placed.contains(*node) && to.iter().all(|t| placed.contains(t) || !graph.contains_key(t))
            })
            .map(|(node, _)| node.clone())
            .collect();
        if layer.is_empty() {
            break;
        }
        out.push(layer.join(", "));
        placed.extend(layer);
    }
    out
}

#[test]
fn the_reference_reader_finds_groups_paths_and_skips_test_modules() {
    // The parser itself: grouped uses, plain paths, comments and test
    // modules.
    let code = "use crate::a::{x, y};\nuse crate::{b, c::d, self};\nlet z = crate::e::f();\n// crate::g\n\
                #[cfg(test)]\nmod tests {\n    use crate::h;\n}\nfn k() { pub(crate) }\n";
    let found = crate_references(&without_test_modules(code));
    let want: BTreeSet<String> = ["a", "b", "c", "e"].iter().map(|s| s.to_string()).collect();
    assert_eq!(found, want);
    let mut graph = Graph::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&graph), Some(vec!["a".to_string(), "b".to_string(), "a".to_string()]));
}
