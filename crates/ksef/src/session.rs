//! Online (interactive) sessions: open, send, wait for the KSeF number, UPO, close.

use futures_util::{Stream, TryStreamExt};
use ksef_crypto::encryption::SessionKey;
use ksef_crypto::public_key::KeyUsage;
use ksef_model::api;
use ksef_model::ids::{KsefNumber, ReferenceNumber, Sha256Base64};
use ksef_model::operations::{ListFailedSessionInvoicesQuery, ListSessionInvoicesQuery};
use ksef_model::{FormCode, Upo};

use crate::auth::AuthenticatedClient;
use crate::error::{Error, ExceptionCode, Result, StatusFailure};

/// Largest invoice the SDK sends (KSeF: 1 MB without attachments, 3 MB with them).
pub const MAX_INVOICE_SIZE: usize = 3_000_000;

/// A UPO as received (the exact signed bytes) and parsed.
#[derive(Clone, Debug)]
pub struct UpoDocument {
    /// The XML exactly as KSeF sent it (keep these bytes: they carry the signature).
    pub bytes: bytes::Bytes,
    /// The parsed UPO.
    pub upo: Upo,
}

impl UpoDocument {
    /// The UPO's entry for the invoice numbered `invoice_number` (`P_2`; a session UPO lists
    /// many invoices).
    pub fn invoice(&self, invoice_number: &str) -> Option<&ksef_model::upo::UpoDocument> {
        self.upo
            .documents
            .iter()
            .find(|d| d.invoice_number == invoice_number)
    }

    fn parse(doc: ksef_transport::XmlDocument) -> Result<Self> {
        let upo = Upo::parse(&doc.bytes)?;
        Ok(Self {
            bytes: doc.bytes,
            upo,
        })
    }
}

/// Online sessions: `auth.sessions()`.
#[derive(Debug)]
pub struct Sessions<'a> {
    auth: &'a AuthenticatedClient,
}

impl<'a> Sessions<'a> {
    pub(crate) fn new(auth: &'a AuthenticatedClient) -> Self {
        Self { auth }
    }

    pub(crate) fn auth(&self) -> &'a AuthenticatedClient {
        self.auth
    }

    /// Opens an online FA(3) session.
    pub async fn open_online(&self) -> Result<OnlineSession> {
        self.open_online_with(FormCode::Fa3).await
    }

    /// Opens an online session for `form`; a fresh AES key is generated and wrapped with the
    /// MF `SymmetricKeyEncryption` key (refetched once if KSeF answers 21470).
    pub async fn open_online_with(&self, form: FormCode) -> Result<OnlineSession> {
        if !form.online_allowed() {
            return Err(Error::InvalidInput(format!(
                "form {form} cannot be sent in an online session"
            )));
        }
        let key = SessionKey::generate()?;
        let auth = self.auth;
        let form_ref = &form;
        let key_ref = &key;
        let opened = auth
            .client()
            .with_public_key(KeyUsage::SymmetricKeyEncryption, |mf| async move {
                let info = key_ref.encryption_info(mf.public_key(), Some(mf.public_key_id()))?;
                let body = api::OpenOnlineSessionRequest {
                    encryption: encryption_info(&info)?,
                    form_code: form_ref.clone().into(),
                };
                auth.call(|t| {
                    let body = &body;
                    async move {
                        auth.client()
                            .transport()
                            .open_online_session(&t, body)
                            .await
                    }
                })
                .await
            })
            .await?
            .into_value();
        Ok(OnlineSession {
            auth: self.auth.clone(),
            reference: opened.reference_number,
            key,
            form,
            valid_until: opened.valid_until,
        })
    }

    /// Opens an online session, runs `body` with it and closes it — also when `body` fails (the
    /// body's error is returned then) or panics (the session is closed, then the panic goes on).
    /// Returns the body's value and the closed session.
    ///
    /// Cancellation: if the returned future is dropped before it finishes (a `select!`, a
    /// timeout, an aborted task), the session is closed best-effort by a task spawned on the
    /// current tokio runtime. That task only sends the close (it does not wait for the session
    /// UPO) and runs only while the runtime does: a runtime shutting down, or a drop outside any
    /// runtime, leaves the session open — KSeF then closes it at its `validUntil`. Failures are
    /// logged with `tracing::warn!`.
    pub async fn with_online<T>(
        &self,
        form: FormCode,
        body: impl AsyncFnOnce(&OnlineSession) -> Result<T>,
    ) -> Result<(T, ClosedSession)> {
        use futures_util::FutureExt as _;
        let session = self.open_online_with(form).await?;
        let mut guard = CloseOnDrop {
            auth: Some(self.auth.clone()),
            reference: session.reference.clone(),
        };
        let result = std::panic::AssertUnwindSafe(body(&session))
            .catch_unwind()
            .await;
        let closed = session.close().await;
        guard.auth = None;
        let result = match result {
            Ok(result) => result,
            Err(panic) => {
                if let Err(ce) = closed {
                    tracing::warn!(error = %ce, "closing the session after a panicking body failed");
                }
                std::panic::resume_unwind(panic)
            }
        };
        match (result, closed) {
            (Ok(v), Ok(c)) => Ok((v, c)),
            (Err(e), closed) => {
                if let Err(ce) = closed {
                    tracing::warn!(error = %ce, "closing the session after a failed body failed too");
                }
                Err(e)
            }
            (Ok(_), Err(e)) => Err(e),
        }
    }

    /// The status of an invoice in any session.
    pub async fn invoice_status(
        &self,
        session: &ReferenceNumber,
        invoice: &ReferenceNumber,
    ) -> Result<api::SessionInvoiceStatusResponse> {
        let a = self.auth;
        Ok(a.call(|t| async move {
            a.client()
                .transport()
                .session_invoice_status(&t, session, invoice)
                .await
        })
        .await?
        .into_value())
    }

    /// The status of any session.
    pub async fn status(&self, session: &ReferenceNumber) -> Result<api::SessionStatusResponse> {
        let a = self.auth;
        Ok(
            a.call(|t| async move { a.client().transport().session_status(&t, session).await })
                .await?
                .into_value(),
        )
    }

    /// The UPO of an invoice of any session (online or batch), by its KSeF number.
    pub async fn invoice_upo_by_ksef_number(
        &self,
        session: &ReferenceNumber,
        ksef_number: &KsefNumber,
    ) -> Result<UpoDocument> {
        upo_by_ksef_number(self.auth, session, ksef_number).await
    }

    /// The UPO of an invoice of any session, by the invoice's reference number.
    pub async fn invoice_upo_by_reference(
        &self,
        session: &ReferenceNumber,
        invoice: &ReferenceNumber,
    ) -> Result<UpoDocument> {
        upo_by_reference(self.auth, session, invoice).await
    }

    /// One page of a processed session's UPO (the pages are listed in [`Self::status`]).
    pub async fn session_upo_page(
        &self,
        session: &ReferenceNumber,
        page: &ReferenceNumber,
    ) -> Result<UpoDocument> {
        let a = self.auth;
        let doc = a
            .call(|t| async move { a.client().transport().session_upo(&t, session, page).await })
            .await?
            .into_value();
        UpoDocument::parse(doc)
    }
}

/// Closes a session of [`Sessions::with_online`] whose future was dropped before it finished:
/// sends the close from a task on the current runtime (best effort; see `with_online`).
struct CloseOnDrop {
    /// `None` once `with_online` has closed the session itself.
    auth: Option<AuthenticatedClient>,
    reference: ReferenceNumber,
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        let Some(auth) = self.auth.take() else {
            return;
        };
        let reference = self.reference.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(session = %reference, "with_online dropped outside a tokio runtime: the session stays open until KSeF closes it");
            return;
        };
        tracing::warn!(session = %reference, "with_online cancelled: closing the session in the background");
        runtime.spawn(async move {
            let a = &auth;
            let session = &reference;
            let closed = a
                .call(|t| async move {
                    a.client()
                        .transport()
                        .close_online_session(&t, session)
                        .await
                })
                .await;
            if let Err(e) = closed {
                tracing::warn!(session = %reference, error = %e, "closing a cancelled with_online session failed");
            }
        });
    }
}

pub(crate) fn encryption_info(
    info: &ksef_crypto::encryption::EncryptionInfo,
) -> Result<api::EncryptionInfo> {
    let b64 = |s: &str| {
        ksef_model::Base64Bytes::from_base64(s).map_err(|e| Error::InvalidInput(e.to_string()))
    };
    Ok(api::EncryptionInfo {
        encrypted_symmetric_key: b64(&info.encrypted_symmetric_key)?,
        initialization_vector: b64(&info.initialization_vector)?,
        public_key_id: info.public_key_id.as_deref().map(b64).transpose()?,
    })
}

/// Checks an invoice before anything is sent: size, UTF-8, no BOM.
pub(crate) fn check_invoice_bytes(xml: &[u8]) -> Result<()> {
    if xml.is_empty() {
        return Err(Error::InvalidInput("the invoice is empty".into()));
    }
    if xml.len() > MAX_INVOICE_SIZE {
        return Err(Error::InvalidInput(format!(
            "the invoice has {} bytes; KSeF accepts at most 1 MB (3 MB with attachments)",
            xml.len()
        )));
    }
    if xml.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(Error::InvalidInput(
            "the invoice starts with a UTF-8 BOM; KSeF wants UTF-8 without BOM".into(),
        ));
    }
    if let Err(e) = std::str::from_utf8(xml) {
        return Err(Error::InvalidInput(format!(
            "the invoice is not UTF-8 (invalid byte at offset {}); KSeF accepts UTF-8 only",
            e.valid_up_to()
        )));
    }
    Ok(())
}

/// An invoice encrypted for an online session, sans-IO: the exact JSON body of
/// `POST /sessions/online/{referenceNumber}/invoices` (an [`api::SendInvoiceRequest`]) and the
/// SHA-256 of the plaintext. [`OnlineSession::send_invoice`] builds one and sends it with
/// [`Transport::send_invoice_json`](ksef_transport::Transport::send_invoice_json); code that
/// manages its own session key can do the same.
///
/// ```
/// use ksef::crypto::encryption::SessionKey;
/// use ksef::{PreparedInvoice, SendOptions};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let key = SessionKey::generate()?;
/// let prepared = PreparedInvoice::new(&key, b"<Faktura/>", &SendOptions::default())?;
/// let body: serde_json::Value = serde_json::from_slice(prepared.body())?;
/// assert_eq!(body["invoiceSize"], 10);
/// assert_eq!(body["invoiceHash"], prepared.invoice_hash().as_str());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PreparedInvoice {
    body: bytes::Bytes,
    invoice_hash: Sha256Base64,
}

impl PreparedInvoice {
    /// Checks the invoice bytes (non-empty, at most [`MAX_INVOICE_SIZE`], UTF-8 without BOM:
    /// [`Error::InvalidInput`] otherwise), encrypts them with `key` and writes the request body.
    ///
    /// The body is written by hand rather than through serde, for speed (issue #6: ≤ 25 µs
    /// client-side per 5.5 KB send): the Base64 ciphertext, most of the body, is encoded in
    /// place in the same pass as the encryption and hashing, where the typed request would
    /// encode it into a temporary `String` that serde_json then scans for escapes. Nothing here
    /// needs escaping: Base64 and the validated `Sha256Base64` strings hold only ASCII letters,
    /// digits, `+`, `/` and `=`. A unit test checks the body equals serde's for every option.
    pub fn new(key: &SessionKey, xml: &[u8], options: &SendOptions) -> Result<Self> {
        use std::io::Write as _;
        const HEAD: &[u8] = b"{\"encryptedInvoiceContent\":\"";
        check_invoice_bytes(xml)?;
        // Base64 of the ciphertext (≤ len + 16 bytes) plus the other fields (< 320 bytes).
        let mut body = Vec::with_capacity(HEAD.len() + (xml.len() + 16).div_ceil(3) * 4 + 320);
        body.extend_from_slice(HEAD);
        let e = key.encrypt_invoice_with_base64(xml, &mut body);
        write!(
            body,
            "\",\"encryptedInvoiceHash\":\"{}\",\"encryptedInvoiceSize\":{},\"invoiceHash\":\"{}\",\"invoiceSize\":{}",
            e.encrypted_invoice_hash.as_str(),
            e.encrypted_invoice_size,
            e.invoice_hash.as_str(),
            e.invoice_size
        )
        .map_err(body_error)?;
        if let Some(h) = &options.hash_of_corrected_invoice {
            write!(body, ",\"hashOfCorrectedInvoice\":\"{}\"", h.as_str()).map_err(body_error)?;
        }
        if options.offline_mode || options.hash_of_corrected_invoice.is_some() {
            body.extend_from_slice(b",\"offlineMode\":true");
        }
        body.push(b'}');
        Ok(Self {
            body: bytes::Bytes::from(body),
            invoice_hash: e.invoice_hash,
        })
    }

    /// The JSON request body, exactly as it is sent.
    pub fn body(&self) -> &bytes::Bytes {
        &self.body
    }

    /// SHA-256 of the invoice as given (`invoiceHash`).
    pub fn invoice_hash(&self) -> &Sha256Base64 {
        &self.invoice_hash
    }

    /// The body and the invoice hash.
    pub fn into_parts(self) -> (bytes::Bytes, Sha256Base64) {
        (self.body, self.invoice_hash)
    }
}

/// Writing into a `Vec` does not fail; kept as an error rather than a panic all the same.
fn body_error(e: std::io::Error) -> Error {
    Error::InvalidInput(format!("could not write the request body: {e}"))
}

/// Whether a failed call may still have been carried out by KSeF: a 5xx answer, a timeout, or
/// a connection that broke after the request was sent.
pub(crate) fn outcome_unknown(e: &Error) -> bool {
    match e {
        Error::Transport(t) => match t {
            ksef_transport::Error::Api { api, .. } => (500..=599).contains(&api.status),
            ksef_transport::Error::Timeout { .. } | ksef_transport::Error::Transport { .. } => true,
            _ => false,
        },
        _ => false,
    }
}

fn failure(status: &api::InvoiceStatusInfo) -> StatusFailure {
    StatusFailure {
        code: status.code,
        description: status.description.clone(),
        details: status.details.clone().unwrap_or_default(),
    }
}

/// An open online session. Close it with [`OnlineSession::close`] (or use
/// [`Sessions::with_online`]); KSeF closes forgotten sessions after 12 h.
pub struct OnlineSession {
    auth: AuthenticatedClient,
    reference: ReferenceNumber,
    key: SessionKey,
    form: FormCode,
    valid_until: ksef_model::DateTime,
}

impl std::fmt::Debug for OnlineSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineSession")
            .field("reference", &self.reference)
            .field("form", &self.form)
            .field("valid_until", &self.valid_until)
            .finish_non_exhaustive()
    }
}

impl OnlineSession {
    /// A session handle from its parts (a resumed [`crate::SavedOnlineSession`]).
    pub(crate) fn from_parts(
        auth: AuthenticatedClient,
        reference: ReferenceNumber,
        key: SessionKey,
        form: FormCode,
        valid_until: ksef_model::DateTime,
    ) -> Self {
        Self {
            auth,
            reference,
            key,
            form,
            valid_until,
        }
    }

    /// The session's AES key.
    pub(crate) fn key(&self) -> &SessionKey {
        &self.key
    }

    /// The authenticated client the session belongs to.
    pub(crate) fn auth(&self) -> &AuthenticatedClient {
        &self.auth
    }
}

/// Options of one send.
#[derive(Clone, Debug, Default)]
pub struct SendOptions {
    /// The invoice was issued in an offline mode (`offlineMode`).
    pub offline_mode: bool,
    /// Technical correction: the hash of the rejected offline invoice it corrects (implies
    /// `offline_mode`).
    pub hash_of_corrected_invoice: Option<Sha256Base64>,
}

impl SendOptions {
    /// The options of a technical correction of the rejected offline invoice whose SHA-256 is
    /// `original`: `offlineMode: true` and `hashOfCorrectedInvoice`. See
    /// [`OnlineSession::send_technical_correction`].
    pub fn technical_correction(original: Sha256Base64) -> Self {
        Self {
            offline_mode: true,
            hash_of_corrected_invoice: Some(original),
        }
    }
}

/// Why KSeF refused a technical correction when it was sent (a 400, nothing stored); carried by
/// [`Error::TechnicalCorrectionRefused`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorrectionRefusal {
    /// 21166 "Korekta techniczna niedostępna": the original already has a technical correction
    /// KSeF accepted — only one per original. Look up the correction's KSeF number instead of
    /// sending another.
    AlreadyCorrected,
    /// 21167 "Status faktury nie pozwala na korektę techniczną": the original was accepted (it
    /// has a KSeF number; correct it with a correcting invoice, KOR, instead) or is otherwise not
    /// a rejected offline invoice.
    NotCorrectable,
}

impl CorrectionRefusal {
    /// The refusal for an exception code, if it is one.
    pub fn from_code(code: ExceptionCode) -> Option<Self> {
        match code {
            ExceptionCode::TechnicalCorrectionUnavailable => Some(Self::AlreadyCorrected),
            ExceptionCode::TechnicalCorrectionNotAllowed => Some(Self::NotCorrectable),
            _ => None,
        }
    }

    /// The KSeF exception code (21166 or 21167).
    pub fn code(self) -> ExceptionCode {
        match self {
            Self::AlreadyCorrected => ExceptionCode::TechnicalCorrectionUnavailable,
            Self::NotCorrectable => ExceptionCode::TechnicalCorrectionNotAllowed,
        }
    }
}

impl std::fmt::Display for CorrectionRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::AlreadyCorrected => {
                "the original already has an accepted technical correction (KSeF allows one)"
            }
            Self::NotCorrectable => {
                "the original's status does not allow a technical correction (it was accepted, or is not a rejected offline invoice)"
            }
        })
    }
}

impl OnlineSession {
    /// The session reference number.
    pub fn reference_number(&self) -> &ReferenceNumber {
        &self.reference
    }

    /// The form code.
    pub fn form_code(&self) -> &FormCode {
        &self.form
    }

    /// When KSeF closes the session on its own.
    pub fn valid_until(&self) -> ksef_model::DateTime {
        self.valid_until
    }

    /// Encrypts and sends an invoice (the exact bytes are hashed and sent).
    pub async fn send_invoice(&self, xml: impl AsRef<[u8]>) -> Result<SentInvoice> {
        self.send_invoice_with(xml, &SendOptions::default()).await
    }

    /// Validates a typed FA(3) invoice ([`ksef_fa::Faktura::validate`]: NIP check digits, issue
    /// date not in the future in Poland, totals against the lines, …), then serialises and
    /// sends it. An invalid invoice is refused with [`Error::FaInvalid`] before any network call;
    /// [`OnlineSession::send_fa_unchecked`] skips the check. The result remembers the invoice
    /// number (`P_2`): [`SentInvoice::invoice_number`], [`AcceptedInvoice::invoice_number`].
    pub async fn send_fa(&self, invoice: &ksef_fa::Faktura) -> Result<SentInvoice> {
        self.send_fa_with(invoice, &SendOptions::default()).await
    }

    /// [`OnlineSession::send_fa`] with options (offline mode, technical correction): validated
    /// first, refused with [`Error::FaInvalid`] before any network call.
    pub async fn send_fa_with(
        &self,
        invoice: &ksef_fa::Faktura,
        options: &SendOptions,
    ) -> Result<SentInvoice> {
        if let Err(errors) = invoice.validate() {
            return Err(Error::FaInvalid {
                invoice_number: invoice.fa.p_2.as_str().to_owned(),
                errors,
            });
        }
        self.send_fa_unchecked(invoice, options).await
    }

    /// [`OnlineSession::send_fa_with`] without the local validation: the invoice is serialised
    /// and sent as it is, and KSeF's own verification decides (a rejection then comes back as
    /// [`Error::InvoiceRejected`] from [`SentInvoice::wait`]). For invoices that break a rule
    /// of `validate` knowingly, or to let KSeF be the judge.
    pub async fn send_fa_unchecked(
        &self,
        invoice: &ksef_fa::Faktura,
        options: &SendOptions,
    ) -> Result<SentInvoice> {
        let mut sent = self
            .send_invoice_with(invoice.to_xml().into_bytes(), options)
            .await?;
        sent.invoice_number = Some(invoice.fa.p_2.as_str().to_owned());
        Ok(sent)
    }

    /// Sends with options (offline mode, technical correction).
    pub async fn send_invoice_with(
        &self,
        xml: impl AsRef<[u8]>,
        options: &SendOptions,
    ) -> Result<SentInvoice> {
        let (body, invoice_hash) =
            PreparedInvoice::new(&self.key, xml.as_ref(), options)?.into_parts();
        let a = &self.auth;
        let session = &self.reference;
        let body = &body;
        // Sending is not idempotent (a second copy is a 440 duplicate), so the transport never
        // repeats it. When the outcome is unknown — a 5xx, a timeout or a connection lost after
        // the request went out — KSeF may have stored the invoice and only the answer was lost:
        // look for it in the session by its hash before sending it again.
        let attempts = a.client().transport().retry().max_attempts.max(1);
        let mut attempt = 1;
        let reference = loop {
            let sent = a
                .call(|t| async move {
                    a.client()
                        .transport()
                        .send_invoice_json(&t, session, body.clone())
                        .await
                })
                .await;
            match sent {
                Ok(r) => break r.into_value().reference_number,
                Err(e) if outcome_unknown(&e) => {
                    tracing::warn!(error = %e, attempt, "send outcome unknown: looking the invoice up in the session");
                    if let Some(found) = self.find_by_hash(&invoice_hash).await? {
                        break found;
                    }
                    if attempt >= attempts {
                        return Err(e);
                    }
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        Ok(SentInvoice {
            auth: self.auth.clone(),
            session: self.reference.clone(),
            reference,
            invoice_hash,
            invoice_number: None,
        })
    }

    /// Sends a **technical correction** (ksef-api.md §11.4): `corrected` re-sends an offline
    /// invoice KSeF rejected for a technical reason (schema, size, duplicate, a semantic error
    /// such as a future issue date — status 430/440/450…), fixed. `rejected_original` is the
    /// original exactly as it was sent (its SHA-256 is `hashOfCorrectedInvoice`); it may have
    /// been rejected in this session, another online session or a batch session. The correction
    /// goes with `offlineMode: true`.
    ///
    /// [`SentInvoice::wait`] then gives the correction's KSeF number; KSeF links it to the
    /// original (`InvoiceMetadata::hash_of_corrected_invoice`), so the KOD I printed on the
    /// original leads to it. Keep the content the same (only the technical fault may change).
    ///
    /// Errors: [`Error::InvalidInput`] when `corrected` is byte-identical to the original (it
    /// would fail again); [`Error::TechnicalCorrectionRefused`] when KSeF refuses at sending —
    /// [`CorrectionRefusal::AlreadyCorrected`] (21166) or [`CorrectionRefusal::NotCorrectable`]
    /// (21167, e.g. the original was accepted); other errors as [`Self::send_invoice_with`].
    ///
    /// ```no_run
    /// # async fn f(session: &ksef::OnlineSession, original: Vec<u8>, fixed: Vec<u8>) -> ksef::Result<()> {
    /// match session.send_technical_correction(&original, &fixed).await {
    ///     Ok(sent) => println!("KSeF number {}", sent.wait().await?.ksef_number),
    ///     Err(ksef::Error::TechnicalCorrectionRefused { reason, .. }) => eprintln!("{reason}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn send_technical_correction(
        &self,
        rejected_original: impl AsRef<[u8]>,
        corrected: impl AsRef<[u8]>,
    ) -> Result<SentInvoice> {
        let original = ksef_crypto::hash::sha256_id(rejected_original.as_ref());
        self.send_technical_correction_of(&original, corrected)
            .await
    }

    /// [`Self::send_technical_correction`] when only the original's SHA-256 is at hand (e.g.
    /// `invoiceHash` of its rejected status, [`api::SessionInvoiceStatusResponse::invoice_hash`]).
    pub async fn send_technical_correction_of(
        &self,
        original_hash: &Sha256Base64,
        corrected: impl AsRef<[u8]>,
    ) -> Result<SentInvoice> {
        let corrected = corrected.as_ref();
        if ksef_crypto::hash::sha256_id(corrected) == *original_hash {
            return Err(Error::InvalidInput(
                "the corrected invoice is byte-identical to the rejected original: fix the fault before sending a technical correction".into(),
            ));
        }
        let options = SendOptions::technical_correction(original_hash.clone());
        self.send_invoice_with(corrected, &options)
            .await
            .map_err(|e| match e {
                Error::Transport(source) => {
                    let refusal = source
                        .exception_codes()
                        .into_iter()
                        .find_map(CorrectionRefusal::from_code);
                    match refusal {
                        Some(reason) => Error::TechnicalCorrectionRefused {
                            original_hash: original_hash.clone(),
                            reason,
                            source,
                        },
                        None => Error::Transport(source),
                    }
                }
                other => other,
            })
    }

    /// The reference of the invoice of this session with this hash, if KSeF has it.
    async fn find_by_hash(&self, hash: &Sha256Base64) -> Result<Option<ReferenceNumber>> {
        let mut all = std::pin::pin!(self.invoices());
        while let Some(inv) = all.try_next().await? {
            if inv.invoice_hash.as_ref() == Some(hash) {
                return Ok(Some(inv.reference_number));
            }
        }
        Ok(None)
    }

    /// The status of an invoice of this session.
    pub async fn invoice_status(
        &self,
        invoice: &ReferenceNumber,
    ) -> Result<api::SessionInvoiceStatusResponse> {
        self.auth
            .sessions()
            .invoice_status(&self.reference, invoice)
            .await
    }

    /// The UPO of an invoice by its KSeF number.
    pub async fn upo_by_ksef_number(&self, ksef_number: &KsefNumber) -> Result<UpoDocument> {
        upo_by_ksef_number(&self.auth, &self.reference, ksef_number).await
    }

    /// The UPO of an invoice by its reference number.
    pub async fn upo_by_reference(&self, invoice: &ReferenceNumber) -> Result<UpoDocument> {
        upo_by_reference(&self.auth, &self.reference, invoice).await
    }

    /// All invoices of the session, page after page.
    pub fn invoices(
        &self,
    ) -> impl Stream<Item = Result<api::SessionInvoiceStatusResponse>> + Send + '_ {
        session_invoices(&self.auth, &self.reference, false)
    }

    /// The invoices of the session that failed, page after page.
    pub fn failed_invoices(
        &self,
    ) -> impl Stream<Item = Result<api::SessionInvoiceStatusResponse>> + Send + '_ {
        session_invoices(&self.auth, &self.reference, true)
    }

    /// Closes the session and waits until KSeF has processed it and made the session UPO.
    pub async fn close(self) -> Result<ClosedSession> {
        let a = &self.auth;
        let session = &self.reference;
        // Closing is not idempotent (a second close is 21180), so the transport never repeats
        // it. When the outcome is unknown (5xx, timeout, connection lost after sending), the
        // session's status tells: still open (100) → close again; otherwise it was closed.
        let attempts = a.client().transport().retry().max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let closed = a
                .call(|t| async move {
                    a.client()
                        .transport()
                        .close_online_session(&t, session)
                        .await
                })
                .await;
            match closed {
                Ok(_) => break,
                Err(e) if outcome_unknown(&e) => {
                    tracing::warn!(error = %e, attempt, "close outcome unknown: checking the session status");
                    let status = a.sessions().status(session).await?;
                    if status.status.code != 100 {
                        break;
                    }
                    if attempt >= attempts {
                        return Err(e);
                    }
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
        wait_session(&self.auth, &self.reference).await
    }
}

/// Waits until a session leaves 100/150/170 and returns it closed (or its failure).
pub(crate) async fn wait_session(
    auth: &AuthenticatedClient,
    reference: &ReferenceNumber,
) -> Result<ClosedSession> {
    let status = auth
        .client()
        .poll_options()
        .poll("the session to be processed", || async {
            let s = auth.sessions().status(reference).await?;
            Ok((!matches!(s.status.code, 100 | 150 | 170)).then_some(s))
        })
        .await?;
    if status.status.code != 200 {
        return Err(Error::SessionFailed {
            reference: reference.to_string(),
            status: StatusFailure {
                code: status.status.code,
                description: status.status.description,
                details: status.status.details.unwrap_or_default(),
            },
        });
    }
    Ok(ClosedSession {
        auth: auth.clone(),
        reference: reference.clone(),
        status,
    })
}

async fn upo_by_ksef_number(
    a: &AuthenticatedClient,
    session: &ReferenceNumber,
    ksef: &KsefNumber,
) -> Result<UpoDocument> {
    let doc = a
        .call(|t| async move {
            a.client()
                .transport()
                .invoice_upo_by_ksef_number(&t, session, ksef)
                .await
        })
        .await?
        .into_value();
    UpoDocument::parse(doc)
}

async fn upo_by_reference(
    a: &AuthenticatedClient,
    session: &ReferenceNumber,
    invoice: &ReferenceNumber,
) -> Result<UpoDocument> {
    let doc = a
        .call(|t| async move {
            a.client()
                .transport()
                .invoice_upo_by_reference(&t, session, invoice)
                .await
        })
        .await?
        .into_value();
    UpoDocument::parse(doc)
}

/// Auto-paging list of a session's (failed) invoices, following `continuationToken`.
pub(crate) fn session_invoices<'a>(
    a: &'a AuthenticatedClient,
    session: &'a ReferenceNumber,
    failed: bool,
) -> impl Stream<Item = Result<api::SessionInvoiceStatusResponse>> + Send + 'a {
    crate::paging::continuation_pages(move |continuation| async move {
        let page = a
            .call(|t| {
                let continuation = continuation.clone();
                async move {
                    let tr = a.client().transport();
                    if failed {
                        let q = ListFailedSessionInvoicesQuery {
                            page_size: Some(1000),
                        };
                        tr.list_failed_session_invoices(&t, session, &q, continuation.as_deref())
                            .await
                    } else {
                        let q = ListSessionInvoicesQuery {
                            page_size: Some(1000),
                        };
                        tr.list_session_invoices(&t, session, &q, continuation.as_deref())
                            .await
                    }
                }
            })
            .await?
            .into_value();
        Ok((page.invoices, page.continuation_token))
    })
}

/// A sent invoice: [`SentInvoice::wait`] for its KSeF number.
#[derive(Clone, Debug)]
pub struct SentInvoice {
    auth: AuthenticatedClient,
    session: ReferenceNumber,
    reference: ReferenceNumber,
    invoice_hash: Sha256Base64,
    /// `P_2` of a typed invoice sent with `send_fa`.
    invoice_number: Option<String>,
}

/// An invoice KSeF accepted.
#[derive(Clone, Debug)]
pub struct AcceptedInvoice {
    /// The KSeF number.
    pub ksef_number: KsefNumber,
    /// The invoice number (`P_2`): the one sent with [`OnlineSession::send_fa`], else the one
    /// KSeF reports in the status.
    pub invoice_number: Option<String>,
    /// The full final status.
    pub status: api::SessionInvoiceStatusResponse,
}

impl SentInvoice {
    /// The invoice reference number.
    pub fn reference_number(&self) -> &ReferenceNumber {
        &self.reference
    }

    /// SHA-256 of the invoice as sent.
    pub fn invoice_hash(&self) -> &Sha256Base64 {
        &self.invoice_hash
    }

    /// The invoice number (`P_2`) of a typed invoice sent with [`OnlineSession::send_fa`].
    pub fn invoice_number(&self) -> Option<&str> {
        self.invoice_number.as_deref()
    }

    /// Waits until KSeF has processed the invoice: its KSeF number, or
    /// [`Error::InvoiceRejected`] with the status code and details (e.g. 440 duplicate).
    pub async fn wait(&self) -> Result<AcceptedInvoice> {
        let a = &self.auth;
        let status = a
            .client()
            .poll_options()
            .poll("the invoice to be processed", || async {
                let s = a
                    .sessions()
                    .invoice_status(&self.session, &self.reference)
                    .await?;
                Ok((!matches!(s.status.code, 100 | 150)).then_some(s))
            })
            .await?;
        match (&status.ksef_number, status.status.code) {
            (Some(k), 200) => Ok(AcceptedInvoice {
                ksef_number: k.clone(),
                invoice_number: self
                    .invoice_number
                    .clone()
                    .or_else(|| status.invoice_number.clone()),
                status,
            }),
            _ => Err(Error::InvoiceRejected {
                reference: self.reference.to_string(),
                status: failure(&status.status),
            }),
        }
    }

    /// The UPO of this invoice (after [`SentInvoice::wait`] succeeded).
    pub async fn upo(&self) -> Result<UpoDocument> {
        upo_by_reference(&self.auth, &self.session, &self.reference).await
    }
}

/// A closed, processed session.
#[derive(Clone, Debug)]
pub struct ClosedSession {
    auth: AuthenticatedClient,
    reference: ReferenceNumber,
    status: api::SessionStatusResponse,
}

impl ClosedSession {
    /// The session reference number.
    pub fn reference_number(&self) -> &ReferenceNumber {
        &self.reference
    }

    /// The final status (counts of invoices, UPO pages).
    pub fn status(&self) -> &api::SessionStatusResponse {
        &self.status
    }

    /// Invoices accepted.
    pub fn successful_invoice_count(&self) -> u32 {
        self.status.successful_invoice_count.unwrap_or(0)
    }

    /// Invoices rejected.
    pub fn failed_invoice_count(&self) -> u32 {
        self.status.failed_invoice_count.unwrap_or(0)
    }

    /// The session UPO pages (reference numbers and presigned download URLs).
    pub fn upo_pages(&self) -> &[api::UpoPageResponse] {
        self.status
            .upo
            .as_ref()
            .map(|u| u.pages.as_slice())
            .unwrap_or_default()
    }

    /// Downloads and parses every session UPO page.
    pub async fn fetch_upo(&self) -> Result<Vec<UpoDocument>> {
        let a = &self.auth;
        let mut out = Vec::new();
        for page in self.upo_pages() {
            let session = &self.reference;
            let page_ref = &page.reference_number;
            let doc = a
                .call(|t| async move {
                    a.client()
                        .transport()
                        .session_upo(&t, session, page_ref)
                        .await
                })
                .await?
                .into_value();
            out.push(UpoDocument::parse(doc)?);
        }
        Ok(out)
    }

    /// All invoices of the session, page after page.
    pub fn invoices(
        &self,
    ) -> impl Stream<Item = Result<api::SessionInvoiceStatusResponse>> + Send + '_ {
        session_invoices(&self.auth, &self.reference, false)
    }

    /// The failed invoices of the session, page after page.
    pub fn failed_invoices(
        &self,
    ) -> impl Stream<Item = Result<api::SessionInvoiceStatusResponse>> + Send + '_ {
        session_invoices(&self.auth, &self.reference, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written body is the JSON serde writes for the typed request, for every option.
    #[test]
    fn send_body_equals_the_typed_request() {
        let key = SessionKey::from_parts(&[7; 32], &[9; 16]).unwrap();
        let corrected = Sha256Base64::from_digest([3; 32]);
        for xml in [
            &b"<a/>"[..],
            &[b'x'; 15][..],
            &[b'y'; 16][..],
            &[b'z'; 5_500][..],
        ] {
            for (offline, correction) in
                [(false, false), (true, false), (false, true), (true, true)]
            {
                let options = SendOptions {
                    offline_mode: offline,
                    hash_of_corrected_invoice: correction.then(|| corrected.clone()),
                };
                let (body, hash) = PreparedInvoice::new(&key, xml, &options)
                    .unwrap()
                    .into_parts();
                let e = key.encrypt_invoice(xml);
                assert_eq!(hash, e.invoice_hash);
                let typed = api::SendInvoiceRequest {
                    encrypted_invoice_content: ksef_model::Base64Bytes::new(e.ciphertext),
                    encrypted_invoice_hash: e.encrypted_invoice_hash,
                    encrypted_invoice_size: e.encrypted_invoice_size,
                    hash_of_corrected_invoice: options.hash_of_corrected_invoice.clone(),
                    invoice_hash: e.invoice_hash,
                    invoice_size: e.invoice_size,
                    offline_mode: (offline || correction).then_some(true),
                };
                let ours: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(
                    ours,
                    serde_json::to_value(&typed).unwrap(),
                    "{offline} {correction}"
                );
                let back: api::SendInvoiceRequest = serde_json::from_slice(&body).unwrap();
                assert_eq!(back, typed);
            }
        }
    }

    #[test]
    fn technical_correction_options_and_refusal_codes() {
        let h = Sha256Base64::from_digest([5; 32]);
        let o = SendOptions::technical_correction(h.clone());
        assert!(o.offline_mode);
        assert_eq!(o.hash_of_corrected_invoice, Some(h));
        assert_eq!(CorrectionRefusal::AlreadyCorrected.code().code(), 21166);
        assert_eq!(CorrectionRefusal::NotCorrectable.code().code(), 21167);
        for r in [
            CorrectionRefusal::AlreadyCorrected,
            CorrectionRefusal::NotCorrectable,
        ] {
            assert_eq!(CorrectionRefusal::from_code(r.code()), Some(r));
        }
        assert_eq!(
            CorrectionRefusal::from_code(ExceptionCode::ValidationFailed),
            None
        );
    }

    #[test]
    fn invoice_bytes_checked_before_sending() {
        assert!(check_invoice_bytes(b"<a/>").is_ok());
        assert!(matches!(
            check_invoice_bytes(b""),
            Err(Error::InvalidInput(_))
        ));
        let e = check_invoice_bytes(b"\xEF\xBB\xBF<a/>").unwrap_err();
        assert!(e.to_string().contains("BOM"));
        let e = check_invoice_bytes(b"<a>\xff</a>").unwrap_err();
        assert!(e.to_string().contains("offset 3"), "{e}");
        let big = vec![b'a'; MAX_INVOICE_SIZE + 1];
        assert!(
            check_invoice_bytes(&big)
                .unwrap_err()
                .to_string()
                .contains("1 MB")
        );
    }
}
