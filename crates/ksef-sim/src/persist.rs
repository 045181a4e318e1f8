//! `--state-dir`: the simulator's state in an SQLite database (`DIR/ksef-sim.sqlite3`, WAL).
//!
//! Layout (schema [`SCHEMA_VERSION`], kept in `meta`):
//! - `meta`: schema version, the id generator's position, the token-signing secret, rotated keys;
//! - `area`: one JSON document per small area (persons, subjects, grants, KSeF tokens, test-data
//!   overrides, KSeF certificates and the CA, permission operations, collective identifiers,
//!   exports), rewritten when its bytes change;
//! - `record`: one JSON row per authentication operation, challenge and session;
//! - `invoice`: one row per invoice (JSON, plaintext XML, UPO); `upo_page`: session UPO pages;
//! - `blob`: uploaded batch parts and built export parts.
//!
//! Derived indexes (KSeF number → invoice, duplicate keys, presigned UPO links) are rebuilt when
//! the database is opened, not stored.
//!
//! Durability: every request ends with [`Persist::flush`], which takes what the state's
//! containers recorded as changed (`tracked.rs`; fingerprints and byte comparison then skip
//! rewrites of unchanged records: neither the whole state nor all records are visited per
//! request), hands the rows to one writer thread and waits until they are
//! committed (`synchronous=FULL`) before the response leaves. The writer commits everything
//! queued at once (group commit), so concurrent requests share one fsync. A background tick
//! persists what asynchronous processing changes between requests.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::state::{AuthOp, Challenge, Download, Invoice, Session, State, UpoPage};
use crate::tracked::Area;

/// The schema this build writes. A database with a higher version was written by a newer
/// simulator and is refused at start.
pub const SCHEMA_VERSION: i64 = 1;

/// The database file inside the state directory.
pub const DB_FILE: &str = "ksef-sim.sqlite3";

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateDirError {
    /// The directory could not be created.
    #[error("cannot create the state directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// SQLite refused to open or read the database.
    #[error(
        "cannot use the state database {path}: {message}; check that the file is a ksef-sim state database and not open in another simulator"
    )]
    Database {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        message: String,
    },
    /// The database was written by a newer simulator.
    #[error(
        "the state database {path} has schema version {found}, newer than this simulator's {supported}; run a newer ksef-sim or use another --state-dir"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: i64,
        /// The newest version this build reads.
        supported: i64,
    },
    /// A stored record could not be read back.
    #[error(
        "the state database {path} holds an unreadable {what}: {message}; the file was changed by something else than this simulator"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// Which record.
        what: String,
        /// The decoding error.
        message: String,
    },
}

/// One row to write.
enum Op {
    Meta(&'static str, Vec<u8>),
    Area(&'static str, Vec<u8>),
    Record(&'static str, String, Vec<u8>),
    /// `xml`/`upo`: `None` keeps what the row holds (written before).
    Invoice {
        session: String,
        ordinal: u32,
        json: Vec<u8>,
        xml: Option<Option<Vec<u8>>>,
        upo: Option<Option<Vec<u8>>>,
    },
    UpoPage {
        session: String,
        idx: usize,
        json: Vec<u8>,
        xml: Vec<u8>,
    },
    Blob(&'static str, String, Vec<u8>),
}

/// A request's rows, committed together with every other batch queued at the time.
struct Batch {
    seq: u64,
    ops: Vec<Op>,
}

/// The writer's progress: the last committed batch, or the error that stopped it.
#[derive(Clone, Debug, Default)]
struct Progress {
    committed: u64,
    failed: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct SessionFp {
    status: i32,
    updated: OffsetDateTime,
    invoices: usize,
    pages: usize,
    parts_uploaded: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct InvoiceFp {
    status: i32,
    ksef: bool,
    number: bool,
    xml: bool,
    upo: bool,
    offline: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct AuthFp {
    status: i32,
    redeemed: bool,
    revoked: bool,
    refresh_until: Option<OffsetDateTime>,
    last_refresh: Option<OffsetDateTime>,
}

#[derive(Default)]
struct TrackedSession {
    fp: Option<SessionFp>,
    invoices: Vec<InvoiceFp>,
    pages: usize,
    parts: Vec<bool>,
}

/// What has been handed to the writer (compared against the state at every flush).
#[derive(Default)]
struct Tracker {
    seq: u64,
    rng: u64,
    areas: HashMap<&'static str, u64>,
    auths: HashMap<String, AuthFp>,
    challenges: HashMap<String, bool>,
    sessions: HashMap<String, TrackedSession>,
    export_parts: HashSet<String>,
    keys: [String; 2],
}

/// The open state directory (`Inner::persist`).
pub(crate) struct Persist {
    path: PathBuf,
    tracker: Mutex<Tracker>,
    tx: Mutex<mpsc::Sender<Batch>>,
    progress: watch::Receiver<Progress>,
    closed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Persist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persist")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What [`open`] read back.
pub(crate) struct Loaded {
    pub state: State,
    pub jwt_secret: Option<[u8; 32]>,
    /// Rotated keys: (usage, certificate DER, PKCS#8 key DER).
    pub keys: Vec<(String, Vec<u8>, Vec<u8>)>,
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> StateDirError + '_ {
    move |e| StateDirError::Database {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS area (name TEXT PRIMARY KEY, json BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS record (kind TEXT NOT NULL, key TEXT NOT NULL, json BLOB NOT NULL,
    PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS invoice (session TEXT NOT NULL, ordinal INTEGER NOT NULL,
    json BLOB NOT NULL, xml BLOB, upo BLOB, PRIMARY KEY (session, ordinal));
CREATE TABLE IF NOT EXISTS upo_page (session TEXT NOT NULL, idx INTEGER NOT NULL,
    json BLOB NOT NULL, xml BLOB NOT NULL, PRIMARY KEY (session, idx));
CREATE TABLE IF NOT EXISTS blob (kind TEXT NOT NULL, key TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (kind, key));
";

/// Opens (or creates) the database in `dir`, checks its schema version and reads the state back.
pub(crate) fn open(
    dir: &Path,
    seed: Option<u64>,
    now: OffsetDateTime,
) -> Result<(Persist, Loaded), StateDirError> {
    std::fs::create_dir_all(dir).map_err(|source| StateDirError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    let path = dir.join(DB_FILE);
    let err_path = path.clone();
    let err = db_err(&err_path);
    let conn = Connection::open(&path).map_err(&err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(&err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(&err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(&err)?;
    conn.execute_batch(SCHEMA).map_err(&err)?;
    let version: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(&err)?;
    match version {
        None => {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                params![SCHEMA_VERSION.to_string().into_bytes()],
            )
            .map_err(&err)?;
        }
        Some(v) => {
            let found = std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| StateDirError::Corrupt {
                    path: path.clone(),
                    what: "schema version".into(),
                    message: String::from_utf8_lossy(&v).into_owned(),
                })?;
            if found > SCHEMA_VERSION {
                return Err(StateDirError::NewerSchema {
                    path,
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
        }
    }
    let loaded = load(&conn, &path, seed, now)?;
    let (tx, rx) = mpsc::channel::<Batch>();
    let (ptx, prx) = watch::channel(Progress::default());
    let writer_path = path.clone();
    std::thread::Builder::new()
        .name("ksef-sim-state".into())
        .spawn(move || writer(conn, rx, ptx, writer_path))
        .map_err(|e| StateDirError::Database {
            path: path.clone(),
            message: format!("cannot start the writer thread: {e}"),
        })?;
    let persist = Persist {
        path,
        tracker: Mutex::new(Tracker::default()),
        tx: Mutex::new(tx),
        progress: prx,
        closed: std::sync::atomic::AtomicBool::new(false),
    };
    Ok((persist, loaded))
}

fn writer(
    mut conn: Connection,
    rx: mpsc::Receiver<Batch>,
    progress: watch::Sender<Progress>,
    path: PathBuf,
) {
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        while let Ok(more) = rx.try_recv() {
            batches.push(more);
            if batches.len() >= 256 {
                break;
            }
        }
        let last = batches.last().map_or(0, |b| b.seq);
        match write(&mut conn, batches) {
            Ok(()) => {
                progress.send_modify(|p| p.committed = p.committed.max(last));
            }
            Err(e) => {
                let message = format!("writing {} failed: {e}", path.display());
                progress.send_modify(|p| p.failed = Some(message));
                return;
            }
        }
    }
}

fn write(conn: &mut Connection, batches: Vec<Batch>) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for op in batches.into_iter().flat_map(|b| b.ops) {
        match op {
            Op::Meta(k, v) => {
                tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
                    .execute(params![k, v])?;
            }
            Op::Area(name, json) => {
                tx.prepare_cached("INSERT OR REPLACE INTO area (name, json) VALUES (?1, ?2)")?
                    .execute(params![name, json])?;
            }
            Op::Record(kind, key, json) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO record (kind, key, json) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![kind, key, json])?;
            }
            Op::Invoice {
                session,
                ordinal,
                json,
                xml,
                upo,
            } => {
                tx.prepare_cached(
                    "INSERT INTO invoice (session, ordinal, json, xml, upo)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (session, ordinal) DO UPDATE SET json = excluded.json,
                       xml = CASE WHEN ?6 THEN excluded.xml ELSE invoice.xml END,
                       upo = CASE WHEN ?7 THEN excluded.upo ELSE invoice.upo END",
                )?
                .execute(params![
                    session,
                    ordinal,
                    json,
                    xml.as_ref().and_then(Option::as_deref),
                    upo.as_ref().and_then(Option::as_deref),
                    xml.is_some(),
                    upo.is_some(),
                ])?;
            }
            Op::UpoPage {
                session,
                idx,
                json,
                xml,
            } => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO upo_page (session, idx, json, xml) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![session, idx as i64, json, xml])?;
            }
            Op::Blob(kind, key, data) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO blob (kind, key, data) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![kind, key, data])?;
            }
        }
    }
    tx.commit()
}

fn json<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, String> {
    // Plain data serialises; a map with non-string keys would not (those are written as pair
    // lists by `map_vec`), and that is a bug to report rather than an empty row to store.
    serde_json::to_vec(v).map_err(|e| format!("cannot serialise the state: {e}"))
}

fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    b.hash(&mut h);
    h.finish()
}

fn session_fp(s: &Session) -> SessionFp {
    SessionFp {
        status: s.status.code,
        updated: s.updated,
        invoices: s.invoices.len(),
        pages: s.upo_pages.len(),
        parts_uploaded: s
            .batch
            .as_ref()
            .map_or(0, |b| b.parts.iter().filter(|p| p.data.is_some()).count()),
    }
}

fn invoice_fp(i: &Invoice) -> InvoiceFp {
    InvoiceFp {
        status: i.status.code,
        ksef: i.ksef_number.is_some(),
        number: i.invoice_number.is_some(),
        xml: i.xml.is_some(),
        upo: i.upo.is_some(),
        offline: i.offline,
    }
}

fn auth_fp(a: &AuthOp) -> AuthFp {
    AuthFp {
        status: a.status.code,
        redeemed: a.redeemed,
        revoked: a.revoked,
        refresh_until: a.refresh_valid_until,
        last_refresh: a.last_refresh,
    }
}

/// The rows changed since the last call: what the state's containers recorded as changed
/// (`tracked.rs`), compared with what `t` says was written, so that the cost of a flush follows
/// what the request changed and not the size of the state.
fn diff(t: &mut Tracker, st: &mut State, keys: &crate::keys::SimKeys) -> Result<Vec<Op>, String> {
    let mut ops = Vec::new();
    let rng = st.rng.position();
    if rng != t.rng {
        t.rng = rng;
        ops.push(Op::Meta("rng", rng.to_string().into_bytes()));
    }
    for (i, (name, slot)) in [
        ("key.KsefTokenEncryption", &keys.token),
        ("key.SymmetricKeyEncryption", &keys.symmetric),
    ]
    .into_iter()
    .enumerate()
    {
        if t.keys[i] != slot.public_key_id {
            t.keys[i] = slot.public_key_id.clone();
            if slot.is_rotated()
                && let Ok(der) = slot.key.to_pkcs8_der()
            {
                ops.push(Op::Meta(
                    name,
                    json(&(B64.encode(slot.cert.der()), B64.encode(&*der)))?,
                ));
            }
        }
    }
    let mut area = |name: &'static str, bytes: Vec<u8>| {
        let h = hash_bytes(&bytes);
        if t.areas.get(name) != Some(&h) {
            t.areas.insert(name, h);
            ops.push(Op::Area(name, bytes));
        }
    };
    macro_rules! areas {
        ($($name:literal => $field:ident),* $(,)?) => {$(
            if st.$field.take_changed() {
                area($name, json(&*st.$field)?);
            }
        )*};
    }
    areas!(
        "persons" => persons,
        "subjects" => subjects,
        "grants" => grants,
        "tokens" => tokens,
        "attachments" => attachments,
        "blocked" => blocked,
        "certs" => certs,
        "perm" => perm,
        "collective" => collective,
    );
    if st.retrieval.take_changed() {
        area("retrieval", json(&*st.retrieval)?);
        for (token, data) in st.retrieval.part_data() {
            if !data.is_empty() && !t.export_parts.contains(token) {
                t.export_parts.insert(token.to_owned());
                ops.push(Op::Blob("export", token.to_owned(), data.to_vec()));
            }
        }
    }
    for r in st.auths.take_changed() {
        let Some(a) = st.auths.get(&r) else { continue };
        let fp = auth_fp(a);
        if t.auths.get(&r) != Some(&fp) {
            ops.push(Op::Record("auth", r.clone(), json(a)?));
            t.auths.insert(r, fp);
        }
    }
    for r in st.challenges.take_changed() {
        let Some(c) = st.challenges.get(&r) else {
            continue;
        };
        if t.challenges.get(&r) != Some(&c.used) {
            ops.push(Op::Record("challenge", r.clone(), json(c)?));
            t.challenges.insert(r, c.used);
        }
    }
    for r in st.sessions.take_changed() {
        let Some(s) = st.sessions.get_mut_unrecorded(&r) else {
            continue;
        };
        let tracked = t.sessions.entry(r.clone()).or_default();
        let fp = session_fp(s);
        if tracked.fp != Some(fp) {
            tracked.fp = Some(fp);
            ops.push(Op::Record("session", r.clone(), json(&*s)?));
            if let Some(b) = &s.batch {
                tracked.parts.resize(b.parts.len(), false);
                for (i, p) in b.parts.iter().enumerate() {
                    if let Some(data) = &p.data
                        && !tracked.parts[i]
                    {
                        tracked.parts[i] = true;
                        let bytes = data
                            .read_all()
                            .map_err(|e| format!("cannot read an uploaded part: {e}"))?;
                        ops.push(Op::Blob("batch", format!("{r}/{i}"), bytes));
                    }
                }
            }
        }
        for i in s.invoices.take_changed() {
            let Some(inv) = s.invoices.get(i) else {
                continue;
            };
            let fp = invoice_fp(inv);
            let before = tracked.invoices.get(i).copied();
            if before == Some(fp) {
                continue;
            }
            if tracked.invoices.len() <= i {
                tracked.invoices.resize(i + 1, fp);
            }
            tracked.invoices[i] = fp;
            // The plaintext and the UPO are written once: a status change rewrites only the
            // record (the invoice's bytes never change once stored).
            let had = |f: fn(&InvoiceFp) -> bool| before.as_ref().is_some_and(f);
            ops.push(Op::Invoice {
                session: r.clone(),
                ordinal: inv.ordinal,
                json: json(inv)?,
                xml: (!had(|f| f.xml)).then(|| inv.xml.clone()),
                upo: (!had(|f| f.upo)).then(|| inv.upo.clone()),
            });
        }
        for (i, p) in s.upo_pages.iter().enumerate().skip(tracked.pages) {
            ops.push(Op::UpoPage {
                session: r.clone(),
                idx: i,
                json: json(p)?,
                xml: p.xml.clone(),
            });
        }
        tracked.pages = s.upo_pages.len();
    }
    Ok(ops)
}

impl Persist {
    /// Records what was just loaded as written (so the first flush writes only changes).
    pub(crate) fn prime(&self, st: &mut State, keys: &crate::keys::SimKeys) {
        let mut t = self.tracker.lock().unwrap_or_else(|p| p.into_inner());
        let _ = diff(&mut t, st, keys);
    }

    /// Writes what changed since the last flush and waits until it (and everything queued
    /// before it) is committed.
    pub(crate) async fn flush(&self, inner: &crate::server::Inner) -> Result<(), String> {
        if self.is_closed() {
            return Ok(());
        }
        let seq = {
            let mut st = inner.state();
            let mut t = self.tracker.lock().unwrap_or_else(|p| p.into_inner());
            let ops = diff(&mut t, &mut st, &inner.keys)?;
            if !ops.is_empty() {
                t.seq += 1;
                self.queue(Batch { seq: t.seq, ops })?;
            }
            t.seq
        };
        self.committed(seq).await
    }

    /// Hands a batch to the writer thread.
    fn queue(&self, batch: Batch) -> Result<(), String> {
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(batch);
        sent.map_err(|_| self.failure())
    }

    /// Waits until the writer has committed every batch up to `seq`.
    async fn committed(&self, seq: u64) -> Result<(), String> {
        let mut rx = self.progress.clone();
        loop {
            {
                let p = rx.borrow_and_update();
                if let Some(e) = &p.failed {
                    return Err(e.clone());
                }
                if p.committed >= seq {
                    return Ok(());
                }
            }
            if rx.changed().await.is_err() {
                return Err(self.failure());
            }
        }
    }

    /// Stops writing (the simulator was shut down; its tasks may still run briefly).
    pub(crate) fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn failure(&self) -> String {
        self.progress
            .borrow()
            .failed
            .clone()
            .unwrap_or_else(|| format!("the writer of {} stopped", self.path.display()))
    }
}

// ---------------------------------------------------------------------------------------------
// Loading

fn load(
    conn: &Connection,
    path: &Path,
    seed: Option<u64>,
    now: OffsetDateTime,
) -> Result<Loaded, StateDirError> {
    let err = db_err(path);
    let corrupt = |what: &str, e: &dyn std::fmt::Display| StateDirError::Corrupt {
        path: path.to_owned(),
        what: what.to_owned(),
        message: e.to_string(),
    };
    let mut st = State::new(seed);
    let mut jwt_secret = None;
    let mut keys = Vec::new();
    {
        let mut q = conn.prepare("SELECT key, value FROM meta").map_err(&err)?;
        let rows = q
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(&err)?;
        for row in rows {
            let (k, v) = row.map_err(&err)?;
            let text = String::from_utf8_lossy(&v);
            match k.as_str() {
                "rng" => {
                    let pos = text.parse::<u64>().map_err(|e| corrupt("rng", &e))?;
                    st.rng = crate::ids::IdRng::at(pos);
                }
                "jwt_secret" => {
                    let b = B64.decode(text.as_bytes()).map_err(|e| corrupt(&k, &e))?;
                    jwt_secret =
                        Some(<[u8; 32]>::try_from(b.as_slice()).map_err(|e| corrupt(&k, &e))?);
                }
                key if key.starts_with("key.") => {
                    let (cert, pk): (String, String) =
                        serde_json::from_slice(&v).map_err(|e| corrupt(key, &e))?;
                    keys.push((
                        key["key.".len()..].to_owned(),
                        B64.decode(cert).map_err(|e| corrupt(key, &e))?,
                        B64.decode(pk).map_err(|e| corrupt(key, &e))?,
                    ));
                }
                _ => {}
            }
        }
    }
    {
        let mut q = conn.prepare("SELECT name, json FROM area").map_err(&err)?;
        let rows = q
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(&err)?;
        for row in rows {
            let (name, j) = row.map_err(&err)?;
            let c = |e: serde_json::Error| corrupt(&format!("area {name}"), &e);
            match name.as_str() {
                "persons" => st.persons = Area::new(serde_json::from_slice(&j).map_err(c)?),
                "subjects" => st.subjects = Area::new(serde_json::from_slice(&j).map_err(c)?),
                "grants" => st.grants = Area::new(serde_json::from_slice(&j).map_err(c)?),
                "tokens" => st.tokens = Area::new(serde_json::from_slice(&j).map_err(c)?),
                "attachments" => st.attachments = Area::new(serde_json::from_slice(&j).map_err(c)?),
                "blocked" => st.blocked = Area::new(serde_json::from_slice(&j).map_err(c)?),
                "certs" => st.certs = Area::new(serde_json::from_slice(&j).map_err(c)?),
                "perm" => st.perm = Area::new(serde_json::from_slice(&j).map_err(c)?),
                "collective" => st.collective = Area::new(serde_json::from_slice(&j).map_err(c)?),
                "retrieval" => st.retrieval = Area::new(serde_json::from_slice(&j).map_err(c)?),
                _ => {}
            }
        }
    }
    {
        let mut q = conn
            .prepare("SELECT kind, key, json FROM record")
            .map_err(&err)?;
        let rows = q
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })
            .map_err(&err)?;
        for row in rows {
            let (kind, key, j) = row.map_err(&err)?;
            let c = |e: serde_json::Error| corrupt(&format!("{kind} {key}"), &e);
            match kind.as_str() {
                "auth" => {
                    let a: AuthOp = serde_json::from_slice(&j).map_err(c)?;
                    st.auths.insert(key, a);
                }
                "challenge" => {
                    let ch: Challenge = serde_json::from_slice(&j).map_err(c)?;
                    st.challenges.insert(key, ch);
                }
                "session" => {
                    let s: Session = serde_json::from_slice(&j).map_err(c)?;
                    st.sessions.insert(key, s);
                }
                _ => {}
            }
        }
    }
    {
        let mut q = conn
            .prepare(
                "SELECT session, ordinal, json, xml, upo FROM invoice ORDER BY session, ordinal",
            )
            .map_err(&err)?;
        let rows = q
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, Option<Vec<u8>>>(3)?,
                    r.get::<_, Option<Vec<u8>>>(4)?,
                ))
            })
            .map_err(&err)?;
        for row in rows {
            let (session, ordinal, j, xml, upo) = row.map_err(&err)?;
            let what = format!("invoice {session}/{ordinal}");
            let mut inv: Invoice = serde_json::from_slice(&j).map_err(|e| corrupt(&what, &e))?;
            inv.xml = xml;
            inv.upo = upo;
            let s = st
                .sessions
                .get_mut(&session)
                .ok_or_else(|| corrupt(&what, &"its session is missing"))?;
            if s.invoices.len() + 1 != inv.ordinal as usize {
                return Err(corrupt(&what, &"invoice ordinals are not contiguous"));
            }
            s.invoices.push(inv);
        }
    }
    {
        let mut q = conn
            .prepare("SELECT session, idx, json, xml FROM upo_page ORDER BY session, idx")
            .map_err(&err)?;
        let rows = q
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            })
            .map_err(&err)?;
        for row in rows {
            let (session, idx, j, xml) = row.map_err(&err)?;
            let what = format!("UPO page {session}/{idx}");
            let mut page: UpoPage = serde_json::from_slice(&j).map_err(|e| corrupt(&what, &e))?;
            page.xml = xml;
            if let Some(s) = st.sessions.get_mut(&session) {
                s.upo_pages.push(page);
            }
        }
    }
    {
        let mut q = conn
            .prepare("SELECT kind, key, data FROM blob")
            .map_err(&err)?;
        let rows = q
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })
            .map_err(&err)?;
        for row in rows {
            let (kind, key, data) = row.map_err(&err)?;
            match kind.as_str() {
                "export" => st.retrieval.restore_part_data(&key, data),
                "batch" => {
                    let Some((sref, idx)) = key.rsplit_once('/') else {
                        continue;
                    };
                    let idx: usize = idx.parse().map_err(|e| corrupt(&key, &e))?;
                    if let Some(p) = st
                        .sessions
                        .get_mut(sref)
                        .and_then(|s| s.batch.as_mut())
                        .and_then(|b| b.parts.get_mut(idx))
                    {
                        let part = crate::batch::SpooledPart::from_bytes(&data)
                            .map_err(|e| corrupt(&key, &e))?;
                        p.data = Some(part);
                    }
                }
                _ => {}
            }
        }
    }
    rebuild_indexes(&mut st, now);
    Ok(Loaded {
        state: st,
        jwt_secret,
        keys,
    })
}

/// The KSeF-number index, the duplicate keys and the presigned UPO links, from the invoices.
/// Presigned links are valid for their usual lifetime from the restart.
fn rebuild_indexes(st: &mut State, now: OffsetDateTime) {
    let until = now + crate::sessions::DOWNLOAD_URL_TTL;
    let mut by_ksef = HashMap::new();
    let mut duplicates = HashMap::new();
    let mut downloads = HashMap::new();
    for (r, s) in &st.sessions {
        for inv in &s.invoices {
            let Some(ksef) = &inv.ksef_number else {
                continue;
            };
            by_ksef.insert(ksef.clone(), (r.clone(), inv.ordinal));
            if let Some(token) = &inv.upo_token {
                downloads.insert(
                    token.clone(),
                    (
                        Download::InvoiceUpo {
                            session: r.clone(),
                            ordinal: inv.ordinal,
                        },
                        until,
                    ),
                );
            }
            if inv.status.code == 200
                && let Some(xml) = &inv.xml
                && let Ok(facts) = crate::invoice_xml::check(xml, &s.form)
            {
                duplicates.insert(
                    (facts.seller_nip, facts.kind, facts.number),
                    (ksef.clone(), r.clone()),
                );
            }
        }
        for (i, p) in s.upo_pages.iter().enumerate() {
            downloads.insert(
                p.token.clone(),
                (
                    Download::SessionUpo {
                        session: r.clone(),
                        page: i,
                    },
                    until,
                ),
            );
        }
    }
    st.by_ksef_number = by_ksef;
    st.duplicates = duplicates;
    st.downloads = downloads;
}

/// Writes the token-signing secret (once, when the database is new).
pub(crate) fn secret_op(secret: &[u8; 32]) -> Vec<u8> {
    B64.encode(secret).into_bytes()
}

impl Persist {
    /// Stores the token-signing secret (a new database) before anything is served.
    pub(crate) async fn store_secret(&self, secret: &[u8; 32]) -> Result<(), String> {
        let seq = {
            let mut t = self.tracker.lock().unwrap_or_else(|p| p.into_inner());
            t.seq += 1;
            let batch = Batch {
                seq: t.seq,
                ops: vec![Op::Meta("jwt_secret", secret_op(secret))],
            };
            self.queue(batch)?;
            t.seq
        };
        self.committed(seq).await
    }
}

/// Resumes what a stop interrupted: invoices received but not yet verified (their plaintext is
/// stored from receipt) are verified now, closed sessions are finished, closed batch sessions
/// are processed (after the invoices they had settled), accepted exports are built, pending
/// KSeF tokens become active, authentications still in progress fail (450).
pub(crate) fn resume(inner: &Arc<crate::server::Inner>) {
    let (invoices, closing, auths) = {
        let mut st = inner.state();
        for t in st.tokens.iter_mut().filter(|t| t.status == "Pending") {
            t.status = "Active".into();
        }
        let mut invoices = Vec::new();
        let mut closing = Vec::new();
        for (r, s) in &st.sessions {
            if s.batch.is_none() {
                let limits = st.certs.session_limits_for(&s.context).0;
                for inv in s.invoices.iter().filter(|i| i.status.code < 200) {
                    invoices.push((
                        r.clone(),
                        inv.ordinal,
                        inv.xml.clone(),
                        s.form.clone(),
                        limits,
                    ));
                }
            }
            if s.batch.is_none() && s.status.code == 170 {
                closing.push(r.clone());
            }
        }
        let auths: Vec<String> = st
            .auths
            .values()
            .filter(|a| a.status.code == 100)
            .map(|a| a.reference.clone())
            .collect();
        (invoices, closing, auths)
    };
    for (r, ordinal, xml, form, limits) in invoices {
        let checked = crate::sessions::check_invoice(xml.as_deref(), &form, limits);
        let now = inner.now();
        crate::sessions::settle_invoice(
            &mut inner.state(),
            &r,
            ordinal as usize - 1,
            xml,
            checked,
            now,
        );
    }
    for r in closing {
        crate::sessions::finish_session(inner, &r);
    }
    crate::batch::resume(inner);
    crate::invoices::resume_exports(inner);
    // The checks an authentication ran at receipt are not stored: one still in progress at the
    // stop fails, and the client authenticates again.
    let mut st = inner.state();
    for r in auths {
        if let Some(a) = st.auths.get_mut(&r) {
            a.status = crate::state::Status::new(450, "Uwierzytelnianie zakończone niepowodzeniem")
                .with_detail("Symulator został zrestartowany w trakcie uwierzytelniania; uwierzytelnij się ponownie.");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// serde helpers for fields that are not plain data

/// `Vec<u8>` as Base64.
pub(crate) mod b64 {
    use super::B64;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        B64.decode(s).map_err(serde::de::Error::custom)
    }
}

/// An optional session key as Base64 of key ‖ IV (the simulator's own test secret).
pub(crate) mod session_key {
    use super::B64;
    use base64::Engine as _;
    use ksef_crypto::encryption::SessionKey;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<SessionKey>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(k) => {
                let mut b = k.key_bytes().to_vec();
                b.extend_from_slice(k.iv());
                s.serialize_some(&B64.encode(b))
            }
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SessionKey>, D::Error> {
        let Some(s) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let b = B64.decode(s).map_err(serde::de::Error::custom)?;
        if b.len() != 48 {
            return Err(serde::de::Error::custom("a session key is 32 + 16 bytes"));
        }
        SessionKey::from_parts(&b[..32], &b[32..])
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

/// A session key that is always present.
pub(crate) mod session_key_required {
    use ksef_crypto::encryption::SessionKey;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &SessionKey, s: S) -> Result<S::Ok, S::Error> {
        let mut b = v.key_bytes().to_vec();
        b.extend_from_slice(v.iv());
        super::b64::serialize(&b, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SessionKey, D::Error> {
        let b = super::b64::deserialize(d)?;
        if b.len() != 48 {
            return Err(serde::de::Error::custom("a session key is 32 + 16 bytes"));
        }
        SessionKey::from_parts(&b[..32], &b[32..]).map_err(serde::de::Error::custom)
    }
}

/// A map with non-string keys as a list of pairs (JSON objects need string keys).
pub(crate) mod map_vec {
    use std::collections::HashMap;
    use std::hash::Hash;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        m: &HashMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<HashMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Eq + Hash,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

/// A stored [`crate::permissions::Role`]: its `&'static str` role name is read as a `String`
/// and mapped back to the simulator's static name (an unknown one is leaked: a handful per load).
#[derive(serde::Deserialize)]
pub(crate) struct RoleRepr {
    nip: String,
    role: String,
    parent: Option<String>,
    description: String,
    start: OffsetDateTime,
}

impl<'de> serde::Deserialize<'de> for crate::permissions::Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RoleRepr::deserialize(d).map(Into::into)
    }
}

impl From<RoleRepr> for crate::permissions::Role {
    fn from(r: RoleRepr) -> Self {
        const KNOWN: &[&str] = &[
            "CourtBailiff",
            "EnforcementAuthority",
            "LocalGovernmentUnit",
            "LocalGovernmentSubUnit",
            "VatGroupUnit",
            "VatGroupSubUnit",
        ];
        let role = KNOWN
            .iter()
            .find(|k| **k == r.role)
            .copied()
            .unwrap_or_else(|| Box::leak(r.role.into_boxed_str()));
        crate::permissions::Role {
            nip: r.nip,
            role,
            parent: r.parent,
            description: r.description,
            start: r.start,
        }
    }
}

/// The simulator's CA (P-256 key as PKCS#8, certificate as DER).
pub(crate) mod ca {
    use std::sync::Arc;

    use super::B64;
    use crate::certificates::Ca;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Arc<Ca>>, s: S) -> Result<S::Ok, S::Error> {
        match v.as_ref().and_then(|ca| ca.to_der_pair()) {
            Some((key, cert)) => s.serialize_some(&(B64.encode(key), B64.encode(cert))),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<Ca>>, D::Error> {
        let Some((key, cert)) = Option::<(String, String)>::deserialize(d)? else {
            return Ok(None);
        };
        let key = B64.decode(key).map_err(serde::de::Error::custom)?;
        let cert = B64.decode(cert).map_err(serde::de::Error::custom)?;
        Ca::from_der_pair(&key, &cert)
            .map(|ca| Some(Arc::new(ca)))
            .map_err(serde::de::Error::custom)
    }
}
