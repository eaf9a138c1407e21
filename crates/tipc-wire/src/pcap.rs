//! Reading and writing libpcap files of Ethernet frames (`LINKTYPE_ETHERNET`).

use std::io::{Read, Write};
use std::path::Path;

use bytes::Bytes;
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};

use crate::{Duration, WireError};

fn perr(e: impl core::fmt::Display) -> WireError {
    WireError::Pcap(e.to_string())
}

/// One captured frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedFrame {
    /// Capture timestamp since the Unix epoch (or since the simulation start).
    pub ts: Duration,
    /// The frame bytes as captured.
    pub data: Bytes,
    /// The frame length on the wire.
    pub orig_len: u32,
}

/// Reads every frame of a pcap file.
pub fn read_pcap_file(path: impl AsRef<Path>) -> Result<Vec<CapturedFrame>, WireError> {
    let f = std::fs::File::open(path.as_ref()).map_err(perr)?;
    read_pcap(std::io::BufReader::new(f))
}

/// Reads every frame from a pcap stream (Ethernet link type required).
pub fn read_pcap<R: Read>(r: R) -> Result<Vec<CapturedFrame>, WireError> {
    let mut rd = PcapReader::new(r).map_err(perr)?;
    if rd.header().datalink != DataLink::ETHERNET {
        return Err(WireError::Pcap(format!("link type {:?}, expected Ethernet", rd.header().datalink)));
    }
    let mut out = Vec::new();
    while let Some(p) = rd.next_packet() {
        let p = p.map_err(perr)?;
        out.push(CapturedFrame { ts: p.timestamp.into(), data: Bytes::copy_from_slice(&p.data), orig_len: p.orig_len });
    }
    Ok(out)
}

/// Writes Ethernet frames to a pcap stream (microsecond timestamps).
pub struct PcapSink<W: Write> {
    w: PcapWriter<W>,
}

impl<W: Write> core::fmt::Debug for PcapSink<W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PcapSink")
    }
}

impl<W: Write> PcapSink<W> {
    /// Writes the file header.
    pub fn new(w: W) -> Result<Self, WireError> {
        let hdr = PcapHeader { datalink: DataLink::ETHERNET, snaplen: 262_144, ..PcapHeader::default() };
        Ok(PcapSink { w: PcapWriter::with_header(w, hdr).map_err(perr)? })
    }
    /// Appends one frame.
    pub fn write_frame(&mut self, ts: Duration, frame: &[u8]) -> Result<(), WireError> {
        let p = PcapPacket::new(ts.into(), frame.len() as u32, frame);
        self.w.write_packet(&p).map_err(perr)?;
        Ok(())
    }
    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.w.into_writer()
    }
}

impl PcapSink<std::io::BufWriter<std::fs::File>> {
    /// Creates (truncates) a pcap file. Frames are buffered; they reach the
    /// file when the sink is dropped or [`PcapSink::into_inner`] is flushed.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, WireError> {
        let f = std::fs::File::create(path.as_ref()).map_err(perr)?;
        Self::new(std::io::BufWriter::new(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let mut s = PcapSink::new(Vec::new()).unwrap();
        s.write_frame(Duration::from_micros(1_500_000), &[1, 2, 3]).unwrap();
        s.write_frame(Duration::from_micros(2_000_001), &[4; 70]).unwrap();
        let v = s.into_inner();
        let frames = read_pcap(&v[..]).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].ts, Duration::from_micros(1_500_000));
        assert_eq!(&frames[1].data[..], &[4; 70]);
    }
}
