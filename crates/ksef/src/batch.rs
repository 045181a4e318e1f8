//! Batch packaging, sans-IO: invoices → one archive (Zip or TarGz) → binary parts → each part
//! encrypted and hashed in the same pass, spilled to a temporary file.
//!
//! Memory stays bounded by the streaming buffers (a few MB: one chunk of invoices being
//! compressed, a few hundred KiB per later stage) plus about 60 bytes per invoice (its name, size
//! and SHA-256, kept compactly in [`PackedInvoices`] to map KSeF's results back, and 16 bytes of
//! zip index), whatever the number or size of invoices: the archive is written through a
//! [`std::io::Write`] that hashes the whole plaintext archive, cuts it into parts at the size
//! limit, and encrypts each part into its own temporary file with
//! [`SessionKey::encrypting_writer`] (AES-CBC and both SHA-256s in one pass). Nothing is ever
//! held whole in memory.
//!
//! ```
//! use ksef::batch::{BatchBuilder, BatchInvoice, Compression};
//! use ksef::crypto::encryption::SessionKey;
//!
//! let key = SessionKey::generate()?;
//! let invoices = (0..3).map(|i| BatchInvoice::bytes(format!("inv-{i}.xml"), format!("<a>{i}</a>")));
//! let package = BatchBuilder::new(key)
//!     .compression(Compression::TarGz)
//!     .build(invoices)?;
//! assert_eq!(package.parts().len(), 1);
//! assert_eq!(package.invoices().len(), 3);
//! let info = package.batch_file_info(); // for POST /sessions/batch
//! assert_eq!(info.file_parts.len(), 1);
//! # Ok::<(), ksef::Error>(())
//! ```

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ksef_crypto::encryption::{EncryptingWriter, SessionKey};
use ksef_model::api;
use ksef_model::ids::Sha256Base64;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

mod zip_stream;

/// KSeF's limit of one part before encryption (100 MB, decimal).
pub const MAX_PART_SIZE: u64 = 100_000_000;
/// KSeF's limit of parts per batch.
pub const MAX_PARTS: usize = 50;
/// KSeF's limit of the whole plaintext archive (5 GB, decimal).
pub const MAX_ARCHIVE_SIZE: u64 = 5_000_000_000;
/// KSeF's limit of invoices per session.
pub const MAX_INVOICES: usize = 10_000;

/// The archive format (`compressionType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// A ZIP archive with deflated entries (KSeF's default).
    #[default]
    Zip,
    /// A gzip-compressed tar archive (better for many similar XMLs).
    TarGz,
}

impl Compression {
    /// The API value.
    pub fn api(self) -> api::CompressionType {
        match self {
            Compression::Zip => api::CompressionType::Zip,
            Compression::TarGz => api::CompressionType::TarGz,
        }
    }
}

/// Where an invoice's bytes come from.
#[derive(Clone, Debug)]
enum Source {
    Bytes(Vec<u8>),
    Path(PathBuf),
}

/// One invoice to pack: a file name inside the archive (KSeF reports it back as
/// `invoiceFileName`) and its XML.
#[derive(Clone, Debug)]
pub struct BatchInvoice {
    name: String,
    source: Source,
}

impl BatchInvoice {
    /// An invoice held in memory.
    pub fn bytes(name: impl Into<String>, xml: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.into(),
            source: Source::Bytes(xml.into()),
        }
    }

    /// An invoice read from a file when it is packed; its archive name is the file name.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.to_string_lossy().into_owned());
        Self {
            name,
            source: Source::Path(path),
        }
    }

    /// The name inside the archive.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn load(self) -> Result<(String, Vec<u8>)> {
        let bytes = match self.source {
            Source::Bytes(b) => b,
            Source::Path(p) => std::fs::read(&p)
                .map_err(|e| Error::io(format!("reading invoice {}", p.display()), e))?,
        };
        Ok((self.name, bytes))
    }
}

/// An invoice as packed: its name, SHA-256 and size (to match KSeF's per-invoice results).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedInvoice {
    /// The name inside the archive.
    pub name: String,
    /// SHA-256 of the XML (`invoiceHash` in KSeF's results).
    pub hash: Sha256Base64,
    /// Size in bytes.
    pub size: u64,
}

/// The invoices of a [`BatchPackage`], in archive order.
///
/// Kept compactly because a package lives as long as its batch is sent: the names share one
/// buffer and the digests are raw bytes, about 45 bytes plus the name per invoice (100 000
/// invoices: ≈ 6 MB rather than ≈ 15 MB as separate strings). Items come out as
/// [`PackedInvoice`] values; [`name`](Self::name) reads a name without allocating.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PackedInvoices {
    names: String,
    name_ends: Vec<usize>,
    hashes: Vec<[u8; 32]>,
    sizes: Vec<u32>,
}

impl std::fmt::Debug for PackedInvoices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedInvoices")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl PackedInvoices {
    /// How many invoices.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The name of invoice `index` inside the archive.
    pub fn name(&self, index: usize) -> Option<&str> {
        let end = *self.name_ends.get(index)?;
        let start = match index {
            0 => 0,
            i => *self.name_ends.get(i - 1)?,
        };
        self.names.get(start..end)
    }

    /// Invoice `index`.
    pub fn get(&self, index: usize) -> Option<PackedInvoice> {
        Some(PackedInvoice {
            name: self.name(index)?.to_owned(),
            hash: Sha256Base64::from_digest(*self.hashes.get(index)?),
            size: u64::from(*self.sizes.get(index)?),
        })
    }

    /// The invoices in archive order.
    pub fn iter(&self) -> PackedInvoiceIter<'_> {
        PackedInvoiceIter {
            invoices: self,
            next: 0,
        }
    }

    /// Names admitted so far (a name may be admitted before its invoice is described).
    fn names_admitted(&self) -> impl Iterator<Item = &str> {
        (0..self.name_ends.len()).filter_map(|i| self.name(i))
    }

    fn admit_name(&mut self, name: &str) {
        self.names.push_str(name);
        self.name_ends.push(self.names.len());
    }

    fn push_details(&mut self, hash: [u8; 32], size: usize) -> Result<()> {
        let size = u32::try_from(size)
            .map_err(|_| Error::InvalidInput(format!("an invoice of {size} bytes")))?;
        self.hashes.push(hash);
        self.sizes.push(size);
        Ok(())
    }

    /// Name and size of each described invoice, in order.
    fn names_and_sizes(&self) -> impl Iterator<Item = (&str, u64)> {
        self.sizes
            .iter()
            .enumerate()
            .map(|(i, &s)| (self.name(i).unwrap_or_default(), u64::from(s)))
    }
}

impl<'a> IntoIterator for &'a PackedInvoices {
    type Item = PackedInvoice;
    type IntoIter = PackedInvoiceIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The iterator of [`PackedInvoices::iter`].
#[derive(Clone, Debug)]
pub struct PackedInvoiceIter<'a> {
    invoices: &'a PackedInvoices,
    next: usize,
}

impl Iterator for PackedInvoiceIter<'_> {
    type Item = PackedInvoice;

    fn next(&mut self) -> Option<PackedInvoice> {
        let item = self.invoices.get(self.next)?;
        self.next += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.invoices.len().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for PackedInvoiceIter<'_> {}

/// One encrypted part, spilled to a temporary file (deleted when the part is dropped).
#[derive(Debug)]
pub struct BatchPart {
    ordinal_number: u32,
    plaintext_size: u64,
    encrypted_size: u64,
    encrypted_hash: Sha256Base64,
    file: tempfile::TempPath,
}

impl BatchPart {
    /// 1-based ordinal number.
    pub fn ordinal_number(&self) -> u32 {
        self.ordinal_number
    }

    /// Bytes of the archive in this part, before encryption.
    pub fn plaintext_size(&self) -> u64 {
        self.plaintext_size
    }

    /// Size of the encrypted part (`fileParts[].fileSize`).
    pub fn encrypted_size(&self) -> u64 {
        self.encrypted_size
    }

    /// SHA-256 of the encrypted part (`fileParts[].fileHash`).
    pub fn encrypted_hash(&self) -> &Sha256Base64 {
        &self.encrypted_hash
    }

    /// The temporary file holding the encrypted bytes.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Reads the encrypted bytes (for an upload).
    pub fn read(&self) -> Result<Vec<u8>> {
        std::fs::read(&self.file).map_err(|e| Error::io("reading a batch part", e))
    }
}

/// The packed batch: archive metadata, the encrypted parts and the invoice list.
#[derive(Debug)]
pub struct BatchPackage {
    compression: Compression,
    file_size: u64,
    file_hash: Sha256Base64,
    parts: Vec<BatchPart>,
    invoices: PackedInvoices,
}

impl BatchPackage {
    /// Size of the plaintext archive (`batchFile.fileSize`).
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// SHA-256 of the plaintext archive (`batchFile.fileHash`).
    pub fn file_hash(&self) -> &Sha256Base64 {
        &self.file_hash
    }

    /// The archive format.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The encrypted parts, in order.
    pub fn parts(&self) -> &[BatchPart] {
        &self.parts
    }

    /// The invoices, in archive order.
    pub fn invoices(&self) -> &PackedInvoices {
        &self.invoices
    }

    /// `batchFile` of `POST /sessions/batch`.
    pub fn batch_file_info(&self) -> api::BatchFileInfo {
        api::BatchFileInfo {
            compression_type: Some(self.compression.api()),
            file_hash: self.file_hash.clone(),
            file_size: self.file_size,
            file_parts: self
                .parts
                .iter()
                .map(|p| api::BatchFilePartInfo {
                    file_hash: p.encrypted_hash.clone(),
                    file_size: p.encrypted_size,
                    ordinal_number: p.ordinal_number,
                })
                .collect(),
        }
    }
}

/// Builds a [`BatchPackage`]; see the [module docs](self).
#[derive(Debug)]
pub struct BatchBuilder {
    key: SessionKey,
    compression: Compression,
    level: u32,
    max_part_size: u64,
    max_parts: usize,
    max_invoices: usize,
    temp_dir: Option<PathBuf>,
}

impl BatchBuilder {
    /// A builder encrypting with `key` (the batch session's key). Defaults: Zip, compression
    /// level 1 (fast; invoices are small and alike), KSeF's limits.
    pub fn new(key: SessionKey) -> Self {
        Self {
            key,
            compression: Compression::Zip,
            level: 1,
            max_part_size: MAX_PART_SIZE,
            max_parts: MAX_PARTS,
            max_invoices: MAX_INVOICES,
            temp_dir: None,
        }
    }

    /// The archive format.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Deflate level 0–9 (higher: smaller and slower).
    pub fn compression_level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Largest part before encryption (capped at KSeF's 100 MB; at least 1 byte).
    pub fn max_part_size(mut self, bytes: u64) -> Self {
        self.max_part_size = bytes.clamp(1, MAX_PART_SIZE);
        self
    }

    /// Most parts (capped at KSeF's 50).
    pub fn max_parts(mut self, parts: usize) -> Self {
        self.max_parts = parts.clamp(1, MAX_PARTS);
        self
    }

    /// Most invoices (default KSeF's 10 000 per session; raise it only for benchmarks).
    pub fn max_invoices(mut self, invoices: usize) -> Self {
        self.max_invoices = invoices.max(1);
        self
    }

    /// Directory of the temporary part files (default: the system temp dir).
    pub fn temp_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.temp_dir = Some(dir.into());
        self
    }

    /// Packs `invoices`. Each invoice is checked (non-empty, UTF-8, no BOM, size) first; a bad
    /// one fails the build with its name.
    pub fn build<I>(self, invoices: I) -> Result<BatchPackage>
    where
        I: IntoIterator<Item = BatchInvoice>,
    {
        let splitter = PartSplitter {
            key: self.key.clone(),
            max_part_size: self.max_part_size,
            max_parts: self.max_parts,
            temp_dir: self.temp_dir.clone(),
            current: None,
            parts: Vec::new(),
            whole: Sha256::new(),
            whole_size: 0,
            failure: None,
        };
        let mut admission = Admission {
            max_invoices: self.max_invoices,
            packed: PackedInvoices::default(),
            seen: std::collections::HashSet::new(),
            hasher: std::hash::RandomState::new(),
        };
        let arch = archive_io_err;
        let now = time::OffsetDateTime::now_utc();
        let splitter = match self.compression {
            Compression::Zip => {
                let mut zip = zip_stream::ZipStream::new(splitter, now);
                // Entries are checked, hashed and deflated in chunks on all cores, then appended
                // in input order.
                let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
                let mut iter = invoices.into_iter().peekable();
                while iter.peek().is_some() {
                    let mut chunk = Vec::new();
                    let mut bytes = 0;
                    while chunk.len() < ZIP_CHUNK && bytes < ZIP_CHUNK_BYTES {
                        let Some(inv) = iter.next() else { break };
                        let (name, xml) = admission.admit(inv)?;
                        bytes += xml.len();
                        chunk.push((name, xml));
                    }
                    let deflated = compress_chunk(&chunk, self.level, workers)?;
                    for ((name, xml), (hash, entry)) in chunk.iter().zip(deflated) {
                        admission.packed.push_details(hash, xml.len())?;
                        zip.add(name, xml.len() as u64, &entry).map_err(arch)?;
                    }
                }
                zip.finish(admission.packed.names_and_sizes())
                    .map_err(arch)?
            }
            Compression::TarGz => {
                let gz =
                    flate2::write::GzEncoder::new(splitter, flate2::Compression::new(self.level));
                let mut tar = tar::Builder::new(gz);
                let mtime = now.unix_timestamp().max(0) as u64;
                for inv in invoices {
                    let (name, xml) = admission.admit(inv)?;
                    admission
                        .packed
                        .push_details(describe(&name, &xml)?, xml.len())?;
                    let mut header = tar::Header::new_gnu();
                    header.set_size(xml.len() as u64);
                    header.set_mode(0o644);
                    header.set_mtime(mtime);
                    header.set_entry_type(tar::EntryType::Regular);
                    tar.append_data(&mut header, &name, xml.as_slice())
                        .map_err(arch)?;
                }
                tar.into_inner().map_err(arch)?.finish().map_err(arch)?
            }
        };
        let mut packed = admission.packed;
        if packed.is_empty() {
            return Err(Error::InvalidInput(
                "a batch needs at least one invoice".into(),
            ));
        }
        let (file_size, file_hash, parts) = splitter.finish()?;
        packed.names.shrink_to_fit();
        packed.name_ends.shrink_to_fit();
        packed.hashes.shrink_to_fit();
        packed.sizes.shrink_to_fit();
        Ok(BatchPackage {
            compression: self.compression,
            file_size,
            file_hash,
            parts,
            invoices: packed,
        })
    }
}

/// Most invoices deflated together (≈1.4 MB of 5.5 KB invoices: enough work per thread)…
const ZIP_CHUNK: usize = 256;
/// …and most bytes: a chunk of large invoices stops here, so memory stays at a few MB whatever
/// the invoices' size.
const ZIP_CHUNK_BYTES: usize = 4 << 20;

/// Checks what needs the whole batch (count, unique names) as invoices come in.
struct Admission {
    max_invoices: usize,
    /// The names so far (and, once described, hashes and sizes).
    packed: PackedInvoices,
    /// 64-bit hashes of the names so far: a hit is confirmed against the names themselves, so a
    /// hash collision costs a scan, never a wrong answer.
    seen: std::collections::HashSet<u64>,
    hasher: std::hash::RandomState,
}

impl Admission {
    /// Loads an invoice and admits its name.
    fn admit(&mut self, inv: BatchInvoice) -> Result<(String, Vec<u8>)> {
        if self.packed.name_ends.len() >= self.max_invoices {
            return Err(Error::InvalidInput(format!(
                "more than {} invoices: KSeF takes at most 10 000 per session; split the batch",
                self.max_invoices
            )));
        }
        let (name, xml) = inv.load()?;
        let h = std::hash::BuildHasher::hash_one(&self.hasher, name.as_str());
        if !self.seen.insert(h) && self.packed.names_admitted().any(|n| n == name) {
            return Err(Error::InvalidInput(format!(
                "two invoices are named {name}; archive names must be unique"
            )));
        }
        self.packed.admit_name(&name);
        Ok((name, xml))
    }
}

/// Checks one invoice (non-empty, UTF-8, no BOM, size) and takes its SHA-256.
fn describe(name: &str, xml: &[u8]) -> Result<[u8; 32]> {
    crate::session::check_invoice_bytes(xml)
        .map_err(|e| Error::InvalidInput(format!("invoice {name}: {e}")))?;
    Ok(Sha256::digest(xml).into())
}

/// Checks, hashes and deflates a chunk of entries on up to `workers` threads, keeping the
/// order (the per-invoice SHA-256 costs about as much as the AES of the whole archive, so it
/// runs beside the compression rather than on the single writing thread).
fn compress_chunk(
    chunk: &[(String, Vec<u8>)],
    level: u32,
    workers: usize,
) -> Result<Vec<([u8; 32], zip_stream::Deflated)>> {
    let prepare = |c: &[(String, Vec<u8>)]| {
        let mut deflater = zip_stream::Deflater::new(level);
        c.iter()
            .map(|(name, xml)| {
                let hash = describe(name, xml)?;
                let entry = deflater.deflate(xml).map_err(archive_io_err)?;
                Ok((hash, entry))
            })
            .collect::<Result<Vec<_>>>()
    };
    if workers <= 1 || chunk.len() < 2 {
        return prepare(chunk);
    }
    let per = chunk.len().div_ceil(workers);
    std::thread::scope(|scope| {
        let mut pieces = chunk.chunks(per);
        // The calling thread takes the first piece itself.
        let first = pieces.next().unwrap_or_default();
        let handles: Vec<_> = pieces.map(|c| scope.spawn(move || prepare(c))).collect();
        let mut out = prepare(first)?;
        for h in handles {
            let part = h
                .join()
                .map_err(|_| Error::Archive("a compression thread panicked".into()))?;
            out.extend(part?);
        }
        Ok(out)
    })
}

/// An I/O error out of the archive writers: a part limit we raised, or real I/O.
fn archive_io_err(e: std::io::Error) -> Error {
    match e.get_ref().and_then(|i| i.downcast_ref::<SplitError>()) {
        Some(SplitError(msg)) => Error::InvalidInput(msg.clone()),
        None => Error::io("writing the batch archive", e),
    }
}

/// A limit the archive ran into (carried through `io::Error` out of the archive writers).
#[derive(Debug)]
struct SplitError(String);

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SplitError {}

struct OpenPart {
    writer: EncryptingWriter<BufWriter<File>>,
    path: tempfile::TempPath,
    written: u64,
}

/// The archive's sink: hashes the whole plaintext, cuts it into parts, encrypts each part into a
/// temporary file.
struct PartSplitter {
    key: SessionKey,
    max_part_size: u64,
    max_parts: usize,
    temp_dir: Option<PathBuf>,
    current: Option<OpenPart>,
    parts: Vec<BatchPart>,
    whole: Sha256,
    whole_size: u64,
    failure: Option<String>,
}

impl PartSplitter {
    fn open_part(&mut self) -> std::io::Result<OpenPart> {
        if self.parts.len() >= self.max_parts {
            let msg = format!(
                "the archive exceeds {} parts of {} bytes; split the invoices into several batches",
                self.max_parts, self.max_part_size
            );
            self.failure = Some(msg.clone());
            return Err(std::io::Error::other(SplitError(msg)));
        }
        let file = match &self.temp_dir {
            Some(d) => tempfile::NamedTempFile::new_in(d)?,
            None => tempfile::NamedTempFile::new()?,
        };
        let (file, path) = file.into_parts();
        Ok(OpenPart {
            writer: self
                .key
                .encrypting_writer(BufWriter::with_capacity(256 * 1024, file)),
            path,
            written: 0,
        })
    }

    fn close_part(&mut self) -> std::io::Result<()> {
        if let Some(part) = self.current.take() {
            let (_, digests) = part
                .writer
                .finish()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            self.parts.push(BatchPart {
                ordinal_number: self.parts.len() as u32 + 1,
                plaintext_size: part.written,
                encrypted_size: digests.ciphertext_size,
                encrypted_hash: digests.ciphertext_hash,
                file: part.path,
            });
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(u64, Sha256Base64, Vec<BatchPart>)> {
        self.close_part()
            .map_err(|e| Error::io("finishing the last batch part", e))?;
        if self.whole_size > MAX_ARCHIVE_SIZE {
            return Err(Error::InvalidInput(format!(
                "the archive has {} bytes; KSeF accepts at most 5 GB",
                self.whole_size
            )));
        }
        let hash = Sha256Base64::from_digest(self.whole.finalize().into());
        Ok((self.whole_size, hash, self.parts))
    }
}

impl Write for PartSplitter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(f) = &self.failure {
            return Err(std::io::Error::other(SplitError(f.clone())));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if self.current.is_none() {
            self.current = Some(self.open_part()?);
        }
        let Some(part) = self.current.as_mut() else {
            return Err(std::io::Error::other("no open part"));
        };
        let room = self.max_part_size - part.written;
        let n = (buf.len() as u64).min(room) as usize;
        part.writer.write_all(&buf[..n])?;
        part.written += n as u64;
        self.whole.update(&buf[..n]);
        self.whole_size += n as u64;
        if part.written == self.max_part_size {
            self.close_part()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Decrypts and concatenates the parts back into the plaintext archive (tests, diagnostics).
pub fn reassemble(package: &BatchPackage, key: &SessionKey) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(package.file_size as usize);
    for part in &package.parts {
        let mut f = File::open(part.path()).map_err(|e| Error::io("opening a batch part", e))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .map_err(|e| Error::io("reading a batch part", e))?;
        out.extend_from_slice(&key.decrypt(&buf)?);
    }
    Ok(out)
}
