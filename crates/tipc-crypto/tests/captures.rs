//! The kernel's own encrypted frames: every encrypted frame of captures
//! 17–19 (two Linux 6.1 nodes with `tipc node set key`, in
//! `tests/data/captures` of the repository) opens with the test master
//! keys and the session keys learnt from the KEY_DISTR frames on the way:
//! all 268 frames of 17 and 487 of 18, and in 19 the 58 encrypted ones
//! besides its 9 clear ones.

use std::path::PathBuf;

use tipc_crypto::{AeadKey, EncHeader, KeyDistr, KeyMode, KeySpec, Sender, is_encrypted, open_with};
use tipc_wire::NodeId;

const A: u32 = 0x171d_5411;
const B: u32 = 0x171d_5412;
const K1: &str = "0x000102030405060708090a0b0c0d0e0f10111213 master";
const K2: &str = "0x202122232425262728292a2b2c2d2e2f30313233 master";

/// (encrypted frames opened, clear frames, KEY_DISTR frames seen) of one file.
fn open_all(name: &str) -> (usize, usize, usize) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/captures").join(name);
    let frames = tipc_wire::pcap::read_pcap_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let masters: Vec<AeadKey> = [K1, K2].iter().map(|k| k.parse::<KeySpec>().expect("key").key).collect();
    let mut sessions: Vec<(u32, AeadKey)> = Vec::new();
    let (mut opened, mut clear, mut distr) = (0, 0, 0);
    for (i, f) in frames.iter().enumerate() {
        let data = &f.data[..];
        assert_eq!(&data[12..14], &[0x88, 0xca], "{name} #{}: TIPC ethertype", i + 1);
        let tipc = &data[14..];
        if !is_encrypted(tipc) {
            clear += 1;
            continue;
        }
        let eh = EncHeader::parse(tipc).unwrap_or_else(|e| panic!("{name} #{}: {e}", i + 1));
        let sender = match eh.sender {
            Sender::Addr(a) => a,
            Sender::Id(id) if NodeId(id) == NodeId::from_text("crypto-a").expect("id") => A,
            Sender::Id(_) => B,
        };
        let dest = if sender == A { B } else { A };
        let plain = if eh.tx_key == 0 {
            masters.iter().find_map(|k| open_with(k, KeyMode::Cluster, tipc, dest))
        } else {
            sessions.iter().filter(|(s, _)| *s == sender).find_map(|(_, k)| open_with(k, KeyMode::PerNode, tipc, dest))
        };
        let plain = plain.unwrap_or_else(|| panic!("{name} #{}: does not open ({eh:?})", i + 1));
        // the inner message is a plain TIPC one, its size within the pad
        let size = (u32::from_be_bytes([plain[0], plain[1], plain[2], plain[3]]) & 0x1_ffff) as usize;
        assert_eq!(plain[0] >> 5, 2, "{name} #{}: inner version", i + 1);
        assert!(size <= plain.len() && plain.len() - size < 4, "{name} #{}: pad", i + 1);
        if (plain[0] >> 1) & 0xf == 14 {
            let kd = KeyDistr::parse(&plain).unwrap_or_else(|e| panic!("{name} #{}: {e}", i + 1));
            sessions.push((sender, kd.key));
            distr += 1;
        }
        opened += 1;
    }
    (opened, clear, distr)
}

#[test]
fn capture_17_master_key_and_first_session_keys() {
    assert_eq!(open_all("17-crypto-master.pcap"), (268, 0, 2));
}

#[test]
fn capture_18_rekey_under_traffic_and_new_master_key() {
    assert_eq!(open_all("18-crypto-rekey.pcap"), (487, 0, 3));
}

#[test]
fn capture_19_wrong_keys_and_a_clear_node() {
    assert_eq!(open_all("19-crypto-wrong-key.pcap"), (58, 9, 0));
}
