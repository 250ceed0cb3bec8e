//! kv-fsck on real files: clean, held by another process, crashed, damaged,
//! repaired; exit codes as e2fsck's.

use blockkv_engine::{Options, Store, SyncPolicy};
use std::path::Path;
use std::process::{Command, Output};

fn fsck(args: &[&str], path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kv-fsck")).args(args).arg(path).output().expect("run kv-fsck")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exit code")
}

fn opts() -> Options {
    Options { sync: SyncPolicy::Always, create_bytes: Some(4 << 20), background: false, ..Options::default() }
}

/// A file with `count` keys, left as kill -9 would (no closing checkpoint)
/// or closed cleanly.
fn make(path: &Path, count: u32, clean_close: bool) {
    let store = Store::open(path, opts()).expect("create");
    for i in 0..count {
        store.put(format!("key-{i:03}").as_bytes(), format!("value {i}").as_bytes()).expect("put");
    }
    store.delete(b"key-001").expect("delete");
    if clean_close {
        store.close().expect("close");
    } else {
        store.abandon();
    }
}

#[test]
fn clean_file_is_exit_0() {
    // A cleanly closed store: no problem, exit 0, the totals add up.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("d.kvdata");
    make(&path, 50, true);
    let out = fsck(&["--json"], &path);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["totals"]["keys"], 49);
    assert_eq!(report["totals"]["tombstones"], 1);
    assert_eq!(report["errors"], 0);
}

#[test]
fn a_file_held_by_another_process_is_exit_8_unless_forced() {
    // While a store (as kvd would) holds the lock: refuse, name the holder.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("d.kvdata");
    make(&path, 10, true);
    let held = Store::open(&path, opts()).expect("hold the file");
    let out = fsck(&[], &path);
    assert_eq!(code(&out), 8);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("process {}", std::process::id())) && stderr.contains("--force"), "{stderr}");
    assert_eq!(code(&fsck(&["--force"], &path)), 0, "read-only look while held");
    drop(held);
}

#[test]
fn a_crashed_image_is_not_an_error() {
    // After kill -9 the store was never closed: still exit 0.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("d.kvdata");
    make(&path, 200, false);
    let out = fsck(&[], &path);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn damage_is_reported_by_place_and_key_and_repair_lists_what_was_lost() {
    // A flipped bit in a live record: exit 4 naming block, offset and key;
    // --repair moves the damaged bytes aside and names the lost key.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("d.kvdata");
    make(&path, 30, true);
    let mut bytes = std::fs::read(&path).expect("read");
    let at = bytes.windows(8).position(|w| w == b"value 17").expect("the record");
    bytes[at + 2] ^= 0x04;
    std::fs::write(&path, &bytes).expect("damage");
    let out = fsck(&["--json"], &path);
    assert_eq!(code(&out), 4);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let problem = &report["problems"][0];
    assert_eq!(problem["key"], "key-017", "{report}");
    assert!(problem["block"].is_number() && problem["offset"].is_number());
    let out = fsck(&["--repair", "--json"], &path);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["repair"]["keys_lost"][0], "key-017", "{report}");
    let quarantined = report["repair"]["quarantined"][0].as_str().expect("a quarantine file");
    assert!(Path::new(quarantined).exists());
    // Everything else survived the repair.
    let store = Store::open(&path, opts()).expect("reopen");
    assert_eq!(store.get(b"key-016").expect("get").as_deref(), Some(&b"value 16"[..]));
    assert_eq!(store.get(b"key-001").expect("get"), None, "the delete survived the repair");
}

#[test]
fn a_large_value_torn_at_the_tail_is_a_note_not_an_error() {
    // A kill between the blocks of a multi-block value leaves its FIRST
    // fragment without the rest: recovery cuts it as a torn tail, so kv-fsck
    // must report it as a note (exit 0), not as damage (exit 4).
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("d.kvdata");
    let store = Store::open(&path, opts()).expect("create");
    store.put(b"small", b"v").expect("put");
    store.close().expect("close");
    let store = Store::open(&path, opts()).expect("reopen");
    store.put(b"large", &vec![9u8; 20_000]).expect("put large");
    let last = store.locate(b"large").expect("locate").expect("live").pop().expect("a fragment");
    store.abandon();
    // As if the kill came before the value's last block was written.
    let mut bytes = std::fs::read(&path).expect("read");
    let block = (last.0 / 4096) as usize;
    bytes[block * 4096..(block + 1) * 4096].fill(0);
    std::fs::write(&path, &bytes).expect("write");
    let out = fsck(&["--json"], &path);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(code(&out), 0, "{report}");
    assert!(report["notes"].as_array().is_some_and(|n| !n.is_empty()), "the cut is noted: {report}");
    let store = Store::open(&path, opts()).expect("recovery opens it");
    assert_eq!(store.get(b"small").expect("get").as_deref(), Some(&b"v"[..]));
    assert_eq!(store.get(b"large").expect("get"), None, "the unfinished put is cut");
}
