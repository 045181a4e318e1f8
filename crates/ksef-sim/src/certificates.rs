//! KSeF certificates (ksef-api.md §14): limits, enrollment data, enrollment from a PKCS#10 CSR
//! (asynchronous, 100 → 200 with the serial number, or 400), retrieval, query and revocation;
//! the certificates are issued by the simulator's own CA. Also the smaller areas that hang off
//! the authenticated subject: certificate-limit overrides, session-limit and rate-limit
//! overrides (`/testdata/limits/*`, `/testdata/rate-limits*`), certificate expiry for tests
//! (`PUT /testdata/certificates/{serial}`) and the Peppol provider registry (`GET /peppol/query`).
//!
//! A certificate of type `Authentication` works for XAdES authentication (the identity comes from
//! its subject, which carries the enrolling subject's NIP/PESEL); an `Offline` one is refused
//! there (it is for KOD II only), as is a revoked or expired one. The hook that checks this is
//! [`on_xades_auth`], called by the XAdES handler.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use ksef_crypto::cert::{Certificate, CertificateUse, IssueOptions};
use ksef_crypto::csr::CertificateRequest;
use ksef_crypto::keys::{KeyKind, PrivateKey};
use ksef_model::api::{
    EnrollCertificateRequest, QueryCertificatesRequest, RetrieveCertificatesRequest,
    RevokeCertificateRequest, SetRateLimitsRequest, SetSessionLimitsRequest,
    SetSubjectLimitsRequest, TestDataUpdateCertificateRequest,
};
use ksef_model::ids::ReferenceType;
use ksef_model::operations::OperationId;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::error::ApiError;
use crate::ids::rfc3339;
use crate::server::{Caller, Inner, Req, empty, json_ok};
use crate::state::{AuthMethod, Ident, State, Status};

/// How long a KSeF certificate is valid (KSeF issues them for two years).
const CERTIFICATE_VALIDITY: Duration = Duration::days(730);
/// How long an enrollment's status stays available (then 410).
const ENROLLMENT_RETENTION: Duration = Duration::days(30);

/// The simulator's certification authority (a P-256 key generated on first use: cheap, and
/// nothing outside one simulator run needs to trust it).
pub(crate) struct Ca {
    key: PrivateKey,
    cert: Certificate,
}

/// The subject attributes of the certificate an authentication was signed with (keyed by the
/// authentication's document hash), for `GET /certificates/enrollments/data`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct AuthCertificateData {
    /// (dotted OID, value) in certificate order.
    pub attributes: Vec<(String, String)>,
}

/// An enrollment (`EH` reference).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Enrollment {
    pub reference: String,
    pub subject: Ident,
    pub requested: OffsetDateTime,
    pub status: Status,
    pub serial: Option<String>,
    pub name: String,
    pub kind: String,
    #[serde(with = "crate::persist::b64")]
    pub csr_der: Vec<u8>,
    pub valid_from: Option<OffsetDateTime>,
}

/// An issued KSeF certificate.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct IssuedCertificate {
    pub serial: String,
    pub name: String,
    /// `Authentication` or `Offline`.
    pub kind: String,
    pub common_name: String,
    pub subject: Ident,
    #[serde(with = "crate::persist::b64")]
    pub der: Vec<u8>,
    /// Base64 SHA-256 of the SubjectPublicKeyInfo (one key, one subject).
    pub spki_hash: String,
    pub valid_from: OffsetDateTime,
    pub valid_to: OffsetDateTime,
    pub requested: OffsetDateTime,
    pub last_use: Option<OffsetDateTime>,
    pub revoked: bool,
}

impl IssuedCertificate {
    fn status(&self, now: OffsetDateTime) -> &'static str {
        if self.revoked {
            "Revoked"
        } else if now >= self.valid_to {
            "Expired"
        } else {
            "Active"
        }
    }
}

/// A registered Peppol service provider.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct PeppolProvider {
    pub id: String,
    pub name: String,
    pub created: OffsetDateTime,
}

/// Effective session limits of a context (`/limits/context`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct SessionLimits {
    pub max_invoice_mb: i64,
    pub max_invoice_with_attachment_mb: i64,
    pub max_invoices: i64,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_invoice_mb: 1,
            max_invoice_with_attachment_mb: 3,
            max_invoices: 10_000,
        }
    }
}

impl SessionLimits {
    /// Largest invoice without an attachment, in bytes (KSeF's MB are decimal: 1 MB =
    /// 1 000 000 B).
    pub fn max_invoice_bytes(self) -> u64 {
        self.max_invoice_mb.max(0) as u64 * 1_000_000
    }

    /// Largest invoice with an attachment, in bytes.
    pub fn max_invoice_with_attachment_bytes(self) -> u64 {
        self.max_invoice_with_attachment_mb.max(0) as u64 * 1_000_000
    }

    /// Most invoices per session.
    pub fn max_invoice_count(self) -> usize {
        usize::try_from(self.max_invoices.max(0)).unwrap_or(usize::MAX)
    }

    pub fn to_json(self) -> Value {
        json!({"maxInvoiceSizeInMB": self.max_invoice_mb,
               "maxInvoiceWithAttachmentSizeInMB": self.max_invoice_with_attachment_mb,
               "maxInvoices": self.max_invoices})
    }
}

/// This area's state (one field of [`State`]).
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct CertState {
    #[serde(with = "crate::persist::ca")]
    ca: Option<Arc<Ca>>,
    pub auth_certificates: HashMap<String, AuthCertificateData>,
    pub enrollments: Vec<Enrollment>,
    pub certificates: Vec<IssuedCertificate>,
    /// Subject → (maxEnrollments, maxCertificates) set by `/testdata/limits/subject/certificate`.
    #[serde(with = "crate::persist::map_vec")]
    pub subject_limits: HashMap<Ident, (Option<i64>, Option<i64>)>,
    /// Context → (online, batch) session limits set by `/testdata/limits/context/session`.
    #[serde(with = "crate::persist::map_vec")]
    pub session_limits: HashMap<Ident, (SessionLimits, SessionLimits)>,
    /// Context → group → (per second, per minute, per hour) set by `/testdata/rate-limits`.
    #[serde(with = "crate::persist::map_vec")]
    pub rate_limits: HashMap<Ident, HashMap<String, (u32, u32, u32)>>,
    pub peppol: Vec<PeppolProvider>,
}

impl Ca {
    /// (PKCS#8 key DER, certificate DER), for the state directory.
    pub(crate) fn to_der_pair(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let key = self.key.to_pkcs8_der().ok()?;
        Some((key.to_vec(), self.cert.der().to_vec()))
    }

    /// The CA read back from the state directory.
    pub(crate) fn from_der_pair(key: &[u8], cert: &[u8]) -> Result<Self, String> {
        Ok(Ca {
            key: PrivateKey::from_der(key, None).map_err(|e| e.to_string())?,
            cert: Certificate::from_der(cert).map_err(|e| e.to_string())?,
        })
    }
}

impl CertState {
    /// The CA, created on first use.
    fn ca(&mut self, now: OffsetDateTime) -> Result<Arc<Ca>, String> {
        if let Some(ca) = &self.ca {
            return Ok(ca.clone());
        }
        let key = PrivateKey::generate(KeyKind::P256).map_err(|e| e.to_string())?;
        let dn = ksef_crypto::cert::DistinguishedName {
            common_name: "KSeF Simulator CA".into(),
            country_name: "PL".into(),
            organization_name: Some("ksef-sim".into()),
            ..Default::default()
        };
        let cert = ksef_crypto::cert::self_signed(
            &key,
            &dn,
            &IssueOptions {
                not_before: now - Duration::days(1),
                not_after: now + Duration::days(3650),
                serial: None,
                usage: CertificateUse::Ca,
            },
        )
        .map_err(|e| e.to_string())?;
        let ca = Arc::new(Ca { key, cert });
        self.ca = Some(ca.clone());
        Ok(ca)
    }

    /// (maxEnrollments, maxCertificates) for `subject`: NIP 300/100, PESEL and fingerprint
    /// 12/6, unless overridden.
    pub fn limits_for(&self, subject: &Ident) -> (i64, i64) {
        let (e, c) = if subject.0 == "Nip" {
            (300, 100)
        } else {
            (12, 6)
        };
        match self.subject_limits.get(subject) {
            Some((oe, oc)) => (oe.unwrap_or(e), oc.unwrap_or(c)),
            None => (e, c),
        }
    }

    /// Effective (online, batch) session limits of `context`.
    pub fn session_limits_for(&self, context: &Ident) -> (SessionLimits, SessionLimits) {
        self.session_limits
            .get(context)
            .copied()
            .unwrap_or_default()
    }

    /// Rate-limit overrides of `context` for the group named `group` (`onlineSession`, …).
    pub fn rate_limit_override(&self, context: &Ident, group: &str) -> Option<(u32, u32, u32)> {
        self.rate_limits.get(context)?.get(group).copied()
    }
}

/// Called by the XAdES handler with the verified signing certificate: remembers its subject
/// attributes for the enrollment data, registers a Peppol provider on its first authentication
/// in a `PeppolId` context, and tells whether the certificate was issued by this simulator's CA
/// (a KSeF certificate) and, if so, why it cannot authenticate (`Offline` type, revoked,
/// expired), recording its use otherwise.
pub(crate) fn on_xades_auth(
    inner: &Inner,
    cert: &Certificate,
    context: &Ident,
    document_hash: &str,
    now: OffsetDateTime,
) -> XadesCertificate {
    let mut st = inner.state();
    let attributes = subject_attributes(cert);
    let area = &mut st.certs;
    area.auth_certificates
        .insert(document_hash.to_owned(), AuthCertificateData { attributes });
    if context.0 == "PeppolId" && !area.peppol.iter().any(|p| p.id == context.1) {
        let name = cert
            .subject_attribute("2.5.4.10")
            .or_else(|| cert.subject_attribute("2.5.4.3"))
            .unwrap_or_else(|| context.1.clone());
        area.peppol.push(PeppolProvider {
            id: context.1.clone(),
            name,
            created: now,
        });
    }
    let Some(issued) = area.certificates.iter_mut().find(|c| c.der == cert.der()) else {
        return XadesCertificate {
            ksef_certificate: false,
            failure: None,
        };
    };
    let failure = if issued.kind != "Authentication" {
        Some("Certyfikat KSeF typu Offline nie służy do uwierzytelnienia")
    } else if issued.revoked {
        Some("Certyfikat unieważniony")
    } else if now >= issued.valid_to {
        Some("Nieważny certyfikat")
    } else {
        None
    };
    if failure.is_none() {
        issued.last_use = Some(now);
    }
    XadesCertificate {
        ksef_certificate: true,
        failure,
    }
}

/// What [`on_xades_auth`] found out about a signing certificate.
pub(crate) struct XadesCertificate {
    /// Issued by the simulator's CA (authentication method `InternalCertificate`).
    pub ksef_certificate: bool,
    /// Why a KSeF certificate cannot authenticate (auth status 460), if it cannot.
    pub failure: Option<&'static str>,
}

/// The subject attributes KSeF puts into enrollment data, as (dotted OID, value).
fn subject_attributes(cert: &Certificate) -> Vec<(String, String)> {
    const OIDS: [&str; 8] = [
        "2.5.4.3", "2.5.4.6", "2.5.4.42", "2.5.4.4", "2.5.4.5", "2.5.4.45", "2.5.4.10", "2.5.4.97",
    ];
    OIDS.iter()
        .filter_map(|o| cert.subject_attribute(o).map(|v| ((*o).to_owned(), v)))
        .collect()
}

/// Handles this area's operations; `None` for any other operation (the dispatcher then tries the
/// next area).
pub(crate) fn handle(inner: &Arc<Inner>, req: &Req) -> Option<Result<Response, ApiError>> {
    Some(match req.op.id {
        OperationId::CertificateLimits => limits(inner, req),
        OperationId::CertificateEnrollmentData => enrollment_data(inner, req),
        OperationId::EnrollCertificate => enroll(inner, req),
        OperationId::CertificateEnrollmentStatus => enrollment_status(inner, req),
        OperationId::RetrieveCertificates => retrieve(inner, req),
        OperationId::RevokeCertificate => revoke(inner, req),
        OperationId::QueryCertificates => query(inner, req),
        OperationId::TestdataUpdateCertificate => update_certificate(inner, req),
        OperationId::TestdataSetCertificateLimits => set_subject_limits(inner, req),
        OperationId::TestdataResetCertificateLimits => reset_subject_limits(inner, req),
        OperationId::TestdataSetSessionLimits => set_session_limits(inner, req),
        OperationId::TestdataResetSessionLimits => reset_session_limits(inner, req),
        OperationId::TestdataSetRateLimits => set_rate_limits(inner, req),
        OperationId::TestdataResetRateLimits | OperationId::TestdataSetProductionRateLimits => {
            reset_rate_limits(inner, req)
        }
        OperationId::QueryPeppolProviders => peppol(inner, req),
        _ => return None,
    })
}

/// How the caller authenticated.
fn method(st: &State, caller: &Caller) -> Option<AuthMethod> {
    st.auths.get(&caller.auth_ref).map(|a| a.method)
}

/// Whether `owner` (a certificate's subject) is the caller's own identity: the same identifier,
/// or a NIP and a PESEL linked by `/testdata/person`.
fn owns(st: &State, caller: &Ident, owner: &Ident) -> bool {
    if caller == owner {
        return true;
    }
    let linked = |nip: &Ident, pesel: &Ident| {
        nip.0 == "Nip"
            && pesel.0 == "Pesel"
            && st
                .persons
                .iter()
                .any(|p| p.nip == nip.1 && p.pesel == pesel.1)
    };
    linked(caller, owner) || linked(owner, caller)
}

fn limits(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let st = inner.state();
    let (max_e, max_c) = st.certs.limits_for(&caller.subject);
    let (used_e, used_c) = usage(&st, &caller.subject, req.now);
    let rem_e = (max_e - used_e).max(0);
    let rem_c = (max_c - used_c).max(0);
    Ok(json_ok(
        StatusCode::OK,
        &json!({
            "canRequest": rem_e > 0 && rem_c > 0,
            "enrollment": {"limit": max_e, "remaining": rem_e},
            "certificate": {"limit": max_c, "remaining": rem_c},
        }),
    ))
}

/// (enrollments made, active certificates) of `subject`.
fn usage(st: &State, subject: &Ident, now: OffsetDateTime) -> (i64, i64) {
    let e = st
        .certs
        .enrollments
        .iter()
        .filter(|e| &e.subject == subject)
        .count() as i64;
    let c = st
        .certs
        .certificates
        .iter()
        .filter(|c| &c.subject == subject && c.status(now) == "Active")
        .count() as i64;
    (e, c)
}

/// The enrollment data of the caller's authentication certificate, or 25001.
fn caller_attributes(st: &State, caller: &Caller) -> Result<Vec<(String, String)>, ApiError> {
    let no_data = || {
        ApiError::bad(
            25001,
            ["Dane do wniosku są dostępne tylko po uwierzytelnieniu podpisem XAdES.".to_owned()],
        )
    };
    let auth = st.auths.get(&caller.auth_ref).ok_or_else(no_data)?;
    if auth.method == AuthMethod::Token {
        return Err(no_data());
    }
    st.certs
        .auth_certificates
        .get(&auth.document_hash)
        .map(|d| d.attributes.clone())
        .ok_or_else(no_data)
}

fn enrollment_data(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let st = inner.state();
    let attrs = caller_attributes(&st, caller)?;
    let get = |oid: &str| attrs.iter().find(|(o, _)| o == oid).map(|(_, v)| v.clone());
    let mut v = json!({
        "commonName": get("2.5.4.3").unwrap_or_else(|| caller.subject.1.clone()),
        "countryName": get("2.5.4.6").unwrap_or_else(|| "PL".to_owned()),
    });
    for (oid, name) in [
        ("2.5.4.42", "givenName"),
        ("2.5.4.4", "surname"),
        ("2.5.4.5", "serialNumber"),
        ("2.5.4.45", "uniqueIdentifier"),
        ("2.5.4.10", "organizationName"),
        ("2.5.4.97", "organizationIdentifier"),
    ] {
        if let Some(val) = get(oid) {
            v[name] = json!(val);
        }
    }
    Ok(json_ok(StatusCode::OK, &v))
}

fn valid_certificate_name(name: &str) -> bool {
    let n = name.chars().count();
    (5..=100).contains(&n)
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_- ąćęłńóśźżĄĆĘŁŃÓŚŹŻ".contains(c))
}

fn enroll(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?.clone();
    let body: EnrollCertificateRequest = req.json()?;
    if !valid_certificate_name(&body.certificate_name) {
        return Err(ApiError::validation(format!(
            "'certificateName' must be 5 to 100 letters, digits, spaces, '_' or '-'; got {:?}.",
            body.certificate_name
        )));
    }
    let kind = body.certificate_type.as_str().to_owned();
    if kind != "Authentication" && kind != "Offline" {
        return Err(ApiError::validation(format!(
            "'certificateType' has an invalid value '{kind}' (Authentication or Offline)."
        )));
    }
    let csr = CertificateRequest::from_der(body.csr.as_slice())
        .map_err(|e| ApiError::bad(25004, [e.to_string()]))?;
    let key = csr
        .public_key()
        .map_err(|e| ApiError::bad(25010, [e.to_string()]))?;
    if let ksef_crypto::keys::PublicKey::Rsa(_) = key {
        // An RSA-2048 SubjectPublicKeyInfo with a 3-byte exponent is 294 bytes (a 1-byte
        // exponent: 292); other modulus sizes differ by at least 64 bytes. KSeF takes exactly 2048.
        let len = key.to_spki_der().map(|d| d.len()).unwrap_or(0);
        if !(290..=296).contains(&len) {
            return Err(ApiError::bad(
                25010,
                ["Dozwolony jest klucz RSA o długości 2048 bitów lub EC P-256.".to_owned()],
            ));
        }
    }
    csr.verify().map_err(|e| match e {
        ksef_crypto::Error::UnsupportedAlgorithm(m) => ApiError::bad(25011, [m]),
        other => ApiError::bad(25004, [other.to_string()]),
    })?;
    let spki = key
        .to_spki_der()
        .map_err(|e| ApiError::bad(25010, [e.to_string()]))?;
    let now = req.now;
    let mut st = inner.state();
    let method = method(&st, &caller);
    if method.is_none() || method == Some(AuthMethod::Token) {
        return Err(ApiError::bad(
            25002,
            [
                "Wniosek certyfikacyjny można złożyć tylko po uwierzytelnieniu podpisem XAdES."
                    .to_owned(),
            ],
        ));
    }
    let mut expected = caller_attributes(&st, &caller)?;
    let mut got = csr.subject_attributes();
    expected.sort();
    got.sort();
    if expected != got {
        return Err(ApiError::bad(
            25003,
            [format!(
                "Podmiot CSR ({}) różni się od danych z GET /certificates/enrollments/data.",
                csr.subject()
            )],
        ));
    }
    let (max_e, max_c) = st.certs.limits_for(&caller.subject);
    let (used_e, used_c) = usage(&st, &caller.subject, now);
    if used_e >= max_e {
        return Err(ApiError::bad(25006, [format!("Limit wniosków: {max_e}.")]));
    }
    if used_c >= max_c {
        return Err(ApiError::bad(
            25007,
            [format!("Limit aktywnych certyfikatów: {max_c}.")],
        ));
    }
    let reference = st.rng.reference(now, ReferenceType::EnrollmentOrExport);
    st.certs.enrollments.push(Enrollment {
        reference: reference.clone(),
        subject: caller.subject.clone(),
        requested: now,
        status: Status::new(100, "Wniosek przyjęty do realizacji"),
        serial: None,
        name: body.certificate_name.clone(),
        kind,
        csr_der: csr.der().to_vec(),
        valid_from: body.valid_from.map(|d| d.as_offset_date_time()),
    });
    drop(st);
    let spki_hash = ksef_crypto::hash::sha256_base64(&spki);
    let task_inner = inner.clone();
    let task_ref = reference.clone();
    tokio::spawn(async move {
        let mut st = task_inner.state();
        let outcome = process_enrollment(&mut st, &task_ref, &spki_hash, now);
        if let Some(e) = st
            .certs
            .enrollments
            .iter_mut()
            .find(|e| e.reference == task_ref)
        {
            match outcome {
                Ok(serial) => {
                    e.status = Status::new(200, "Wniosek obsłużony (certyfikat wygenerowany)");
                    e.serial = Some(serial);
                }
                Err(status) => e.status = status,
            }
        }
    });
    Ok(json_ok(
        StatusCode::ACCEPTED,
        &json!({"referenceNumber": reference, "timestamp": rfc3339(now)}),
    ))
}

/// Issues the certificate of an accepted enrollment; the serial number, or the failure status.
fn process_enrollment(
    st: &mut State,
    reference: &str,
    spki_hash: &str,
    now: OffsetDateTime,
) -> Result<String, Status> {
    let rejected = |d: &str| Status::new(400, "Wniosek odrzucony").with_detail(d);
    let Some(e) = st
        .certs
        .enrollments
        .iter()
        .find(|e| e.reference == reference)
        .cloned()
    else {
        return Err(Status::new(500, "Nieznany błąd"));
    };
    if st
        .certs
        .certificates
        .iter()
        .any(|c| c.spki_hash == spki_hash && c.subject != e.subject)
    {
        return Err(rejected(
            "Klucz publiczny został już certyfikowany przez inny podmiot.",
        ));
    }
    let (_, max_c) = st.certs.limits_for(&e.subject);
    if usage(st, &e.subject, now).1 >= max_c {
        return Err(rejected(
            "Osiągnięto dopuszczalny limit posiadanych certyfikatów.",
        ));
    }
    let unknown = |m: String| Status::new(500, "Nieznany błąd").with_detail(m);
    let ca = st.certs.ca(now).map_err(unknown)?;
    let csr = CertificateRequest::from_der(&e.csr_der).map_err(|x| unknown(x.to_string()))?;
    let not_before = e.valid_from.unwrap_or(now).max(now - Duration::minutes(5));
    let mut serial = [0u8; 8];
    st.rng.fill(&mut serial);
    serial[0] = (serial[0] & 0x7f) | 0x01; // positive, 16 hex digits
    let opts = IssueOptions {
        not_before,
        not_after: not_before + CERTIFICATE_VALIDITY,
        serial: Some(serial.to_vec()),
        usage: if e.kind == "Offline" {
            CertificateUse::NonRepudiation
        } else {
            CertificateUse::DigitalSignature
        },
    };
    let cert = csr
        .issue(&ca.key, &ca.cert, &opts)
        .map_err(|x| unknown(x.to_string()))?;
    let serial = cert.serial_hex();
    st.certs.certificates.push(IssuedCertificate {
        serial: serial.clone(),
        name: e.name.clone(),
        kind: e.kind.clone(),
        common_name: cert.subject_attribute("2.5.4.3").unwrap_or_default(),
        subject: e.subject.clone(),
        der: cert.der().to_vec(),
        spki_hash: spki_hash.to_owned(),
        valid_from: cert.not_before(),
        valid_to: cert.not_after(),
        requested: e.requested,
        last_use: None,
        revoked: false,
    });
    Ok(serial)
}

fn enrollment_status(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let r = req.param(0);
    let st = inner.state();
    let e = st
        .certs
        .enrollments
        .iter()
        .find(|e| e.reference == r && owns(&st, &caller.subject, &e.subject))
        .ok_or_else(|| {
            ApiError::bad(25005, [format!("Wniosek certyfikacyjny {r} nie istnieje.")])
        })?;
    if req.now - e.requested > ENROLLMENT_RETENTION {
        return Err(ApiError::Gone(format!(
            "Status wniosku {r} był dostępny przez 30 dni."
        )));
    }
    let mut v = json!({"requestDate": rfc3339(e.requested), "status": e.status.to_json()});
    if let Some(s) = &e.serial {
        v["certificateSerialNumber"] = json!(s);
    }
    Ok(json_ok(StatusCode::OK, &v))
}

fn valid_serial(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

fn retrieve(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let body: RetrieveCertificatesRequest = req.json()?;
    let n = body.certificate_serial_numbers.len();
    if !(1..=10).contains(&n) {
        return Err(ApiError::validation(format!(
            "'certificateSerialNumbers' must hold 1 to 10 serial numbers; got {n}."
        )));
    }
    if let Some(bad) = body
        .certificate_serial_numbers
        .iter()
        .find(|s| !valid_serial(s))
    {
        return Err(ApiError::validation(format!(
            "'certificateSerialNumbers' must be 16 uppercase hex digits; got {bad:?}."
        )));
    }
    let st = inner.state();
    let items: Vec<Value> = body
        .certificate_serial_numbers
        .iter()
        .filter_map(|s| {
            st.certs
                .certificates
                .iter()
                .find(|c| &c.serial == s && owns(&st, &caller.subject, &c.subject))
        })
        .map(|c| {
            json!({
                "certificate": ksef_crypto::hash::base64(&c.der),
                "certificateName": c.name,
                "certificateSerialNumber": c.serial,
                "certificateType": c.kind,
            })
        })
        .collect();
    Ok(json_ok(StatusCode::OK, &json!({"certificates": items})))
}

fn revoke(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let serial = req.param(0);
    // The body is optional (`revocationReason`).
    if !req.body.is_empty() {
        let _: RevokeCertificateRequest = req.json()?;
    }
    let mut st = inner.state();
    if method(&st, caller) == Some(AuthMethod::Token) {
        return Err(ApiError::Forbidden {
            reason_code: "auth-method-not-allowed",
            detail: "Unieważnienie certyfikatu nie jest dostępne po uwierzytelnieniu tokenem KSeF."
                .into(),
            security: json!({}),
        });
    }
    let idx = st
        .certs
        .certificates
        .iter()
        .position(|c| c.serial == serial && owns(&st, &caller.subject, &c.subject))
        .ok_or_else(|| ApiError::bad(25008, [format!("Certyfikat {serial} nie istnieje.")]))?;
    let now = req.now;
    let c = &mut st.certs.certificates[idx];
    if c.status(now) != "Active" {
        return Err(ApiError::bad(
            25009,
            [format!("Certyfikat {serial} ma status {}.", c.status(now))],
        ));
    }
    c.revoked = true;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `pageOffset` (≥ 0).
fn page_offset(req: &Req) -> Result<usize, ApiError> {
    match req.query("pageOffset") {
        None => Ok(0),
        Some(v) => v.parse().map_err(|_| {
            ApiError::validation(format!("'pageOffset' must be 0 or more. You entered {v}."))
        }),
    }
}

fn query(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let size = crate::auth::page_size(req, 10, 10, 50)?;
    let offset = page_offset(req)?;
    let body: QueryCertificatesRequest = if req.body.is_empty() {
        QueryCertificatesRequest::default()
    } else {
        req.json()?
    };
    if let Some(s) = &body.certificate_serial_number
        && !valid_serial(s)
    {
        return Err(ApiError::validation(format!(
            "'certificateSerialNumber' must be 16 uppercase hex digits; got {s:?}."
        )));
    }
    let now = req.now;
    let name = body.name.as_deref().map(str::to_lowercase);
    let st = inner.state();
    let mut items: Vec<&IssuedCertificate> = st
        .certs
        .certificates
        .iter()
        .filter(|c| owns(&st, &caller.subject, &c.subject))
        .filter(|c| {
            body.certificate_serial_number
                .as_deref()
                .is_none_or(|s| c.serial == s)
        })
        .filter(|c| {
            name.as_deref()
                .is_none_or(|n| c.name.to_lowercase().contains(n))
        })
        .filter(|c| body.r#type.as_ref().is_none_or(|t| t.as_str() == c.kind))
        .filter(|c| {
            body.status
                .as_ref()
                .is_none_or(|s| s.as_str() == c.status(now))
        })
        .filter(|c| {
            body.expires_after
                .as_ref()
                .is_none_or(|d| c.valid_to > d.as_offset_date_time())
        })
        .collect();
    items.sort_by(|a, b| b.requested.cmp(&a.requested).then(a.serial.cmp(&b.serial)));
    let page: Vec<Value> = items
        .iter()
        .skip(offset * size)
        .take(size)
        .map(|c| {
            let mut v = json!({
                "certificateSerialNumber": c.serial,
                "name": c.name,
                "type": c.kind,
                "commonName": c.common_name,
                "status": c.status(now),
                "subjectIdentifier": {"type": c.subject.0, "value": c.subject.1},
                "validFrom": rfc3339(c.valid_from),
                "validTo": rfc3339(c.valid_to),
                "requestDate": rfc3339(c.requested),
            });
            if let Some(u) = c.last_use {
                v["lastUseDate"] = json!(rfc3339(u));
            }
            v
        })
        .collect();
    let has_more = (offset + 1) * size < items.len();
    Ok(json_ok(
        StatusCode::OK,
        &json!({"certificates": page, "hasMore": has_more}),
    ))
}

fn update_certificate(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let body: TestDataUpdateCertificateRequest = req.json()?;
    let valid_to = body.valid_to.as_offset_date_time();
    if valid_to > req.now {
        return Err(ApiError::validation(
            "'validTo' must not be later than now.",
        ));
    }
    let serial = req.param(0);
    let mut st = inner.state();
    let idx = st
        .certs
        .certificates
        .iter()
        .position(|c| c.serial == serial && owns(&st, &caller.subject, &c.subject))
        .ok_or_else(|| ApiError::bad(25008, [format!("Certyfikat {serial} nie istnieje.")]))?;
    st.certs.certificates[idx].valid_to = valid_to;
    Ok(empty(StatusCode::OK))
}

fn set_subject_limits(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let body: SetSubjectLimitsRequest = req.json()?;
    let e = body
        .enrollment
        .and_then(|e| e.max_enrollments)
        .map(i64::from);
    let c = body
        .certificate
        .and_then(|c| c.max_certificates)
        .map(i64::from);
    inner
        .state()
        .certs
        .subject_limits
        .insert(caller.subject.clone(), (e, c));
    Ok(empty(StatusCode::OK))
}

fn reset_subject_limits(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    inner.state().certs.subject_limits.remove(&caller.subject);
    Ok(empty(StatusCode::OK))
}

fn set_session_limits(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let body: SetSessionLimitsRequest = req.json()?;
    let v = serde_json::to_value(&body).map_err(|e| ApiError::validation(e.to_string()))?;
    let read = |kind: &str| -> Result<SessionLimits, ApiError> {
        let o = &v[kind];
        let field = |name: &str, max: i64| -> Result<i64, ApiError> {
            let n = o[name]
                .as_i64()
                .ok_or_else(|| ApiError::validation(format!("'{kind}.{name}' is required.")))?;
            if !(0..=max).contains(&n) {
                return Err(ApiError::validation(format!(
                    "'{kind}.{name}' must be between 0 and {max}. You entered {n}."
                )));
            }
            Ok(n)
        };
        Ok(SessionLimits {
            max_invoice_mb: field("maxInvoiceSizeInMB", 5)?,
            max_invoice_with_attachment_mb: field("maxInvoiceWithAttachmentSizeInMB", 10)?,
            max_invoices: field("maxInvoices", 100_000)?,
        })
    };
    let limits = (read("onlineSession")?, read("batchSession")?);
    inner
        .state()
        .certs
        .session_limits
        .insert(caller.context.clone(), limits);
    Ok(empty(StatusCode::OK))
}

fn reset_session_limits(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    inner.state().certs.session_limits.remove(&caller.context);
    Ok(empty(StatusCode::OK))
}

fn set_rate_limits(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let body: SetRateLimitsRequest = req.json()?;
    let v =
        serde_json::to_value(&body.rate_limits).map_err(|e| ApiError::validation(e.to_string()))?;
    let mut groups = HashMap::new();
    for (group, values) in v.as_object().into_iter().flatten() {
        let n = |k: &str| -> Result<u32, ApiError> {
            values[k]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    ApiError::validation(format!("'rateLimits.{group}.{k}' is required."))
                })
        };
        groups.insert(
            group.clone(),
            (n("perSecond")?, n("perMinute")?, n("perHour")?),
        );
    }
    if let Some(limiter) = &inner.limiter {
        limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_overrides(&caller.context.1, groups.clone());
    }
    inner
        .state()
        .certs
        .rate_limits
        .insert(caller.context.clone(), groups);
    Ok(empty(StatusCode::OK))
}

/// `DELETE /testdata/rate-limits` and `POST /testdata/rate-limits/production`: the TEST
/// defaults equal production's since API 2.5.0, so both restore the catalogue values.
fn reset_rate_limits(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    if let Some(limiter) = &inner.limiter {
        limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_overrides(&caller.context.1, HashMap::new());
    }
    inner.state().certs.rate_limits.remove(&caller.context);
    Ok(empty(StatusCode::OK))
}

fn peppol(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let size = crate::auth::page_size(req, 10, 10, 100)?;
    let offset = page_offset(req)?;
    let st = inner.state();
    let mut items: Vec<&PeppolProvider> = st.certs.peppol.iter().collect();
    items.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    let page: Vec<Value> = items
        .iter()
        .skip(offset * size)
        .take(size)
        .map(|p| json!({"id": p.id, "name": p.name, "dateCreated": rfc3339(p.created)}))
        .collect();
    Ok(json_ok(
        StatusCode::OK,
        &json!({"peppolProviders": page, "hasMore": (offset + 1) * size < items.len()}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_names_and_serials() {
        assert!(valid_certificate_name("Mój certyfikat_1-a"));
        assert!(!valid_certificate_name("abc"));
        assert!(!valid_certificate_name("bad/name"));
        assert!(valid_serial("01F20A5D352AE590"));
        assert!(!valid_serial("01f20a5d352ae590"));
        assert!(!valid_serial("01F20A5D352AE5"));
    }

    #[test]
    fn default_and_overridden_limits() {
        let mut s = CertState::default();
        let nip: Ident = ("Nip".into(), "5265877635".into());
        let pesel: Ident = ("Pesel".into(), "90010112345".into());
        assert_eq!(s.limits_for(&nip), (300, 100));
        assert_eq!(s.limits_for(&pesel), (12, 6));
        s.subject_limits.insert(nip.clone(), (None, Some(1)));
        assert_eq!(s.limits_for(&nip), (300, 1));
    }

    #[test]
    fn ca_is_created_once_and_is_a_ca() {
        let mut s = CertState::default();
        let now = OffsetDateTime::now_utc();
        let a = s.ca(now).unwrap();
        let b = s.ca(now).unwrap();
        assert_eq!(a.cert.der(), b.cert.der());
        assert!(a.cert.is_self_issued());
    }
}
