//! A minimal KSeF client over reqwest for the simulator's tests. The simulators they start check
//! every response against `spec/open-api.json` themselves (`checked`: `start_checked()`).

// Test helpers panic on failure by design; not every test binary uses every helper.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ksef_crypto::cert::Certificate;
use ksef_crypto::encryption::SessionKey;
use ksef_crypto::keys::PrivateKey;
use ksef_crypto::signer::InMemorySigner;
use ksef_model::auth_request::{AuthTokenRequest, ContextIdentifier, SubjectIdentifierType};
use ksef_model::operations::{Method, OperationId};
use serde_json::{Value, json};

#[path = "../checked/mod.rs"]
pub mod checked;
pub use checked::{CheckedSim, StartChecked};

pub const NIP: &str = "5265877635";
pub const OTHER_NIP: &str = "7010002139";
pub const PESEL: &str = "90010112345";

fn repo(path: &str) -> String {
    format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))
}

/// A fixture signer (self-signed, from fixtures/xades): `seal` = VATPL-5265877635 RSA seal,
/// otherwise the EC personal certificate TINPL-5265877635.
pub fn signer(name: &str) -> InMemorySigner {
    let dir = repo("fixtures/xades/");
    let key = PrivateKey::from_pem(
        &std::fs::read(format!("{dir}{name}.key.pem")).unwrap(),
        None,
    )
    .unwrap();
    let cert =
        Certificate::from_pem(&std::fs::read(format!("{dir}{name}.cert.pem")).unwrap()).unwrap();
    InMemorySigner::new(key, cert).unwrap()
}

pub enum Body {
    None,
    Json(Value),
    Xml(Vec<u8>),
    Raw(&'static str, Vec<u8>),
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }
    /// The first exception code (legacy or problem details).
    pub fn code(&self) -> i64 {
        self.json["exception"]["exceptionDetailList"][0]["exceptionCode"]
            .as_i64()
            .or_else(|| self.json["errors"][0]["code"].as_i64())
            .unwrap_or(-1)
    }
}

pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub headers: Vec<(&'static str, String)>,
    pub validated: Arc<AtomicUsize>,
}

impl Api {
    pub fn new(base: String) -> Self {
        Api {
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            headers: Vec::new(),
            validated: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub async fn call(
        &self,
        op: OperationId,
        params: &[&str],
        bearer: Option<&str>,
        body: Body,
    ) -> Resp {
        self.call_q(op, params, "", bearer, body, &[]).await
    }

    pub async fn call_q(
        &self,
        op: OperationId,
        params: &[&str],
        query: &str,
        bearer: Option<&str>,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Resp {
        let spec_op = op.spec();
        let mut path = spec_op.path.to_owned();
        for (name, value) in spec_op.path_params.iter().zip(params) {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        let url = format!("{}{path}{query}", self.base);
        let method = match spec_op.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut rb = self.http.request(method, &url);
        if let Some(b) = bearer {
            rb = rb.bearer_auth(b);
        }
        for (k, v) in &self.headers {
            rb = rb.header(*k, v);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        rb = match body {
            Body::None => rb,
            Body::Json(v) => rb
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&v).unwrap()),
            Body::Xml(x) => rb.header("content-type", "application/xml").body(x),
            Body::Raw(ct, b) => rb.header("content-type", ct).body(b),
        };
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await.unwrap().to_vec();
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        // The simulator itself checks every response against the spec (validate_responses);
        // the guard returned by `start_checked` fails the test on any mismatch.
        let json = if ct.contains("json") {
            serde_json::from_slice(&body).unwrap()
        } else {
            Value::Null
        };
        self.validated.fetch_add(1, Ordering::Relaxed);
        let expected = spec_op.success_status;
        if (200..300).contains(&status) {
            assert_eq!(status, expected, "{} {}", spec_op.method, spec_op.path);
        }
        Resp {
            status,
            headers,
            body,
            json,
        }
    }

    // ---- flows ----------------------------------------------------------------------------

    pub async fn testdata_person(&self, nip: &str, pesel: &str) {
        let r = self
            .call(
                OperationId::TestdataCreatePerson,
                &[],
                None,
                Body::Json(json!({"nip": nip, "pesel": pesel, "isBailiff": false, "description": "osoba testowa"})),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        assert!(r.body.is_empty());
    }

    pub async fn testdata_grant(&self, context_nip: &str, subject: (&str, &str), perms: &[&str]) {
        let permissions: Vec<Value> = perms
            .iter()
            .map(|p| json!({"permissionType": p, "description": "uprawnienie testowe"}))
            .collect();
        let r = self
            .call(
                OperationId::TestdataGrantPermissions,
                &[],
                None,
                Body::Json(json!({
                    "contextIdentifier": {"type": "Nip", "value": context_nip},
                    "authorizedIdentifier": {"type": subject.0, "value": subject.1},
                    "permissions": permissions,
                })),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.json);
    }

    pub async fn challenge(&self) -> Value {
        let r = self
            .call(OperationId::AuthChallenge, &[], None, Body::None)
            .await;
        assert_eq!(r.status, 200);
        r.json
    }

    /// Builds and signs an AuthTokenRequest for `context_nip` with a fresh challenge.
    pub async fn signed_request(
        &self,
        signer: &InMemorySigner,
        context_nip: &str,
        subject: SubjectIdentifierType,
    ) -> Vec<u8> {
        let ch = self.challenge().await;
        let req = AuthTokenRequest::builder(
            ch["challenge"].as_str().unwrap().parse().unwrap(),
            ContextIdentifier::Nip(context_nip.parse().unwrap()),
        )
        .subject_identifier_type(subject)
        .build()
        .unwrap();
        ksef_crypto::xades::sign(&req.to_xml().unwrap(), signer).unwrap()
    }

    /// Submits a signed request; returns (reference, operation token).
    pub async fn submit_xades(&self, xml: Vec<u8>, query: &str) -> Resp {
        self.call_q(
            OperationId::AuthXadesSignature,
            &[],
            query,
            None,
            Body::Xml(xml),
            &[],
        )
        .await
    }

    /// Polls `GET /auth/{ref}` until the status is not 100.
    pub async fn auth_status(&self, reference: &str, op_token: &str) -> Value {
        for _ in 0..500 {
            let r = self
                .call(
                    OperationId::AuthStatus,
                    &[reference],
                    Some(op_token),
                    Body::None,
                )
                .await;
            assert_eq!(r.status, 200, "{:?}", r.json);
            if r.json["status"]["code"] != 100 {
                return r.json;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("auth status stayed 100");
    }

    /// Full XAdES login; returns (access token, refresh token, auth reference).
    pub async fn login(
        &self,
        signer: &InMemorySigner,
        context_nip: &str,
    ) -> (String, String, String) {
        let xml = self
            .signed_request(
                signer,
                context_nip,
                SubjectIdentifierType::CertificateSubject,
            )
            .await;
        let r = self.submit_xades(xml, "").await;
        assert_eq!(r.status, 202, "{:?}", r.json);
        let reference = r.json["referenceNumber"].as_str().unwrap().to_owned();
        let op_token = r.json["authenticationToken"]["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let st = self.auth_status(&reference, &op_token).await;
        assert_eq!(st["status"]["code"], 200, "{st}");
        let r = self
            .call(OperationId::RedeemTokens, &[], Some(&op_token), Body::None)
            .await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        (
            r.json["accessToken"]["token"].as_str().unwrap().to_owned(),
            r.json["refreshToken"]["token"].as_str().unwrap().to_owned(),
            reference,
        )
    }

    /// The simulator's key for `usage`: (public key, publicKeyId).
    pub async fn mf_key(&self, usage: &str) -> (ksef_crypto::keys::PublicKey, String) {
        let r = self
            .call(OperationId::PublicKeyCertificates, &[], None, Body::None)
            .await;
        let item = r
            .json
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["usage"].as_array().unwrap().iter().any(|u| u == usage))
            .unwrap()
            .clone();
        let cert = Certificate::from_base64_der(item["certificate"].as_str().unwrap()).unwrap();
        (
            cert.public_key().unwrap(),
            item["publicKeyId"].as_str().unwrap().to_owned(),
        )
    }

    /// Opens an FA(3) online session; returns (reference, key).
    pub async fn open_session(&self, access: &str) -> (String, SessionKey) {
        let (pk, id) = self.mf_key("SymmetricKeyEncryption").await;
        let key = SessionKey::generate().unwrap();
        let info = key.encryption_info(&pk, Some(&id)).unwrap();
        let r = self
            .call(
                OperationId::OpenOnlineSession,
                &[],
                Some(access),
                Body::Json(json!({
                    "formCode": {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"},
                    "encryption": {
                        "encryptedSymmetricKey": info.encrypted_symmetric_key,
                        "initializationVector": info.initialization_vector,
                        "publicKeyId": info.public_key_id,
                    },
                })),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.json);
        (r.json["referenceNumber"].as_str().unwrap().to_owned(), key)
    }

    /// Encrypts and sends `xml`; returns the response.
    pub async fn send(&self, access: &str, session: &str, key: &SessionKey, xml: &[u8]) -> Resp {
        let e = key.encrypt_invoice(xml);
        self.call(
            OperationId::SendInvoice,
            &[session],
            Some(access),
            Body::Json(json!({
                "invoiceHash": e.invoice_hash.as_str(),
                "invoiceSize": e.invoice_size,
                "encryptedInvoiceHash": e.encrypted_invoice_hash.as_str(),
                "encryptedInvoiceSize": e.encrypted_invoice_size,
                "encryptedInvoiceContent": e.ciphertext_base64(),
            })),
        )
        .await
    }

    /// Polls an invoice's status until it leaves 100/150.
    pub async fn invoice_final(&self, access: &str, session: &str, invoice: &str) -> Value {
        // A deadline, not a count of polls: on a loaded runner a large batch takes seconds.
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            let r = self
                .call(
                    OperationId::SessionInvoiceStatus,
                    &[session, invoice],
                    Some(access),
                    Body::None,
                )
                .await;
            assert_eq!(r.status, 200, "{:?}", r.json);
            let code = r.json["status"]["code"].as_i64().unwrap();
            if code != 100 && code != 150 {
                return r.json;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("invoice stayed in progress");
    }

    /// Polls a session's status until it leaves 100/150/170.
    pub async fn session_final(&self, access: &str, session: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            let r = self
                .call(
                    OperationId::SessionStatus,
                    &[session],
                    Some(access),
                    Body::None,
                )
                .await;
            assert_eq!(r.status, 200, "{:?}", r.json);
            let code = r.json["status"]["code"].as_i64().unwrap();
            if ![100, 150, 170].contains(&code) {
                return r.json;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("session stayed in progress");
    }
}

/// The FA(3) template filled for `nip`, issued today, with number `number`.
pub fn invoice(nip: &str, number: &str) -> Vec<u8> {
    let today = time::OffsetDateTime::now_utc().date();
    std::fs::read_to_string(repo("fixtures/invoices/invoice-template-fa-3.xml"))
        .unwrap()
        .replace("#nip#", nip)
        .replace("#invoice_number#", number)
        .replace("<P_1>2025-09-01</P_1>", &format!("<P_1>{today}</P_1>"))
        .into_bytes()
}

/// A simulator on 127.0.0.1:0 with rate limits off (tests hammer endpoints) and a client for it.
/// With `KSEF_SIM_TEST_STATE_DIR=1` every such simulator keeps its state in a fresh temporary
/// state directory (the whole suite then runs through persistence).
pub async fn start() -> (CheckedSim, Api) {
    let mut builder = ksef_sim::Simulator::builder().rate_limits(false);
    if std::env::var("KSEF_SIM_TEST_STATE_DIR").is_ok_and(|v| v == "1") {
        static N: AtomicUsize = AtomicUsize::new(0);
        builder = builder.state_dir(std::env::temp_dir().join(format!(
            "ksef-sim-suite-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        )));
    }
    let sim = builder.start_checked().await.unwrap();
    let api = Api::new(sim.base_url());
    (sim, api)
}
