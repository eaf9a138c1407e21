//! The closing list of a `cargo test` run: every test of this run that
//! was skipped because its environment was missing (no root, no kernel
//! peer, a missing tool), with the reason — so a skip never reads as a
//! plain `ok`. Named to run after the other integration tests of the
//! package; `harness = false`, so it prints straight to the terminal.
//!
//! Skips are recorded by `common::skip` in a file named after the cargo
//! process that runs the whole test command; this report prints that
//! file and removes it.

mod common;

fn main() {
    if std::env::args().skip(1).any(|a| a == "--list") {
        println!("skip_report: test");
        return;
    }
    let path = common::skip_file(std::os::unix::process::parent_id());
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    let skipped: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    println!();
    if skipped.is_empty() {
        println!("no test of this run was skipped");
    } else {
        println!("==== {} test(s) of this run were SKIPPED, not passed:", skipped.len());
        for l in &skipped {
            println!("  {l}");
        }
        println!("==== run `sudo tools/test` (installs what they need) to run them all");
    }
    // one closing line in the format CI reads, counting the skips as ignored
    println!("\ntest result: ok. 0 passed; 0 failed; {} ignored; 0 measured; 0 filtered out", skipped.len());
}
