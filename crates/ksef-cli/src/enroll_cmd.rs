//! `ksef cert enroll`: a KSeF certificate for the logged-in subject — enrollment data, a new key
//! and a CSR with exactly that subject, enrollment, wait, retrieve, write certificate and key.

use std::time::{Duration, Instant};

use ksef::crypto::cert::{Certificate, DistinguishedName};
use ksef::crypto::csr::CertificateRequest;
use ksef::crypto::keys::PrivateKey;
use serde_json::{Value, json};

use crate::Global;
use crate::cert_cmd::{EnrollArgs, EnrollType};
use crate::error::{CliError, sdk};
use crate::send_cmd::with_login;

fn opt(v: &Value, key: &str) -> Option<String> {
    v[key].as_str().map(str::to_owned)
}

/// Runs `ksef cert enroll`.
pub async fn enroll(args: EnrollArgs, g: Global) -> Result<(), CliError> {
    let json_out = g.json;
    with_login(&g, async |li| {
        let a = &li.auth;
        let t = a.client().transport();
        let data = a
            .call(|tok| async move { t.certificate_enrollment_data(&tok).await })
            .await
            .map_err(sdk("fetching the enrollment data"))?
            .into_value();
        let d = serde_json::to_value(&data)
            .map_err(|e| CliError::failed(format!("enrollment data: {e}")))?;
        let dn = DistinguishedName {
            common_name: opt(&d, "commonName").unwrap_or_default(),
            country_name: opt(&d, "countryName").unwrap_or_default(),
            given_name: opt(&d, "givenName"),
            surname: opt(&d, "surname"),
            serial_number: opt(&d, "serialNumber"),
            unique_identifier: opt(&d, "uniqueIdentifier"),
            organization_name: opt(&d, "organizationName"),
            organization_identifier: opt(&d, "organizationIdentifier"),
        };
        let key = PrivateKey::generate(args.algorithm.kind())
            .map_err(|e| CliError::failed(format!("cannot generate a key: {e}")))?;
        let csr = CertificateRequest::new(&dn, &key)
            .map_err(|e| CliError::failed(format!("cannot make the CSR: {e}")))?;
        let body = serde_json::from_value(json!({
            "certificateName": args.name,
            "certificateType": match args.kind {
                EnrollType::Authentication => "Authentication",
                EnrollType::Offline => "Offline",
            },
            "csr": csr.to_base64(),
        }))
        .map_err(|e| CliError::invalid(format!("enrollment request: {e}")))?;
        let b = &body;
        let started = a
            .call(|tok| async move { t.enroll_certificate(&tok, b).await })
            .await
            .map_err(sdk("enrolling"))?
            .into_value();
        let reference = started.reference_number;
        let since = Instant::now();
        let mut delay = Duration::from_millis(200);
        let serial = loop {
            let r = &reference;
            let s = a
                .call(|tok| async move { t.certificate_enrollment_status(&tok, r).await })
                .await
                .map_err(sdk("checking the enrollment"))?
                .into_value();
            match s.status.code {
                100 => {}
                200 => {
                    let v = serde_json::to_value(&s.certificate_serial_number)
                        .map_err(|e| CliError::failed(format!("serial: {e}")))?;
                    break v.as_str().map(str::to_owned).ok_or_else(|| {
                        CliError::failed(format!("enrollment {reference} issued no serial number"))
                    })?;
                }
                code => {
                    let details = s.status.details.clone().unwrap_or_default().join("; ");
                    return Err(CliError::failed(format!(
                        "enrollment {reference} refused with status {code} ({}){}",
                        s.status.description,
                        if details.is_empty() {
                            String::new()
                        } else {
                            format!(": {details}")
                        }
                    )));
                }
            }
            if since.elapsed() > Duration::from_secs(300) {
                return Err(CliError::failed(format!(
                    "enrollment {reference} is not done after 5 minutes; try again later"
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        };
        let req = serde_json::from_value(json!({"certificateSerialNumbers": [serial]}))
            .map_err(|e| CliError::failed(format!("retrieve request: {e}")))?;
        let rq = &req;
        let got = a
            .call(|tok| async move { t.retrieve_certificates(&tok, rq).await })
            .await
            .map_err(sdk("retrieving the certificate"))?
            .into_value();
        let got = serde_json::to_value(&got)
            .map_err(|e| CliError::failed(format!("certificate: {e}")))?;
        let b64 = got["certificates"][0]["certificate"]
            .as_str()
            .ok_or_else(|| CliError::failed(format!("KSeF returned no certificate {serial}")))?;
        let cert = Certificate::from_base64_der(b64)
            .map_err(|e| CliError::failed(format!("the issued certificate: {e}")))?;
        key.check_matches(&cert)
            .map_err(|e| CliError::failed(format!("the issued certificate: {e}")))?;
        let pem = key
            .to_pkcs8_pem()
            .map_err(|e| CliError::failed(format!("cannot encode the key: {e}")))?;
        crate::profile::write_private(&args.key_out, pem.as_bytes())?;
        std::fs::write(&args.cert_out, cert.to_pem())
            .map_err(|e| CliError::io("write", &args.cert_out, e))?;
        if json_out {
            println!(
                "{}",
                json!({
                    "serialNumber": serial,
                    "certificate": args.cert_out.display().to_string(),
                    "key": args.key_out.display().to_string(),
                    "subject": cert.subject(),
                })
            );
        } else {
            println!("KSeF certificate {serial}: {}", args.cert_out.display());
            println!("private key: {} (mode 0600)", args.key_out.display());
        }
        Ok(())
    })
    .await
}
