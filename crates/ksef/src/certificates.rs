//! KSeF certificates (`client.certificates()`): limits, enrollment data, a CSR built with
//! ksef-crypto, enrollment, waiting for the certificate, retrieval, a paging query and
//! revocation; plus [`Certificates::obtain`], the whole flow in one call.
//!
//! A KSeF certificate of type `Authentication` signs XAdES logins like a qualified certificate;
//! an `Offline` one signs KOD II links ([`crate::qr`]). Enrollment needs a session opened with a
//! XAdES signature (not a KSeF token), and the CSR must carry exactly the subject KSeF returns
//! from [`Certificates::enrollment_data`] — [`csr_for`] builds that.

use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use ksef_crypto::cert::{Certificate, DistinguishedName};
use ksef_crypto::csr::CertificateRequest;
use ksef_crypto::keys::PrivateKey;
use ksef_crypto::signer::InMemorySigner;
use ksef_model::api::{self, CertificateRevocationReason, KsefCertificateType};
use ksef_model::ids::ReferenceNumber;
use ksef_model::operations::QueryCertificatesQuery;

use crate::auth::AuthenticatedClient;
use crate::error::{Error, Result, StatusFailure};

/// KSeF certificates of the authenticated subject. Obtained from
/// [`AuthenticatedClient::certificates`].
#[derive(Debug, Clone, Copy)]
pub struct Certificates<'a> {
    auth: &'a AuthenticatedClient,
}

impl AuthenticatedClient {
    /// KSeF certificates: limits, enrollment, retrieval, query, revocation.
    pub fn certificates(&self) -> Certificates<'_> {
        Certificates { auth: self }
    }
}

/// What to enroll: a name and a type for the CSR's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrollmentRequest {
    /// The certificate's own name (5–100 letters, digits, spaces, `_` or `-`; Polish letters
    /// allowed).
    pub name: String,
    /// `Authentication` (XAdES login) or `Offline` (KOD II).
    pub certificate_type: KsefCertificateType,
    /// Start of validity (default: when issued).
    pub valid_from: Option<ksef_model::DateTime>,
}

impl EnrollmentRequest {
    /// An enrollment of `certificate_type` named `name`, valid from when it is issued.
    pub fn new(name: impl Into<String>, certificate_type: KsefCertificateType) -> Self {
        Self {
            name: name.into(),
            certificate_type,
            valid_from: None,
        }
    }

    /// Checks the name as KSeF does (`^[a-zA-Z0-9_\- ąćęłńóśźżĄĆĘŁŃÓŚŹŻ]+$`, 5–100 characters),
    /// so a bad one is refused before any network call.
    pub fn validate(&self) -> Result<()> {
        let n = self.name.chars().count();
        let allowed = |c: char| c.is_ascii_alphanumeric() || "_- ąćęłńóśźżĄĆĘŁŃÓŚŹŻ".contains(c);
        if !(5..=100).contains(&n) || !self.name.chars().all(allowed) {
            return Err(Error::InvalidInput(format!(
                "certificate name {:?}: use 5 to 100 letters, digits, spaces, '_' or '-'",
                self.name
            )));
        }
        Ok(())
    }
}

/// An issued KSeF certificate (from `POST /certificates/retrieve`).
#[derive(Clone, Debug)]
pub struct KsefCertificate {
    /// The serial number, 16 uppercase hex digits (KOD II's `certSerial`).
    pub serial_number: String,
    /// The certificate's own name.
    pub name: String,
    /// `Authentication` or `Offline`.
    pub certificate_type: KsefCertificateType,
    /// The certificate.
    pub certificate: Certificate,
}

impl KsefCertificate {
    /// A signer for XAdES authentication with this certificate and its private key (checks that
    /// they match).
    pub fn signer(&self, key: PrivateKey) -> Result<InMemorySigner> {
        Ok(InMemorySigner::new(key, self.certificate.clone())?)
    }
}

/// The distinguished name of a CSR: exactly the attributes of the enrollment data.
pub fn distinguished_name(data: &api::CertificateEnrollmentDataResponse) -> DistinguishedName {
    DistinguishedName {
        common_name: data.common_name.clone(),
        country_name: data.country_name.clone(),
        given_name: data.given_name.clone(),
        surname: data.surname.clone(),
        serial_number: data.serial_number.clone(),
        unique_identifier: data.unique_identifier.clone(),
        organization_name: data.organization_name.clone(),
        organization_identifier: data.organization_identifier.clone(),
    }
}

/// Builds and signs the PKCS#10 CSR for `key` (RSA-2048 or P-256; KSeF recommends P-256) with the
/// subject KSeF requires. Sans-IO: usable without a client.
pub fn csr_for(
    data: &api::CertificateEnrollmentDataResponse,
    key: &PrivateKey,
) -> Result<CertificateRequest> {
    Ok(CertificateRequest::new(&distinguished_name(data), key)?)
}

impl Certificates<'_> {
    /// How many enrollments and active certificates the subject may still have
    /// (`GET /certificates/limits`).
    pub async fn limits(&self) -> Result<api::CertificateLimitsResponse> {
        let t = self.auth.client().transport();
        Ok(self
            .auth
            .call(|token| async move { t.certificate_limits(&token).await })
            .await?
            .into_value())
    }

    /// The subject the CSR must name (`GET /certificates/enrollments/data`; only after XAdES
    /// authentication — 25001 after KSeF-token authentication).
    pub async fn enrollment_data(&self) -> Result<api::CertificateEnrollmentDataResponse> {
        let t = self.auth.client().transport();
        Ok(self
            .auth
            .call(|token| async move { t.certificate_enrollment_data(&token).await })
            .await?
            .into_value())
    }

    /// Submits a CSR (`POST /certificates/enrollments` → 202); returns the enrollment's reference
    /// number. See [`Certificates::wait`].
    pub async fn enroll(
        &self,
        request: &EnrollmentRequest,
        csr: &CertificateRequest,
    ) -> Result<ReferenceNumber> {
        request.validate()?;
        let body = api::EnrollCertificateRequest {
            certificate_name: request.name.clone(),
            certificate_type: request.certificate_type.clone(),
            csr: ksef_model::Base64Bytes::new(csr.der().to_vec()),
            valid_from: request.valid_from,
        };
        let t = self.auth.client().transport();
        let body = &body;
        Ok(self
            .auth
            .call(|token| async move { t.enroll_certificate(&token, body).await })
            .await?
            .into_value()
            .reference_number)
    }

    /// The enrollment's status (`GET /certificates/enrollments/{referenceNumber}`).
    pub async fn enrollment_status(
        &self,
        reference: &ReferenceNumber,
    ) -> Result<api::CertificateEnrollmentStatusResponse> {
        let t = self.auth.client().transport();
        Ok(self
            .auth
            .call(|token| async move { t.certificate_enrollment_status(&token, reference).await })
            .await?
            .into_value())
    }

    /// Polls the enrollment until it is processed; the certificate's serial number, or
    /// [`Error::EnrollmentFailed`] with KSeF's status (e.g. 400 "Klucz publiczny został już
    /// certyfikowany przez inny podmiot.").
    pub async fn wait(&self, reference: &ReferenceNumber) -> Result<String> {
        let status = self
            .auth
            .client()
            .poll_options()
            .poll("the certificate enrollment", || async {
                let s = self.enrollment_status(reference).await?;
                Ok((s.status.code != 100).then_some(s))
            })
            .await?;
        match (status.status.code, status.certificate_serial_number) {
            (200, Some(serial)) => Ok(serial),
            (code, _) => Err(Error::EnrollmentFailed {
                reference: reference.to_string(),
                status: StatusFailure {
                    code,
                    description: status.status.description,
                    details: status.status.details.unwrap_or_default(),
                },
            }),
        }
    }

    /// Downloads certificates by serial number (`POST /certificates/retrieve`, 1–10 at a time;
    /// more are fetched in several calls). Unknown serial numbers are left out.
    pub async fn retrieve(&self, serial_numbers: &[&str]) -> Result<Vec<KsefCertificate>> {
        if serial_numbers.is_empty() {
            return Ok(Vec::new());
        }
        let t = self.auth.client().transport();
        let mut out = Vec::with_capacity(serial_numbers.len());
        for chunk in serial_numbers.chunks(10) {
            let body = api::RetrieveCertificatesRequest {
                certificate_serial_numbers: chunk.iter().map(|s| (*s).to_owned()).collect(),
            };
            let body = &body;
            let page = self
                .auth
                .call(|token| async move { t.retrieve_certificates(&token, body).await })
                .await?
                .into_value();
            for item in page.certificates {
                out.push(KsefCertificate {
                    certificate: Certificate::from_der(item.certificate.as_slice())?,
                    serial_number: item.certificate_serial_number,
                    name: item.certificate_name,
                    certificate_type: item.certificate_type,
                });
            }
        }
        Ok(out)
    }

    /// The whole enrollment in one call: enrollment data → CSR for `key` → enroll → wait →
    /// retrieve. Keep `key`: with the returned certificate it is your new credential.
    pub async fn obtain(
        &self,
        request: &EnrollmentRequest,
        key: &PrivateKey,
    ) -> Result<KsefCertificate> {
        request.validate()?;
        let data = self.enrollment_data().await?;
        let csr = csr_for(&data, key)?;
        let reference = self.enroll(request, &csr).await?;
        let serial = self.wait(&reference).await?;
        self.retrieve(&[serial.as_str()])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "KSeF issued certificate {serial} but did not return it; retrieve it later"
                ))
            })
    }

    /// Certificate metadata matching `filter`, page after page (`POST /certificates/query`,
    /// newest request first).
    pub fn query(
        &self,
        filter: api::QueryCertificatesRequest,
    ) -> impl Stream<Item = Result<api::CertificateListItem>> + Send + '_ {
        const PAGE: u32 = 50;
        stream::try_unfold(Some(0u32), move |state| {
            let filter = filter.clone();
            async move {
                let Some(offset) = state else {
                    return Ok(None);
                };
                let t = self.auth.client().transport();
                let q = QueryCertificatesQuery {
                    page_size: Some(PAGE),
                    page_offset: Some(offset),
                };
                let (q, filter) = (&q, &filter);
                let page = self
                    .auth
                    .call(|token| async move { t.query_certificates(&token, q, filter).await })
                    .await?
                    .into_value();
                let next = page.has_more.then_some(offset + 1);
                Ok::<_, Error>(Some((page.certificates, next)))
            }
        })
        .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    /// Revokes a certificate (`POST /certificates/{serial}/revoke` → 204). Not available after
    /// KSeF-token authentication (403); 25008 for an unknown serial number, 25009 when it is
    /// already revoked or expired.
    pub async fn revoke(
        &self,
        serial_number: &str,
        reason: Option<CertificateRevocationReason>,
    ) -> Result<()> {
        let body = api::RevokeCertificateRequest {
            revocation_reason: reason,
        };
        let t = self.auth.client().transport();
        let body = &body;
        self.auth
            .call(|token| async move { t.revoke_certificate(&token, serial_number, body).await })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_locally() {
        let ok = EnrollmentRequest::new("Mój certyfikat_1", KsefCertificateType::Offline);
        assert!(ok.validate().is_ok());
        for bad in ["abc", "zły/znak", &"x".repeat(101)] {
            let r = EnrollmentRequest::new(bad, KsefCertificateType::Authentication);
            assert!(matches!(r.validate(), Err(Error::InvalidInput(_))), "{bad}");
        }
    }

    #[test]
    fn csr_carries_exactly_the_enrollment_data() {
        let data: api::CertificateEnrollmentDataResponse = serde_json::from_value(
            serde_json::json!({"commonName": "Jan Kowalski", "countryName": "PL",
                               "givenName": "Jan", "surname": "Kowalski",
                               "serialNumber": "TINPL-5265877635"}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let key = PrivateKey::generate(ksef_crypto::keys::KeyKind::P256)
            .unwrap_or_else(|e| panic!("{e}"));
        let csr = csr_for(&data, &key).unwrap_or_else(|e| panic!("{e}"));
        csr.verify().unwrap_or_else(|e| panic!("{e}"));
        let mut attrs = csr.subject_attributes();
        attrs.sort();
        assert_eq!(
            attrs,
            [
                ("2.5.4.3", "Jan Kowalski"),
                ("2.5.4.4", "Kowalski"),
                ("2.5.4.42", "Jan"),
                ("2.5.4.5", "TINPL-5265877635"),
                ("2.5.4.6", "PL"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
    }
}
