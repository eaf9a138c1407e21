//! The API's edges, checked against Linux 6.1 errno by errno.
//!
//! One table drives both sides: each row is a `tipc-client` scenario (its
//! options and steps), which the kernel node runs on its AF_TIPC sockets
//! and `examples/group_member` runs on tipc-rs, in a namespace plugged into
//! the same bridge. Both print the same lines; an `ERROR` line ends with the
//! errno name (`tipc-client` from `strerrorname_np`, group_member from
//! [`tipc_rs::Error::errno`]). A row's outcome is the sequence of what
//! happened — `BOUND`, `SENT`, `RECV`, `REJECTED err=2`, `EACCES`, … — and
//! the test checks that the kernel's outcome is the one the table states
//! (so the table stays true of Linux) and that ours is the same.

mod common;

use std::process::Command;
use std::time::Duration;

use common::kernel::{KernelPeer, Plug, kernel_rig, remove_ns};

/// One edge of the API.
struct Row {
    /// What is tried.
    what: &'static str,
    /// tipc-client / group_member options.
    opts: &'static [&'static str],
    /// The steps.
    steps: &'static [&'static str],
    /// The kernel's outcome (what the test finds on the kernel node).
    kernel: &'static str,
    /// Our error, as the library returns it, where the outcome is an error.
    ours: &'static str,
    /// Where we deliberately differ: our outcome, and why.
    differs: Option<(&'static str, &'static str)>,
}

const ROWS: &[Row] = &[
    Row {
        what: "bind a reserved service type (cluster scope)",
        opts: &[],
        steps: &["bind:1:5"],
        kernel: "EACCES",
        ours: "Error::ReservedType",
        differs: None,
    },
    Row {
        what: "bind the last reserved type in node scope",
        opts: &["-s", "node"],
        steps: &["bind:63:5"],
        kernel: "EACCES",
        ours: "Error::ReservedType",
        differs: None,
    },
    Row {
        what: "bind the first user type",
        opts: &[],
        steps: &["bind:64:5"],
        kernel: "BOUND",
        ours: "",
        differs: None,
    },
    Row {
        what: "bind a range whose lower bound is above its upper",
        opts: &[],
        steps: &["bind:100:9:3"],
        kernel: "EINVAL",
        ours: "Error::BadRange",
        differs: None,
    },
    Row {
        what: "bind every instance (0 to 0xffffffff)",
        opts: &[],
        steps: &["bind:100:0:0xffffffff"],
        kernel: "BOUND",
        ours: "",
        differs: None,
    },
    Row {
        what: "join a group of a reserved type",
        opts: &[],
        steps: &["join:1:1"],
        kernel: "EACCES",
        ours: "Error::ReservedType",
        differs: None,
    },
    Row {
        what: "join a second group with the same socket",
        opts: &[],
        steps: &["join:100:1", "join:100:2"],
        kernel: "JOIN EACCES",
        ours: "Error::AlreadyJoined",
        differs: None,
    },
    Row {
        what: "bind a group member's socket",
        opts: &[],
        steps: &["join:100:1", "bind:200:1"],
        kernel: "JOIN EACCES",
        ours: "Error::InGroup",
        differs: Some((
            "JOIN BOUND",
            "a GroupSocket has no bind method, so the misuse does not compile; group_member binds with \
             its plain socket. The socket layer refuses a member port's bind with SocketError::InGroup \
             (tipc-group socket tests)",
        )),
    },
    Row {
        what: "send to a service nobody binds",
        opts: &[],
        steps: &["send:300:1:x"],
        kernel: "EHOSTUNREACH",
        ours: "Error::NoService",
        differs: None,
    },
    Row {
        what: "multicast to a range nobody binds",
        opts: &[],
        steps: &["send-range:300:1:5:x"],
        kernel: "EHOSTUNREACH",
        ours: "Error::NoService",
        differs: None,
    },
    Row {
        what: "multicast to a range whose lower bound is above its upper",
        opts: &[],
        steps: &["send-range:300:5:1:x"],
        kernel: "EINVAL",
        ours: "Error::BadRange",
        differs: None,
    },
    Row {
        what: "send to a socket on a node that does not exist",
        opts: &[],
        steps: &["send-port:1234567:99:x"],
        kernel: "EHOSTUNREACH",
        ours: "Error::NoLink",
        differs: None,
    },
    Row {
        what: "returnable message to a missing port of our own node (node 0)",
        opts: &["-r"],
        steps: &["send-port:0:99:x", "recv:500"],
        kernel: "SENT REJECTED err=2",
        ours: "",
        differs: None,
    },
    Row {
        what: "non-returnable message to a missing port: dropped",
        opts: &[],
        steps: &["send-port:0:99:x", "recv:300"],
        kernel: "SENT",
        ours: "",
        differs: None,
    },
    Row {
        what: "a node-scope binding is reached from its own node",
        opts: &["-s", "node"],
        steps: &["bind:300:1", "send:300:1:x", "recv:500"],
        kernel: "BOUND SENT RECV",
        ours: "",
        differs: None,
    },
    Row {
        what: "the largest message (66 000 bytes)",
        opts: &[],
        steps: &["bind:300:1", "send:300:1:@66000", "recv:1000"],
        kernel: "BOUND SENT RECV",
        ours: "",
        differs: None,
    },
    Row {
        what: "one byte more than the largest message",
        opts: &[],
        steps: &["bind:300:1", "send:300:1:@66001"],
        kernel: "BOUND EMSGSIZE",
        ours: "Error::TooLarge",
        differs: None,
    },
    Row {
        what: "a group member's plain send is a group anycast",
        opts: &[],
        steps: &["join:100:1", "send:300:1:x"],
        kernel: "JOIN EHOSTUNREACH",
        ours: "Error::NoService (plain socket); a member port: NoInstance",
        differs: None,
    },
    Row {
        what: "a group member's range send is a group multicast",
        opts: &[],
        steps: &["join:100:1", "send-range:300:1:5:x"],
        kernel: "JOIN EHOSTUNREACH",
        ours: "Error::NoService (plain socket); a member port: NoInstance",
        differs: None,
    },
    Row {
        what: "a group member's range send with lower above upper",
        opts: &[],
        steps: &["join:100:1", "send-range:300:5:1:x"],
        kernel: "JOIN EINVAL",
        ours: "Error::BadRange",
        differs: None,
    },
    Row {
        what: "group unicast to a socket that is no member",
        opts: &[],
        steps: &["join:100:1", "unicast:1234567:99:x"],
        kernel: "JOIN EHOSTUNREACH",
        ours: "Error::NoSuchMember",
        differs: None,
    },
    Row {
        what: "group anycast with no member holding the instance",
        opts: &[],
        steps: &["join:100:1", "anycast:5:x"],
        kernel: "JOIN EHOSTUNREACH",
        ours: "Error::NoInstance",
        differs: None,
    },
    Row {
        what: "group multicast with no member holding the instance",
        opts: &[],
        steps: &["join:100:1", "mcast:5:x"],
        kernel: "JOIN EHOSTUNREACH",
        ours: "Error::NoInstance",
        differs: None,
    },
    Row {
        what: "group broadcast with no other member",
        opts: &[],
        steps: &["join:100:1", "bcast:x"],
        kernel: "JOIN EHOSTUNREACH",
        ours: "Error::NoMembers",
        differs: None,
    },
    Row {
        what: "leave, then join again",
        opts: &[],
        steps: &["join:100:1", "leave", "join:100:2"],
        kernel: "JOIN LEAVE JOIN",
        ours: "",
        differs: None,
    },
];

/// The outcome of a run: one word per line that says what happened.
fn outcome(out: &str) -> String {
    let mut words = Vec::new();
    for line in out.lines() {
        let kind = line.split_whitespace().next().unwrap_or("");
        match kind {
            "JOIN" | "BOUND" | "SENT" | "RECV" | "LEAVE" => words.push(kind.to_string()),
            "REJECTED" => {
                let err = line.split_whitespace().find(|w| w.starts_with("err=")).unwrap_or("err=?");
                let code = err.split('(').next().unwrap_or(err);
                words.push(format!("REJECTED {code}"));
            }
            "ERROR" => {
                let errno = line
                    .rsplit_once('(')
                    .and_then(|(_, r)| r.strip_suffix(')'))
                    .filter(|n| n.starts_with('E'))
                    .unwrap_or("ERROR-without-errno");
                words.push(errno.to_string());
            }
            _ => {}
        }
    }
    words.join(" ")
}

#[test]
fn api_edges_match_the_kernel_errno_by_errno() {
    let Some(brns) = kernel_rig("kernel conformance table", "kconf") else { return };
    let kernel = KernelPeer::up("kc", &brns, "conf-kernel");
    let plug = Plug::new("kconf", &brns, 0);
    let group_member = common::example("group_member");
    let mut failures = Vec::new();
    for row in ROWS {
        let mut kargs = vec!["tipc-client"];
        kargs.extend(row.opts);
        kargs.extend(row.steps);
        let (kout, _) = kernel.exec(&kargs);
        let theirs = outcome(&kout);

        let out = Command::new("ip")
            .args(["netns", "exec", plug.ns.name()])
            .arg(&group_member)
            .args(["--iface", tipc_testkit::netns::NODE_IF, "--node-id", "conf-ours"])
            .args(row.opts)
            .args(row.steps)
            .output()
            .expect("group_member");
        let text = String::from_utf8_lossy(&out.stdout);
        let ours = outcome(&text);
        let want = row.differs.map_or(theirs.as_str(), |(o, _)| o);
        let verdict = if theirs != row.kernel {
            format!("the kernel's outcome is {theirs:?}, the table says {:?}\n{kout}", row.kernel)
        } else if ours != want {
            format!("ours is {ours:?}, expected {want:?} (the kernel's: {theirs:?})\n{text}")
        } else {
            String::new()
        };
        eprintln!(
            "{:<62} kernel {:<22} ours {:<22} {}",
            row.what,
            theirs,
            ours,
            match (verdict.is_empty(), row.differs) {
                (false, _) => "MISMATCH",
                (true, Some(_)) => "differs on purpose",
                (true, None) => row.ours,
            }
        );
        if !verdict.is_empty() {
            failures.push(format!("{}: {verdict}", row.what));
        }
    }
    drop(plug);
    drop(kernel);
    remove_ns(&brns);
    assert!(failures.is_empty(), "{} of {} rows differ:\n{}", failures.len(), ROWS.len(), failures.join("\n"));
}

#[test]
fn the_outcome_reads_errno_names_and_line_kinds() {
    let out = "JOIN group=100 member=1 scope=cluster flags=\nSELF node=1 port=2\n\
               ERROR bind 200:1:1: Permission denied (EACCES)\nDONE status=fail\n";
    assert_eq!(outcome(out), "JOIN EACCES");
    assert_eq!(outcome("SENT mode=x len=1 count=1\nREJECTED err=2(no_port) from=1:2 len=1\n"), "SENT REJECTED err=2");
    assert_eq!(outcome("ERROR start: no such interface\n"), "ERROR-without-errno");
    let _ = Duration::ZERO;
}
