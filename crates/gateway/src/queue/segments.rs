//! Envelope bodies of the SQLite queue, in append-only segment files beside the database
//! (`<queue file>-segments/`), out of SQLite's write-ahead log.
//!
//! Each body is one record: the magic `OLB1`, its length and its CRC-32 (little-endian
//! `u32`s), then its bytes. A batch's bodies are appended with one write and made durable
//! with one `fdatasync` *before* the rows that point at them are committed, so a committed
//! row never names a body that is not on disk. A crash between the two leaves bytes no row
//! names: harmless, and gone with their segment.
//!
//! Every process start writes to a new segment (a torn tail of the previous one is never
//! written after), and a segment is rolled over at [`SEGMENT_BYTES`]. A segment that no row
//! names any more (every body in it purged by retention, or never committed) is deleted by
//! the queue's retention sweep ([`Segments::remove`]); the segment being written never is.
//!
//! Reads check the magic, the length and the CRC: a damaged body is reported, never passed
//! on as if it were the envelope.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A segment is rolled over once it holds this many bytes.
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

const MAGIC: &[u8; 4] = b"OLB1";
const HEADER: usize = 12;

/// Where a body is: its segment, the offset of its record, and the body's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyRef {
    /// The segment's number.
    pub segment: i64,
    /// The record's offset in the segment.
    pub offset: i64,
    /// The body's length in bytes.
    pub len: i64,
}

/// The segment directory and the segment being written. Not synchronised: the queue calls
/// it under its connection's lock, which also orders appends before the rows naming them
/// and removals after them.
#[derive(Debug)]
pub struct Segments {
    dir: PathBuf,
    current: Option<(i64, File, u64)>,
}

fn name(id: i64) -> String {
    format!("{id:010}.seg")
}

impl Segments {
    /// Opens (creating, owner-only) the directory. The first append starts a new segment
    /// after the highest one present.
    pub fn open(dir: &Path) -> io::Result<Segments> {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(dir)?;
        Ok(Segments { dir: dir.to_owned(), current: None })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The numbers of the segments on disk, ascending.
    pub fn list(&self) -> io::Result<Vec<i64>> {
        let mut ids = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let n = e?.file_name();
            if let Some(id) = n.to_str().and_then(|n| n.strip_suffix(".seg")).and_then(|n| n.parse().ok()) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// The bytes of all segments on disk.
    pub fn bytes(&self) -> io::Result<u64> {
        let mut total = 0;
        for id in self.list()? {
            match std::fs::metadata(self.path(id)) {
                Ok(m) => total += m.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    fn path(&self, id: i64) -> PathBuf {
        self.dir.join(name(id))
    }

    fn start(&mut self) -> io::Result<()> {
        let id = self.list()?.last().map_or(1, |l| l + 1);
        let mut opts = std::fs::OpenOptions::new();
        // Read as well: bodies of the segment being written are read back through it (`pread`
        // leaves the append position alone).
        opts.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(self.path(id))?;
        // The new name must survive a crash as well as the bytes written under it.
        File::open(&self.dir)?.sync_all()?;
        self.current = Some((id, file, 0));
        Ok(())
    }

    /// Appends `bodies` as one write and syncs them to disk; where each one is, in order.
    pub fn append<'a>(&mut self, bodies: impl Iterator<Item = &'a [u8]> + Clone) -> io::Result<Vec<BodyRef>> {
        if self.current.as_ref().is_none_or(|(_, _, len)| *len >= SEGMENT_BYTES) {
            self.start()?;
        }
        let Some((id, file, len)) = self.current.as_mut() else { unreachable!("started above") };
        let total: usize = bodies.clone().map(|b| HEADER + b.len()).sum();
        let mut buf = Vec::with_capacity(total);
        let mut refs = Vec::new();
        for b in bodies {
            let n = u32::try_from(b.len()).map_err(|_| io::Error::other("body over 4 GiB"))?;
            refs.push(BodyRef {
                segment: *id,
                offset: i64::try_from(*len + buf.len() as u64).map_err(io::Error::other)?,
                len: i64::from(n),
            });
            buf.extend_from_slice(MAGIC);
            buf.extend_from_slice(&n.to_le_bytes());
            buf.extend_from_slice(&crc32fast::hash(b).to_le_bytes());
            buf.extend_from_slice(b);
        }
        if buf.is_empty() {
            return Ok(refs);
        }
        let written = file.write_all(&buf).and_then(|()| file.sync_data());
        if let Err(e) = written {
            // Where the file ends is unknown now: the next append starts a new segment.
            self.current = None;
            return Err(e);
        }
        *len += buf.len() as u64;
        Ok(refs)
    }

    /// Reads the body at `r`, checking its record.
    pub fn read(&self, r: BodyRef) -> io::Result<Vec<u8>> {
        let bad =
            |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("segment {}: {what}", r.segment));
        let len = usize::try_from(r.len).map_err(|_| bad("bad length"))?;
        let offset = u64::try_from(r.offset).map_err(|_| bad("bad offset"))?;
        let opened;
        let file = match &self.current {
            Some((id, f, _)) if *id == r.segment => f,
            _ => {
                opened = File::open(self.path(r.segment))?;
                &opened
            }
        };
        let mut buf = vec![0u8; HEADER + len];
        file.read_exact_at(&mut buf, offset).map_err(|e| bad(&format!("record at {offset}: {e}")))?;
        let (head, body) = buf.split_at(HEADER);
        let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        if &head[..4] != MAGIC || word(4) as usize != len {
            return Err(bad(&format!("no record of {len} bytes at {offset}")));
        }
        if word(8) != crc32fast::hash(body) {
            return Err(bad(&format!("the record at {offset} is damaged (checksum)")));
        }
        buf.drain(..HEADER);
        Ok(buf)
    }

    /// Whether `id` is the segment being written (never removed).
    pub fn is_current(&self, id: i64) -> bool {
        self.current.as_ref().is_some_and(|(c, _, _)| *c == id)
    }

    /// Deletes segment `id` (not the current one).
    pub fn remove(&mut self, id: i64) -> io::Result<()> {
        if self.is_current(id) {
            return Ok(());
        }
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ol-seg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn bodies_come_back_byte_for_byte_and_damage_is_reported() {
        let d = dir("rw");
        let mut s = Segments::open(&d).expect("open");
        let bodies: Vec<Vec<u8>> = vec![b"one".to_vec(), Vec::new(), vec![7u8; 10_000]];
        let refs = s.append(bodies.iter().map(Vec::as_slice)).expect("append");
        for (r, b) in refs.iter().zip(&bodies) {
            assert_eq!(&s.read(*r).expect("read"), b);
        }
        // A reopened directory writes a new segment; the old bodies stay readable.
        let mut s2 = Segments::open(&d).expect("reopen");
        let r2 = s2.append([b"two".as_slice()].into_iter()).expect("append");
        assert_eq!(r2[0].segment, refs[0].segment + 1);
        assert_eq!(s2.read(refs[2]).expect("old"), bodies[2]);
        // A wrong reference or a flipped byte is an error, not a body.
        let wrong = BodyRef { offset: refs[2].offset + 1, ..refs[2] };
        assert!(s2.read(wrong).is_err());
        let path = d.join(name(refs[2].segment));
        let mut bytes = std::fs::read(&path).expect("read file");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).expect("write");
        let e = s2.read(refs[2]).expect_err("damaged");
        assert!(e.to_string().contains("checksum"), "{e}");
        assert_eq!(s2.read(refs[0]).expect("others intact"), b"one");
        // The segment being written is never removed; another one is.
        assert!(s2.is_current(r2[0].segment));
        s2.remove(r2[0].segment).expect("no-op");
        s2.remove(refs[0].segment).expect("remove");
        assert_eq!(s2.list().expect("list"), vec![r2[0].segment]);
        // A body whose segment is gone is gone for good (NotFound), not a passing failure.
        assert_eq!(s2.read(refs[0]).expect_err("removed").kind(), io::ErrorKind::NotFound);
        let _ = std::fs::remove_dir_all(&d);
    }
}
