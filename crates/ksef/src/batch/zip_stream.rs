//! A small streaming ZIP writer for the batch archive.
//!
//! Why our own rather than `zip::ZipWriter`: the `zip` crate's writer keeps, for every entry
//! until `finish`, a `ZipFileData` (options, extra-field bookkeeping, comment, timestamps: a few
//! hundred bytes) and an owned copy of the name in an index map. For 100 000 invoices that index
//! alone was tens of MB and kept the batch build above its 64 MB peak RSS budget (issue #6). This
//! writer keeps 16 bytes per entry (CRC-32, compressed size, local header offset); the names and
//! sizes, which the batch keeps anyway to map KSeF's results back, are handed in again at
//! [`ZipStream::finish`] to write the central directory.
//!
//! It writes only what a batch needs: deflated entries whose CRC-32 and sizes are known before
//! the local header is written (compressed in memory first, so no data descriptors), UTF-8 names
//! (flag bit 11 when not ASCII), a ZIP64 extra field in a central record whose local header
//! offset does not fit 32 bits, and the ZIP64 end records when there are more than 65 535 entries
//! or the directory starts past 4 GiB. Entries themselves never need ZIP64: an invoice is at most
//! 3 MB. The tests read the output with the `zip` crate, Info-ZIP `unzip -t` and Python's
//! `zipfile`.

use std::io::{self, Write};

use flate2::{Compress, Compression, FlushCompress, Status};

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
const ZIP64_END_OF_CENTRAL_DIRECTORY: u32 = 0x0606_4b50;
const ZIP64_END_LOCATOR: u32 = 0x0706_4b50;
/// Deflate.
const METHOD_DEFLATE: u16 = 8;
/// Version 2.0 (deflate) and 4.5 (ZIP64), as `version needed to extract`.
const VERSION_DEFLATE: u16 = 20;
const VERSION_ZIP64: u16 = 45;
/// `version made by`: the high byte 3 is Unix, so the external attributes carry a mode.
const MADE_BY_UNIX: u16 = 3 << 8;
/// A regular file, `rw-r--r--`, in the high half of the external attributes.
const EXTERNAL_ATTRIBUTES: u32 = 0o100_644 << 16;
/// General purpose flag bit 11: the name is UTF-8.
const FLAG_UTF8: u16 = 1 << 11;

/// One entry, compressed (on any thread) and ready to append.
pub(super) struct Deflated {
    crc32: u32,
    data: Vec<u8>,
}

/// A raw-deflate compressor reused for many entries (one per worker thread: its state is a few
/// hundred KiB, allocated once rather than per entry).
pub(super) struct Deflater {
    compress: Compress,
}

impl Deflater {
    /// A compressor at `level` (0–9).
    pub(super) fn new(level: u32) -> Self {
        Self {
            compress: Compress::new(Compression::new(level.min(9)), false),
        }
    }

    /// Deflates `data` whole and takes its CRC-32.
    pub(super) fn deflate(&mut self, data: &[u8]) -> io::Result<Deflated> {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        self.compress.reset();
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        loop {
            let consumed = usize::try_from(self.compress.total_in())
                .map_err(|_| io::Error::other("deflate consumed more than it was given"))?;
            let rest = data.get(consumed..).unwrap_or_default();
            match self
                .compress
                .compress_vec(rest, &mut out, FlushCompress::Finish)?
            {
                Status::StreamEnd => break,
                // Out of room (or no progress possible without it): give it more.
                Status::Ok | Status::BufError => out.reserve(out.capacity().max(4096)),
            }
        }
        Ok(Deflated {
            crc32: crc.sum(),
            data: out,
        })
    }
}

/// What the central directory needs of an entry besides its name and size.
struct Entry {
    crc32: u32,
    compressed: u32,
    offset: u64,
}

/// A ZIP archive written front to back into `out`; see the [module docs](self).
pub(super) struct ZipStream<W: Write> {
    out: W,
    offset: u64,
    entries: Vec<Entry>,
    dos_time: u16,
    dos_date: u16,
}

impl<W: Write> ZipStream<W> {
    /// An empty archive whose entries are stamped with `modified` (UTC).
    pub(super) fn new(out: W, modified: time::OffsetDateTime) -> Self {
        let (dos_time, dos_date) = dos_date_time(modified);
        Self {
            out,
            offset: 0,
            entries: Vec::new(),
            dos_time,
            dos_date,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Appends the entry `name` of `size` bytes before compression, deflated as `entry`.
    pub(super) fn add(&mut self, name: &str, size: u64, entry: &Deflated) -> io::Result<()> {
        let name_len = name_len(name)?;
        let size = fits_u32(size, "an entry")?;
        let compressed = fits_u32(entry.data.len() as u64, "a compressed entry")?;
        let offset = self.offset;
        let mut h = Vec::with_capacity(30 + name.len());
        put_u32(&mut h, LOCAL_HEADER);
        put_u16(&mut h, VERSION_DEFLATE);
        put_u16(&mut h, flags(name));
        put_u16(&mut h, METHOD_DEFLATE);
        put_u16(&mut h, self.dos_time);
        put_u16(&mut h, self.dos_date);
        put_u32(&mut h, entry.crc32);
        put_u32(&mut h, compressed);
        put_u32(&mut h, size);
        put_u16(&mut h, name_len);
        put_u16(&mut h, 0); // no extra field
        h.extend_from_slice(name.as_bytes());
        self.put(&h)?;
        self.put(&entry.data)?;
        self.entries.push(Entry {
            crc32: entry.crc32,
            compressed,
            offset,
        });
        Ok(())
    }

    /// Writes the central directory and the end records, and hands back the sink. `entries`
    /// gives each entry's name and size again, in the order they were added.
    pub(super) fn finish<'a>(
        mut self,
        entries: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> io::Result<W> {
        let start = self.offset;
        let written = std::mem::take(&mut self.entries);
        let mut named = entries.into_iter();
        let mut record = Vec::with_capacity(512);
        for e in &written {
            let Some((name, size)) = named.next() else {
                return Err(io::Error::other("fewer names than zip entries"));
            };
            let name_len = name_len(name)?;
            let size = fits_u32(size, "an entry")?;
            let zip64 = e.offset >= u64::from(u32::MAX);
            record.clear();
            put_u32(&mut record, CENTRAL_HEADER);
            let version = if zip64 {
                VERSION_ZIP64
            } else {
                VERSION_DEFLATE
            };
            put_u16(&mut record, MADE_BY_UNIX | version);
            put_u16(&mut record, version);
            put_u16(&mut record, flags(name));
            put_u16(&mut record, METHOD_DEFLATE);
            put_u16(&mut record, self.dos_time);
            put_u16(&mut record, self.dos_date);
            put_u32(&mut record, e.crc32);
            put_u32(&mut record, e.compressed);
            put_u32(&mut record, size);
            put_u16(&mut record, name_len);
            put_u16(&mut record, if zip64 { 12 } else { 0 }); // extra field length
            put_u16(&mut record, 0); // comment length
            put_u16(&mut record, 0); // disk number
            put_u16(&mut record, 0); // internal attributes
            put_u32(&mut record, EXTERNAL_ATTRIBUTES);
            put_u32(&mut record, if zip64 { u32::MAX } else { e.offset as u32 });
            record.extend_from_slice(name.as_bytes());
            if zip64 {
                // ZIP64 extended information: only the field that overflowed, the offset.
                put_u16(&mut record, 0x0001);
                put_u16(&mut record, 8);
                put_u64(&mut record, e.offset);
            }
            self.put(&record)?;
        }
        if named.next().is_some() {
            return Err(io::Error::other("more names than zip entries"));
        }
        let count = written.len() as u64;
        drop(written);
        let size = self.offset - start;
        let mut end = Vec::with_capacity(56 + 20 + 22);
        if count >= u64::from(u16::MAX)
            || start >= u64::from(u32::MAX)
            || size >= u64::from(u32::MAX)
        {
            let zip64_end = self.offset;
            put_u32(&mut end, ZIP64_END_OF_CENTRAL_DIRECTORY);
            put_u64(&mut end, 44); // size of the rest of this record
            put_u16(&mut end, MADE_BY_UNIX | VERSION_ZIP64);
            put_u16(&mut end, VERSION_ZIP64);
            put_u32(&mut end, 0); // this disk
            put_u32(&mut end, 0); // disk with the central directory
            put_u64(&mut end, count); // entries on this disk
            put_u64(&mut end, count); // entries in all
            put_u64(&mut end, size);
            put_u64(&mut end, start);
            put_u32(&mut end, ZIP64_END_LOCATOR);
            put_u32(&mut end, 0); // disk with the ZIP64 end record
            put_u64(&mut end, zip64_end);
            put_u32(&mut end, 1); // disks in all
        }
        put_u32(&mut end, END_OF_CENTRAL_DIRECTORY);
        put_u16(&mut end, 0); // this disk
        put_u16(&mut end, 0); // disk with the central directory
        let short_count = u16::try_from(count).unwrap_or(u16::MAX);
        put_u16(&mut end, short_count);
        put_u16(&mut end, short_count);
        put_u32(&mut end, u32::try_from(size).unwrap_or(u32::MAX));
        put_u32(&mut end, u32::try_from(start).unwrap_or(u32::MAX));
        put_u16(&mut end, 0); // comment length
        self.put(&end)?;
        Ok(self.out)
    }
}

fn flags(name: &str) -> u16 {
    if name.is_ascii() { 0 } else { FLAG_UTF8 }
}

fn name_len(name: &str) -> io::Result<u16> {
    u16::try_from(name.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the archive name {}… is longer than 65 535 bytes",
                name.chars().take(40).collect::<String>()
            ),
        )
    })
}

fn fits_u32(n: u64, what: &str) -> io::Result<u32> {
    u32::try_from(n)
        .ok()
        .filter(|&n| n != u32::MAX)
        .ok_or_else(|| io::Error::other(format!("{what} of {n} bytes needs ZIP64")))
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// MS-DOS time and date (2-second resolution, years 1980–2107).
fn dos_date_time(t: time::OffsetDateTime) -> (u16, u16) {
    let year = t.year().clamp(1980, 2107);
    if year != t.year() {
        // Outside the DOS range: 1980-01-01 00:00.
        return (0, (1 << 5) | 1);
    }
    let time =
        (u16::from(t.hour()) << 11) | (u16::from(t.minute()) << 5) | u16::from(t.second() / 2);
    let date =
        (((year - 1980) as u16) << 9) | (u16::from(u8::from(t.month())) << 5) | u16::from(t.day());
    (time, date)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = ZipStream::new(Vec::new(), time::OffsetDateTime::now_utc());
        let mut d = Deflater::new(6);
        for (name, data) in entries {
            zip.add(name, data.len() as u64, &d.deflate(data).unwrap())
                .unwrap();
        }
        zip.finish(entries.iter().map(|(n, d)| (*n, d.len() as u64)))
            .unwrap()
    }

    #[test]
    fn the_zip_crate_reads_it_back() {
        let big: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let entries: [(&str, &[u8]); 4] = [
            ("a.xml", b"<a/>"),
            ("zażółć.xml", "<gęś/>".as_bytes()),
            ("empty.xml", b""),
            ("big.bin", &big),
        ];
        let bytes = archive(&entries);
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(zip.len(), entries.len());
        for (i, (name, data)) in entries.iter().enumerate() {
            let mut f = zip.by_index(i).unwrap();
            assert_eq!(f.name().unwrap(), *name);
            assert_eq!(f.size(), data.len() as u64);
            let mut out = Vec::new();
            f.read_to_end(&mut out).unwrap();
            assert_eq!(&out, data);
        }
    }

    #[test]
    fn names_must_match_the_entries() {
        let mut zip = ZipStream::new(Vec::new(), time::OffsetDateTime::now_utc());
        let mut d = Deflater::new(1);
        zip.add("a", 1, &d.deflate(b"a").unwrap()).unwrap();
        assert!(zip.finish([]).is_err());
        let long = "x".repeat(70_000);
        let mut zip = ZipStream::new(Vec::new(), time::OffsetDateTime::now_utc());
        assert!(zip.add(&long, 1, &d.deflate(b"a").unwrap()).is_err());
    }

    #[test]
    fn dos_time_fields() {
        let t = time::macros::datetime!(2026-12-04 17:33:15 UTC);
        let (time, date) = dos_date_time(t);
        assert_eq!(time, (17 << 11) | (33 << 5) | 7);
        assert_eq!(date, (46 << 9) | (12 << 5) | 4);
        let (time, date) = dos_date_time(time::macros::datetime!(1970-01-01 0:00 UTC));
        assert_eq!((time, date), (0, (1 << 5) | 1));
    }
}
