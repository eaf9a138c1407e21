//! The examples' command lines, as a user meets them (no privileges
//! needed): `--help` works everywhere and documents `group_member`'s step
//! language; a bad step or option is refused at once — before any node
//! starts — with the valid choices; `tipc_dump` reads a kernel capture.

mod common;

use std::process::{Command, Output};

use common::example;

const EXAMPLES: [&str; 6] =
    ["cluster_demo", "group_chat", "group_member", "anycast_server", "anycast_client", "tipc_dump"];

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(example(name)).args(args).output().unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn every_example_explains_itself_with_help() {
    for name in EXAMPLES {
        let o = run(name, &["--help"]);
        assert!(o.status.success(), "{name} --help exits {:?}:\n{}", o.status, text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("Usage:") && out.contains("--help"), "{name} --help:\n{out}");
    }
}

#[test]
fn group_member_help_documents_the_whole_step_language() {
    let o = run("group_member", &["--help"]);
    let out = String::from_utf8_lossy(&o.stdout);
    for step in [
        "join:TYPE:INST",
        "leave",
        "wait-members:N[:MS]",
        "bcast:TEXT",
        "mcast:INST:TEXT",
        "anycast:INST:TEXT",
        "unicast:NODE:PORT:TEXT",
        "unicast-member:INST:TEXT",
        "bind:TYPE:LOWER[:UPPER]",
        "send:TYPE:INST:TEXT",
        "send-range:TYPE:LO:HI:TEXT",
        "send-port:NODE:PORT:TEXT",
        "self",
        "recv:MS",
        "recv-n:N[:MS]",
        "echo:MS",
        "sleep:MS",
        "count:N",
        "listen",
        "accept[:MS]",
        "connect:TYPE:INST",
        "csend:TEXT",
        "sink:BYTES[:MS]",
        "close",
        "PEER-CLOSED",
        "@N",
        "DONE status=ok|fail",
        "SIGUSR1",
    ] {
        assert!(out.contains(step), "--help does not document `{step}`:\n{out}");
    }
}

/// A bad step must be refused before the node starts: on an interface that
/// does not exist, a node that started first would fail with `ERROR start`
/// (status 1) instead.
#[test]
fn group_member_refuses_a_bad_step_at_once_with_the_valid_ones() {
    for (steps, says) in [
        (&["join:4711:1", "bcats:hi"][..], "unknown step `bcats`"),
        (&["recv:soon"][..], "bad milliseconds `soon`"),
        (&["join:4711"][..], "missing member instance"),
        (&["send-port:xyz:1:hi"][..], "bad node address"),
        (&["leave:now"][..], "takes no arguments"),
        // a connection step on the default RDM socket, a group step on a
        // connection socket (tipc-client refuses both the same way)
        (&["connect:1000:1"][..], "needs -t seqpacket or -t stream"),
        (&["-t", "stream", "bcast:hi"][..], "needs -t rdm"),
        (&["-t", "seqpacket", "sink:many"][..], "bad byte count `many`"),
        (&["bcast:@70000"][..], "0 to 66001"),
    ] {
        let mut args = vec!["--iface", "tipc-none0"];
        args.extend_from_slice(steps);
        let o = run("group_member", &args);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{steps:?}:\n{t}");
        assert!(t.contains(says), "{steps:?} should say `{says}`:\n{t}");
        assert!(t.contains("valid steps") || says != "unknown step `bcats`", "{steps:?} lists the valid steps:\n{t}");
        assert!(!t.contains("not supported"), "{steps:?}: connection steps are supported:\n{t}");
        assert!(!t.contains("ERROR start"), "{steps:?}: the node started before the steps were checked:\n{t}");
    }
}

#[test]
fn group_member_refuses_a_bad_option_with_the_choices() {
    for (args, choices) in [
        (&["-s", "galaxy"][..], "cluster, node"),
        (&["-t", "dgram"][..], "rdm, seqpacket, stream"),
        (&["-m", "carrier-pigeon"][..], "broadcast, replicast"),
        (&["-i", "7"][..], "0..=3"),
    ] {
        let mut a = vec!["--iface", "tipc-none0"];
        a.extend_from_slice(args);
        a.push("self");
        let o = run("group_member", &a);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}:\n{t}");
        assert!(t.contains(choices), "{args:?} should list `{choices}`:\n{t}");
    }
}

#[test]
fn tipc_dump_decodes_a_kernel_capture_and_refuses_a_missing_file() {
    let cap = common::captures_dir().join("04-group-data-modes.pcap");
    let o = run("tipc_dump", &[cap.to_str().expect("path")]);
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 48, "every frame of the capture");
    assert!(lines.iter().all(|v| v.get("error").is_none()), "every frame decodes");
    let o = run("tipc_dump", &["/nonexistent/x.pcap"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = run("tipc_dump", &[]);
    assert_eq!(o.status.code(), Some(2), "no file is a usage error: {}", text(&o));
}

/// An encrypted kernel capture: every frame shown as it was on the wire
/// (encrypted, nothing decrypted without a key); with the master key in a
/// key file, every frame also opened (the session keys taken from the
/// KEY_DISTR frames on the way), and a wrong key opens nothing.
#[test]
fn tipc_dump_shows_encrypted_frames_and_opens_them_with_a_key_file() {
    let cap = common::captures_dir().join("17-crypto-master.pcap");
    let dir = std::env::temp_dir().join(format!("tipc-dump-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let count = |args: &[&str]| -> (usize, usize, usize) {
        let mut c = Command::new(example("tipc_dump"));
        c.args(args).env_remove("TIPC_KEY");
        let o = c.output().expect("tipc_dump");
        assert!(o.status.success(), "{}", text(&o));
        let lines: Vec<serde_json::Value> =
            String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
        let enc = lines.iter().filter(|v| v.get("encrypted").is_some()).count();
        let dec = lines.iter().filter(|v| v.get("decrypted_for_debugging").is_some()).count();
        (lines.len(), enc, dec)
    };
    let path = cap.to_str().expect("path");
    assert_eq!(count(&[path]), (268, 268, 0));
    let good = dir.join("k1");
    std::fs::write(&good, "0x000102030405060708090a0b0c0d0e0f10111213 master\n").expect("key file");
    assert_eq!(count(&[path, "--key-file", good.to_str().expect("path")]), (268, 268, 268));
    let bad = dir.join("k2");
    std::fs::write(&bad, "0x202122232425262728292a2b2c2d2e2f30313233 master\n").expect("key file");
    assert_eq!(count(&[path, "--key-file", bad.to_str().expect("path")]), (268, 268, 0));
    let _ = std::fs::remove_dir_all(&dir);
}
