//! `ksef cert enroll`: a KSeF certificate for the logged-in subject — enrollment data, a new key
//! and a CSR with exactly that subject, enrollment, wait, retrieve, write certificate and key.

use ksef::EnrollmentRequest;
use ksef::crypto::keys::PrivateKey;
use ksef::model::api::KsefCertificateType;
use serde_json::json;

use crate::Global;
use crate::cert_cmd::{EnrollArgs, EnrollType};
use crate::error::{CliError, sdk};
use crate::send_cmd::with_login;

/// Runs `ksef cert enroll` on the SDK's `certificates().obtain()`: enrollment data, a CSR with
/// exactly that subject for a new key, enrollment, wait, retrieve.
pub async fn enroll(args: EnrollArgs, g: Global) -> Result<(), CliError> {
    let json_out = g.json;
    let request = EnrollmentRequest::new(
        args.name.clone(),
        match args.kind {
            EnrollType::Authentication => KsefCertificateType::Authentication,
            EnrollType::Offline => KsefCertificateType::Offline,
        },
    );
    // A bad name is refused before a login is even opened.
    request
        .validate()
        .map_err(|e| CliError::invalid(format!("--name: {e}")))?;
    with_login(&g, async |li| {
        let key = PrivateKey::generate(args.algorithm.kind())
            .map_err(|e| CliError::failed(format!("cannot generate a key: {e}")))?;
        let issued = li
            .auth
            .certificates()
            .obtain(&request, &key)
            .await
            .map_err(sdk("enrolling the certificate"))?;
        let serial = issued.serial_number.clone();
        let cert = issued.certificate.clone();
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
