//! One async method per KSeF operation (83 in spec 2.7.0), driven by the operation catalogue
//! `ksef_model::operations`.
//!
//! Each row of the table below names the method, its [`OperationId`], the token it takes, its
//! path parameters, query struct, continuation token, body and response kind. Method, path,
//! success status, rate limits and retry class come from the catalogue at run time, and the
//! unit tests check every row against the catalogue (token kind, body and response schema,
//! path parameters, query, continuation) and the spec file against the rows, so a row cannot
//! drift from the spec unnoticed.

use bytes::Bytes;
use ksef_model::api;
use ksef_model::ids::{KsefNumber, ReferenceNumber};
use ksef_model::operations::{self as ops, OperationId};

use crate::call::{bearer, decode_json, empty, json_body, xml};
use crate::error::Result;
use crate::token::{AccessOrRefresh, AccessToken, AuthenticationToken, Bearer, RefreshToken};
use crate::transport::{Body, Call, Endpoint, Response, Transport, XmlDocument};

/// Facts about one generated method, emitted by the table (for the coverage tests).
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct MethodInfo {
    pub id: OperationId,
    pub method: &'static str,
    pub token: &'static str,
    pub path_params: &'static [&'static str],
    pub query: &'static str,
    pub continuation: bool,
    pub body: &'static str,
    pub response: &'static str,
}

macro_rules! response_type {
    (json ($t:ty)) => {
        $t
    };
    (empty) => {
        ()
    };
    (xml) => {
        XmlDocument
    };
}

macro_rules! decode {
    (json, $name:expr, $raw:expr) => {
        decode_json($name, $raw)
    };
    (empty, $name:expr, $raw:expr) => {
        Ok(empty($raw))
    };
    (xml, $name:expr, $raw:expr) => {
        xml($name, $raw)
    };
}

macro_rules! body_of {
    ($name:expr;) => {
        Body::None
    };
    ($name:expr; json $b:ident) => {
        json_body($name, $b)?
    };
    ($name:expr; xml $b:ident) => {
        Body::Xml($b.into())
    };
}

macro_rules! query_pairs {
    ($query:ident;) => {
        Vec::new()
    };
    ($query:ident; $q:ty) => {
        <$q>::to_query_pairs($query)
    };
}

macro_rules! operations {
    ($(
        $(#[$doc:meta])*
        $name:ident = $id:ident {
            token: [$($tok:ident : $tokty:ty)?],
            path: [$($p:ident : $pty:ty),*],
            query: [$($q:ty)?],
            continuation: [$($cont:ident)?],
            body: [$($bkind:ident $bname:ident : $bty:ty)?],
            response: $rkind:ident $(($rty:ty))?,
        }
    )*) => {
        /// One method per KSeF operation. Each returns the decoded body with any
        /// `X-System-Warning`s; errors are [`Error`](crate::Error)s.
        impl Transport {
            $(
                $(#[$doc])*
                pub async fn $name(
                    &self,
                    $( $tok: $tokty, )?
                    $( $p: $pty, )*
                    $( query: &$q, )?
                    $( $cont: Option<&str>, )?
                    $( $bname: $bty, )?
                ) -> Result<Response<response_type!($rkind $(($rty))?)>> {
                    let endpoint = endpoint(OperationId::$id);
                    let name = endpoint.name;
                    let bearer_value = None $( .or(bearer(name, Bearer::header_value(&$tok))?) )?;
                    let path_params: &[&str] = &[$( AsRef::<str>::as_ref($p) ),*];
                    let raw = self
                        .execute(Call {
                            endpoint,
                            path_params,
                            query: query_pairs!(query; $($q)?),
                            bearer: bearer_value,
                            continuation_token: None $( .or($cont) )?,
                            body: body_of!(name; $($bkind $bname)?),
                        })
                        .await?;
                    decode!($rkind, name, raw)
                }
            )*
        }

        /// Every generated method, in table order.
        #[cfg_attr(not(test), allow(dead_code))]
        pub(crate) const METHODS: &[MethodInfo] = &[
            $(
                MethodInfo {
                    id: OperationId::$id,
                    method: stringify!($name),
                    token: stringify!($($tokty)?),
                    path_params: &[$(stringify!($p)),*],
                    query: stringify!($($q)?),
                    continuation: !stringify!($($cont)?).is_empty(),
                    body: stringify!($($bkind $bty)?),
                    response: stringify!($rkind $($rty)?),
                },
            )*
        ];
    };
}

/// The pipeline's view of an operation, from the catalogue (computed once).
pub(crate) fn endpoint(id: OperationId) -> Endpoint {
    static TABLE: std::sync::OnceLock<Vec<Endpoint>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        ops::OPERATIONS
            .iter()
            .map(Endpoint::from_operation)
            .collect()
    });
    table
        .get(id as usize)
        .filter(|e| e.name == id.spec().name)
        .copied()
        .unwrap_or_else(|| Endpoint::from_operation(id.spec()))
}

operations! {
    /// Init authentication (get challenge).
    ///
    /// `POST /auth/challenge` → 200 (KSeF: „Inicjalizacja uwierzytelnienia”).
    /// Bearer: none; rate-limit group `Public`.
    auth_challenge = AuthChallenge {
        token: [],
        path: [],
        query: [],
        continuation: [],
        body: [],
        response: json(api::AuthenticationChallengeResponse),
    }
    /// Authenticate with XAdES-signed AuthTokenRequest (query verifyCertificateChain).
    ///
    /// `POST /auth/xades-signature` → 202 (KSeF: „Uwierzytelnienie z wykorzystaniem podpisu XAdES”).
    /// Bearer: none; rate-limit group `Public`.
    /// The body is the signed `AuthTokenRequest` XML, sent as these exact bytes.
    auth_xades_signature = AuthXadesSignature {
        token: [],
        path: [],
        query: [ops::AuthXadesSignatureQuery],
        continuation: [],
        body: [xml signed_xml: impl Into<Bytes>],
        response: json(api::AuthenticationInitResponse),
    }
    /// Authenticate with encrypted KSeF token.
    ///
    /// `POST /auth/ksef-token` → 202 (KSeF: „Uwierzytelnienie z wykorzystaniem tokena KSeF”).
    /// Bearer: none; rate-limit group `Public`.
    auth_ksef_token = AuthKsefToken {
        token: [],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::InitTokenAuthenticationRequest],
        response: json(api::AuthenticationInitResponse),
    }
    /// Get authentication status.
    ///
    /// `GET /auth/{referenceNumber}` → 200 (KSeF: „Pobranie statusu uwierzytelniania”).
    /// Bearer: the authentication-operation token; rate-limit group `Public`.
    auth_status = AuthStatus {
        token: [token: &AuthenticationToken],
        path: [reference_number: &ReferenceNumber],
        query: [],
        continuation: [],
        body: [],
        response: json(api::AuthenticationOperationStatusResponse),
    }
    /// Redeem access+refresh tokens (once).
    ///
    /// `POST /auth/token/redeem` → 200 (KSeF: „Pobranie tokenów dostępowych”).
    /// Bearer: the authentication-operation token; rate-limit group `Public`.
    redeem_tokens = RedeemTokens {
        token: [token: &AuthenticationToken],
        path: [],
        query: [],
        continuation: [],
        body: [],
        response: json(api::AuthenticationTokensResponse),
    }
    /// Refresh access token.
    ///
    /// `POST /auth/token/refresh` → 200 (KSeF: „Odświeżenie tokena dostępowego”).
    /// Bearer: the refresh token; rate-limit group `Public`.
    refresh_access_token = RefreshAccessToken {
        token: [token: &RefreshToken],
        path: [],
        query: [],
        continuation: [],
        body: [],
        response: json(api::AuthenticationTokenRefreshResponse),
    }
    /// List active auth sessions.
    ///
    /// `GET /auth/sessions` → 200 (KSeF: „Pobranie listy aktywnych sesji”).
    /// Bearer: the access token; rate-limit group `Other`.
    /// Pass the previous page's `continuationToken` as `continuation_token` (`None` for the first page).
    list_auth_sessions = ListAuthSessions {
        token: [token: &AccessToken],
        path: [],
        query: [ops::ListAuthSessionsQuery],
        continuation: [continuation_token],
        body: [],
        response: json(api::AuthenticationListResponse),
    }
    /// Revoke current auth session.
    ///
    /// `DELETE /auth/sessions/current` → 204 (KSeF: „Unieważnienie aktualnej sesji uwierzytelnienia”).
    /// Bearer: the access or the refresh token; rate-limit group `Other`.
    revoke_current_auth_session = RevokeCurrentAuthSession {
        token: [token: impl AccessOrRefresh],
        path: [],
        query: [],
        continuation: [],
        body: [],
        response: empty,
    }
    /// Revoke auth session by ref.
    ///
    /// `DELETE /auth/sessions/{referenceNumber}` → 204 (KSeF: „Unieważnienie sesji uwierzytelnienia”).
    /// Bearer: the access token; rate-limit group `Other`.
    revoke_auth_session = RevokeAuthSession {
        token: [token: &AccessToken],
        path: [reference_number: &ReferenceNumber],
        query: [],
        continuation: [],
        body: [],
        response: empty,
    }
    /// Get MF public-key certificates.
    ///
    /// `GET /security/public-key-certificates` → 200 (KSeF: „Pobranie certyfikatów”).
    /// Bearer: none; rate-limit group `Public`.
    public_key_certificates = PublicKeyCertificates {
        token: [],
        path: [],
        query: [],
        continuation: [],
        body: [],
        response: json(Vec<api::PublicKeyCertificate>),
    }
    /// Open online (interactive) session.
    ///
    /// `POST /sessions/online` → 201 (KSeF: „Otwarcie sesji interaktywnej”).
    /// Bearer: the access token; rate-limit group `OnlineSession`; permissions (any of): InvoiceWrite, PefInvoiceWrite, EnforcementOperations.
    open_online_session = OpenOnlineSession {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::OpenOnlineSessionRequest],
        response: json(api::OpenOnlineSessionResponse),
    }
    /// Send one encrypted invoice.
    ///
    /// `POST /sessions/online/{referenceNumber}/invoices` → 202 (KSeF: „Wysłanie faktury”).
    /// Bearer: the access token; rate-limit group `InvoiceSend`; permissions (any of): InvoiceWrite, PefInvoiceWrite, EnforcementOperations.
    send_invoice = SendInvoice {
        token: [token: &AccessToken],
        path: [reference_number: &ReferenceNumber],
        query: [],
        continuation: [],
        body: [json body: &api::SendInvoiceRequest],
        response: json(api::SendInvoiceResponse),
    }
    /// Close online session (starts session UPO).
    ///
    /// `POST /sessions/online/{referenceNumber}/close` → 204 (KSeF: „Zamknięcie sesji interaktywnej”).
    /// Bearer: the access token; rate-limit group `OnlineSession`; permissions (any of): InvoiceWrite, PefInvoiceWrite, EnforcementOperations.
    close_online_session = CloseOnlineSession {
        token: [token: &AccessToken],
        path: [reference_number: &ReferenceNumber],
        query: [],
        continuation: [],
        body: [],
        response: empty,
    }
    /// Open batch session (returns part upload URLs).
    ///
    /// `POST /sessions/batch` → 201 (KSeF: „Otwarcie sesji wsadowej”).
    /// Bearer: the access token; rate-limit group `BatchSession`; permissions (any of): InvoiceWrite, EnforcementOperations.
    open_batch_session = OpenBatchSession {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::OpenBatchSessionRequest],
        response: json(api::OpenBatchSessionResponse),
    }
    /// Close batch session (starts processing).
    ///
    /// `POST /sessions/batch/{referenceNumber}/close` → 204 (KSeF: „Zamknięcie sesji wsadowej”).
    /// Bearer: the access token; rate-limit group `BatchSession`; permissions (any of): InvoiceWrite, EnforcementOperations.
    close_batch_session = CloseBatchSession {
        token: [token: &AccessToken],
        path: [reference_number: &ReferenceNumber],
        query: [],
        continuation: [],
        body: [],
        response: empty,
    }
    /// List sessions (query sessionType required).
    ///
    /// `GET /sessions` → 200 (KSeF: „Pobranie listy sesji”).
    /// Bearer: the access token; rate-limit group `SessionList`; permissions (any of): InvoiceWrite, Introspection, EnforcementOperations.
    /// Pass the previous page's `continuationToken` as `continuation_token` (`None` for the first page).
    list_sessions = ListSessions {
        token: [token: &AccessToken],
        path: [],
        query: [ops::ListSessionsQuery],
        continuation: [continuation_token],
        body: [],
        response: json(api::SessionsQueryResponse),
    }
    /// Session status (+UPO pages when done).
    ///
    /// `GET /sessions/{referenceNumber}` → 200 (KSeF: „Pobranie statusu sesji”).
    /// Bearer: the access token; rate-limit group `SessionMisc`; permissions (any of): InvoiceWrite.
    session_status = SessionStatus {
        token: [token: &AccessToken],
        path: [reference_number: &ReferenceNumber],
        query: [],
        continuation: [],
        body: [],
        response: json(api::SessionStatusResponse),
    }
    /// List invoices of session + statuses.
    ///
    /// `GET /sessions/{referenceNumber}/invoices` → 200 (KSeF: „Pobranie faktur sesji”).
    /// Bearer: the access token; rate-limit group `SessionInvoiceList`; permissions (any of): InvoiceWrite.
    /// Pass the previous page's `continuationToken` as `continuation_token` (`None` for the first page).
    list_session_invoices = ListSessionInvoices {
        token: [token: &AccessToken],
        path: [reference_number: &ReferenceNumber],
        query: [ops::ListSessionInvoicesQuery],
        continuation: [continuation_token],
        body: [],
        response: json(api::SessionInvoicesResponse),
    }
    /// Invoice status in session.
    ///
    /// `GET /sessions/{referenceNumber}/invoices/{invoiceReferenceNumber}` → 200 (KSeF: „Pobranie statusu faktury z sesji”).
    /// Bearer: the access token; rate-limit group `InvoiceStatus`; permissions (any of): InvoiceWrite.
    session_invoice_status = SessionInvoiceStatus {
        token: [token: &AccessToken],
        path: [reference_number: &ReferenceNumber, invoice_reference_number: &ReferenceNumber],
        query: [],
        continuation: [],
        body: [],
        response: json(api::SessionInvoiceStatusResponse),
    }
    /// List failed invoices of session.
    ///
    /// `GET /sessions/{referenceNumber}/invoices/failed` → 200 (KSeF: „Pobranie niepoprawnie przetworzonych faktur sesji”).
    /// Bearer: the access token; rate-limit group `SessionInvoiceList`; permissions (any of): InvoiceWrite.
    /// Pass the previous page's `continuationToken` as `continuation_token` (`None` for the first page).
    list_failed_session_invoices = ListFailedSessionInvoices {
        token: [token: &AccessToken],
        path: [reference_number: &ReferenceNumber],
        query: [ops::ListFailedSessionInvoicesQuery],
        continuation: [continuation_token],
        body: [],
        response: json(api::SessionInvoicesResponse),
    }
    /// Invoice UPO by KSeF number (XML).
    ///
    /// `GET /sessions/{referenceNumber}/invoices/ksef/{ksefNumber}/upo` → 200 (KSeF: „Pobranie UPO faktury z sesji na podstawie numeru KSeF”).
    /// Bearer: the access token; rate-limit group `SessionMisc`; permissions (any of): InvoiceWrite.
    /// Returns the XML as received; `x-ms-meta-hash` is verified when present.
    invoice_upo_by_ksef_number = InvoiceUpoByKsefNumber {
        token: [token: &AccessToken],
        path: [reference_number: &ReferenceNumber, ksef_number: &KsefNumber],
        query: [],
        continuation: [],
        body: [],
        response: xml,
    }
    /// Invoice UPO by invoice ref (XML).
    ///
    /// `GET /sessions/{referenceNumber}/invoices/{invoiceReferenceNumber}/upo` → 200 (KSeF: „Pobranie UPO faktury z sesji na podstawie numeru referencyjnego faktury”).
    /// Bearer: the access token; rate-limit group `SessionMisc`; permissions (any of): InvoiceWrite.
    /// Returns the XML as received; `x-ms-meta-hash` is verified when present.
    invoice_upo_by_reference = InvoiceUpoByReference {
        token: [token: &AccessToken],
        path: [reference_number: &ReferenceNumber, invoice_reference_number: &ReferenceNumber],
        query: [],
        continuation: [],
        body: [],
        response: xml,
    }
    /// Session (collective) UPO page (XML).
    ///
    /// `GET /sessions/{referenceNumber}/upo/{upoReferenceNumber}` → 200 (KSeF: „Pobranie UPO dla sesji”).
    /// Bearer: the access token; rate-limit group `SessionMisc`; permissions (any of): InvoiceWrite.
    /// Returns the XML as received; `x-ms-meta-hash` is verified when present.
    session_upo = SessionUpo {
        token: [token: &AccessToken],
        path: [reference_number: &ReferenceNumber, upo_reference_number: &ReferenceNumber],
        query: [],
        continuation: [],
        body: [],
        response: xml,
    }
    /// Download invoice XML by KSeF number.
    ///
    /// `GET /invoices/ksef/{ksefNumber}` → 200 (KSeF: „Pobranie faktury po numerze KSeF”).
    /// Bearer: the access token; rate-limit group `InvoiceDownload`; permissions (any of): InvoiceRead.
    /// Returns the XML as received; `x-ms-meta-hash` is verified when present.
    download_invoice = DownloadInvoice {
        token: [token: &AccessToken],
        path: [ksef_number: &KsefNumber],
        query: [],
        continuation: [],
        body: [],
        response: xml,
    }
    /// Query invoice metadata (sync, paged).
    ///
    /// `POST /invoices/query/metadata` → 200 (KSeF: „Pobranie listy metadanych faktur”).
    /// Bearer: the access token; rate-limit group `InvoiceMetadata`; permissions (any of): InvoiceRead.
    query_invoice_metadata = QueryInvoiceMetadata {
        token: [token: &AccessToken],
        path: [],
        query: [ops::QueryInvoiceMetadataQuery],
        continuation: [],
        body: [json body: &api::InvoiceQueryFilters],
        response: json(api::QueryInvoicesMetadataResponse),
    }
    /// Start encrypted invoice export.
    ///
    /// `POST /invoices/exports` → 201 (KSeF: „Eksport paczki faktur”).
    /// Bearer: the access token; rate-limit group `InvoiceExport`; permissions (any of): InvoiceRead.
    start_invoice_export = StartInvoiceExport {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::InvoiceExportRequest],
        response: json(api::ExportInvoicesResponse),
    }
    /// Export status (+part download URLs).
    ///
    /// `GET /invoices/exports/{referenceNumber}` → 200 (KSeF: „Pobranie statusu eksportu paczki faktur”).
    /// Bearer: the access token; rate-limit group `InvoiceExportStatus`; permissions (any of): InvoiceRead.
    invoice_export_status = InvoiceExportStatus {
        token: [token: &AccessToken],
        path: [reference_number: &ReferenceNumber],
        query: [],
        continuation: [],
        body: [],
        response: json(api::InvoiceExportStatusResponse),
    }
    /// Grant persons permissions to work in KSeF.
    ///
    /// `POST /permissions/persons/grants` → 202 (KSeF: „Nadanie osobom fizycznym uprawnień do pracy w KSeF”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): CredentialsManage.
    grant_person_permissions = GrantPersonPermissions {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::PersonPermissionsGrantRequest],
        response: json(api::PermissionsOperationResponse),
    }
    /// Grant entity invoice permissions (canDelegate).
    ///
    /// `POST /permissions/entities/grants` → 202 (KSeF: „Nadanie podmiotom uprawnień do obsługi faktur”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): CredentialsManage.
    grant_entity_permissions = GrantEntityPermissions {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::EntityPermissionsGrantRequest],
        response: json(api::PermissionsOperationResponse),
    }
    /// Grant entity authorization (SelfInvoicing/RR/TaxRep/Pef).
    ///
    /// `POST /permissions/authorizations/grants` → 202 (KSeF: „Nadanie uprawnień podmiotowych”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): CredentialsManage.
    grant_authorization_permissions = GrantAuthorizationPermissions {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::EntityAuthorizationPermissionsGrantRequest],
        response: json(api::PermissionsOperationResponse),
    }
    /// Grant permission indirectly (selective/general).
    ///
    /// `POST /permissions/indirect/grants` → 202 (KSeF: „Nadanie uprawnień w sposób pośredni”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): CredentialsManage.
    grant_indirect_permissions = GrantIndirectPermissions {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::IndirectPermissionsGrantRequest],
        response: json(api::PermissionsOperationResponse),
    }
    /// Grant subunit administrator.
    ///
    /// `POST /permissions/subunits/grants` → 202 (KSeF: „Nadanie uprawnień administratora podmiotu podrzędnego”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): SubunitManage.
    grant_subunit_permissions = GrantSubunitPermissions {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::SubunitPermissionsGrantRequest],
        response: json(api::PermissionsOperationResponse),
    }
    /// Grant EU entity administrator (creates NipVatUe ctx).
    ///
    /// `POST /permissions/eu-entities/administration/grants` → 202 (KSeF: „Nadanie uprawnień administratora podmiotu unijnego”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): CredentialsManage.
    grant_eu_entity_administration_permissions = GrantEuEntityAdministrationPermissions {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::EuEntityAdministrationPermissionsGrantRequest],
        response: json(api::PermissionsOperationResponse),
    }
    /// Grant EU entity representative.
    ///
    /// `POST /permissions/eu-entities/grants` → 202 (KSeF: „Nadanie uprawnień reprezentanta podmiotu unijnego”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): VatUeManage.
    grant_eu_entity_representative_permissions = GrantEuEntityRepresentativePermissions {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::EuEntityPermissionsGrantRequest],
        response: json(api::PermissionsOperationResponse),
    }
    /// Revoke permission.
    ///
    /// `DELETE /permissions/common/grants/{permissionId}` → 202 (KSeF: „Odebranie uprawnień”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): CredentialsManage, VatUeManage, SubunitManage.
    revoke_common_permission = RevokeCommonPermission {
        token: [token: &AccessToken],
        path: [permission_id: &str],
        query: [],
        continuation: [],
        body: [],
        response: json(api::PermissionsOperationResponse),
    }
    /// Revoke entity authorization.
    ///
    /// `DELETE /permissions/authorizations/grants/{permissionId}` → 202 (KSeF: „Odebranie uprawnień podmiotowych”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): CredentialsManage.
    revoke_authorization_permission = RevokeAuthorizationPermission {
        token: [token: &AccessToken],
        path: [permission_id: &str],
        query: [],
        continuation: [],
        body: [],
        response: json(api::PermissionsOperationResponse),
    }
    /// Permission operation status.
    ///
    /// `GET /permissions/operations/{referenceNumber}` → 200 (KSeF: „Pobranie statusu operacji”).
    /// Bearer: the access token; rate-limit group `Other`.
    permission_operation_status = PermissionOperationStatus {
        token: [token: &AccessToken],
        path: [reference_number: &ReferenceNumber],
        query: [],
        continuation: [],
        body: [],
        response: json(api::PermissionsOperationStatusResponse),
    }
    /// Check consent for invoices with attachments.
    ///
    /// `GET /permissions/attachments/status` → 200 (KSeF: „Sprawdzenie statusu zgody na wystawianie faktur z załącznikiem”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): CredentialsManage, CredentialsRead.
    attachment_permission_status = AttachmentPermissionStatus {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [],
        response: json(api::CheckAttachmentPermissionStatusResponse),
    }
    /// Query own permissions.
    ///
    /// `POST /permissions/query/personal/grants` → 200 (KSeF: „Pobranie listy własnych uprawnień”).
    /// Bearer: the access token; rate-limit group `Other`.
    query_personal_permissions = QueryPersonalPermissions {
        token: [token: &AccessToken],
        path: [],
        query: [ops::QueryPersonalPermissionsQuery],
        continuation: [],
        body: [json body: &api::PersonalPermissionsQueryRequest],
        response: json(api::QueryPersonalPermissionsResponse),
    }
    /// Query person/entity work permissions.
    ///
    /// `POST /permissions/query/persons/grants` → 200 (KSeF: „Pobranie listy uprawnień do pracy w KSeF nadanych osobom fizycznym lub podmiotom”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): CredentialsManage, CredentialsRead, SubunitManage.
    query_person_permissions = QueryPersonPermissions {
        token: [token: &AccessToken],
        path: [],
        query: [ops::QueryPersonPermissionsQuery],
        continuation: [],
        body: [json body: &api::PersonPermissionsQueryRequest],
        response: json(api::QueryPersonPermissionsResponse),
    }
    /// Query subunit admin permissions.
    ///
    /// `POST /permissions/query/subunits/grants` → 200 (KSeF: „Pobranie listy uprawnień administratorów jednostek i podmiotów podrzędnych”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): CredentialsManage, CredentialsRead, SubunitManage.
    query_subunit_permissions = QuerySubunitPermissions {
        token: [token: &AccessToken],
        path: [],
        query: [ops::QuerySubunitPermissionsQuery],
        continuation: [],
        body: [json body: &api::SubunitPermissionsQueryRequest],
        response: json(api::QuerySubunitPermissionsResponse),
    }
    /// Query invoice permissions received by current ctx.
    ///
    /// `POST /permissions/query/entities/grants` → 200 (KSeF: „Pobranie listy uprawnień do obsługi faktur w bieżącym kontekście”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): CredentialsManage, CredentialsRead.
    query_entity_permissions = QueryEntityPermissions {
        token: [token: &AccessToken],
        path: [],
        query: [ops::QueryEntityPermissionsQuery],
        continuation: [],
        body: [json body: &api::EntityPermissionsQueryRequest],
        response: json(api::QueryEntityPermissionsResponse),
    }
    /// List roles of current entity.
    ///
    /// `GET /permissions/query/entities/roles` → 200 (KSeF: „Pobranie listy ról podmiotu”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): CredentialsManage, CredentialsRead.
    query_entity_roles = QueryEntityRoles {
        token: [token: &AccessToken],
        path: [],
        query: [ops::QueryEntityRolesQuery],
        continuation: [],
        body: [],
        response: json(api::QueryEntityRolesResponse),
    }
    /// List subordinate entities.
    ///
    /// `POST /permissions/query/subordinate-entities/roles` → 200 (KSeF: „Pobranie listy podmiotów podrzędnych”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): CredentialsManage, CredentialsRead, SubunitManage.
    query_subordinate_entity_roles = QuerySubordinateEntityRoles {
        token: [token: &AccessToken],
        path: [],
        query: [ops::QuerySubordinateEntityRolesQuery],
        continuation: [],
        body: [json body: &api::SubordinateEntityRolesQueryRequest],
        response: json(api::QuerySubordinateEntityRolesResponse),
    }
    /// Query entity authorizations (Granted/Received).
    ///
    /// `POST /permissions/query/authorizations/grants` → 200 (KSeF: „Pobranie listy uprawnień podmiotowych do obsługi faktur”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): CredentialsManage, CredentialsRead, PefInvoiceWrite.
    query_authorization_permissions = QueryAuthorizationPermissions {
        token: [token: &AccessToken],
        path: [],
        query: [ops::QueryAuthorizationPermissionsQuery],
        continuation: [],
        body: [json body: &api::EntityAuthorizationPermissionsQueryRequest],
        response: json(api::QueryEntityAuthorizationPermissionsResponse),
    }
    /// Query EU entity admins/representatives.
    ///
    /// `POST /permissions/query/eu-entities/grants` → 200 (KSeF: „Pobranie listy uprawnień administratorów lub reprezentantów podmiotów unijnych uprawnionych do samofakturowania”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): CredentialsManage, CredentialsRead, VatUeManage.
    query_eu_entity_permissions = QueryEuEntityPermissions {
        token: [token: &AccessToken],
        path: [],
        query: [ops::QueryEuEntityPermissionsQuery],
        continuation: [],
        body: [json body: &api::EuEntityPermissionsQueryRequest],
        response: json(api::QueryEuEntityPermissionsResponse),
    }
    /// Generate KSeF token (returned once).
    ///
    /// `POST /tokens` → 202 (KSeF: „Wygenerowanie nowego tokena”).
    /// Bearer: the access token; rate-limit group `Other`.
    generate_token = GenerateToken {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::GenerateTokenRequest],
        response: json(api::GenerateTokenResponse),
    }
    /// List KSeF tokens.
    ///
    /// `GET /tokens` → 200 (KSeF: „Pobranie listy wygenerowanych tokenów”).
    /// Bearer: the access token; rate-limit group `Other`.
    /// Pass the previous page's `continuationToken` as `continuation_token` (`None` for the first page).
    list_tokens = ListTokens {
        token: [token: &AccessToken],
        path: [],
        query: [ops::ListTokensQuery],
        continuation: [continuation_token],
        body: [],
        response: json(api::QueryTokensResponse),
    }
    /// KSeF token status.
    ///
    /// `GET /tokens/{referenceNumber}` → 200 (KSeF: „Pobranie statusu tokena”).
    /// Bearer: the access token; rate-limit group `Other`.
    token_status = TokenStatus {
        token: [token: &AccessToken],
        path: [reference_number: &ReferenceNumber],
        query: [],
        continuation: [],
        body: [],
        response: json(api::TokenStatusResponse),
    }
    /// Revoke KSeF token.
    ///
    /// `DELETE /tokens/{referenceNumber}` → 204 (KSeF: „Unieważnienie tokena”).
    /// Bearer: the access token; rate-limit group `Other`.
    revoke_token = RevokeToken {
        token: [token: &AccessToken],
        path: [reference_number: &ReferenceNumber],
        query: [],
        continuation: [],
        body: [],
        response: empty,
    }
    /// KSeF certificate limits.
    ///
    /// `GET /certificates/limits` → 200 (KSeF: „Pobranie danych o limitach certyfikatów”).
    /// Bearer: the access token; rate-limit group `Other`.
    certificate_limits = CertificateLimits {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [],
        response: json(api::CertificateLimitsResponse),
    }
    /// Get DN data for CSR.
    ///
    /// `GET /certificates/enrollments/data` → 200 (KSeF: „Pobranie danych do wniosku certyfikacyjnego”).
    /// Bearer: the access token; rate-limit group `Other`.
    certificate_enrollment_data = CertificateEnrollmentData {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [],
        response: json(api::CertificateEnrollmentDataResponse),
    }
    /// Submit certificate enrollment (CSR).
    ///
    /// `POST /certificates/enrollments` → 202 (KSeF: „Wysyłka wniosku certyfikacyjnego”).
    /// Bearer: the access token; rate-limit group `Other`.
    enroll_certificate = EnrollCertificate {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::EnrollCertificateRequest],
        response: json(api::EnrollCertificateResponse),
    }
    /// Enrollment status.
    ///
    /// `GET /certificates/enrollments/{referenceNumber}` → 200 (KSeF: „Pobranie statusu przetwarzania wniosku certyfikacyjnego\n\nStatus wniosku jest dostępny przez 30 dni.”).
    /// Bearer: the access token; rate-limit group `Other`.
    certificate_enrollment_status = CertificateEnrollmentStatus {
        token: [token: &AccessToken],
        path: [reference_number: &ReferenceNumber],
        query: [],
        continuation: [],
        body: [],
        response: json(api::CertificateEnrollmentStatusResponse),
    }
    /// Retrieve certificates (DER b64) by serials (1–10).
    ///
    /// `POST /certificates/retrieve` → 200 (KSeF: „Pobranie certyfikatu lub listy certyfikatów”).
    /// Bearer: the access token; rate-limit group `Other`.
    retrieve_certificates = RetrieveCertificates {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::RetrieveCertificatesRequest],
        response: json(api::RetrieveCertificatesResponse),
    }
    /// Revoke KSeF certificate.
    ///
    /// `POST /certificates/{certificateSerialNumber}/revoke` → 204 (KSeF: „Unieważnienie certyfikatu”).
    /// Bearer: the access token; rate-limit group `Other`.
    revoke_certificate = RevokeCertificate {
        token: [token: &AccessToken],
        path: [certificate_serial_number: &str],
        query: [],
        continuation: [],
        body: [json body: &api::RevokeCertificateRequest],
        response: empty,
    }
    /// Query certificate metadata.
    ///
    /// `POST /certificates/query` → 200 (KSeF: „Pobranie listy metadanych certyfikatów”).
    /// Bearer: the access token; rate-limit group `Other`.
    query_certificates = QueryCertificates {
        token: [token: &AccessToken],
        path: [],
        query: [ops::QueryCertificatesQuery],
        continuation: [],
        body: [json body: &api::QueryCertificatesRequest],
        response: json(api::QueryCertificatesResponse),
    }
    /// Effective session limits of context.
    ///
    /// `GET /limits/context` → 200 (KSeF: „Pobranie limitów dla bieżącego kontekstu”).
    /// Bearer: the access token; rate-limit group `Other`.
    context_limits = ContextLimits {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [],
        response: json(api::EffectiveContextLimits),
    }
    /// Effective certificate limits of subject.
    ///
    /// `GET /limits/subject` → 200 (KSeF: „Pobranie limitów dla bieżącego podmiotu”).
    /// Bearer: the access token; rate-limit group `Other`.
    subject_limits = SubjectLimits {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [],
        response: json(api::EffectiveSubjectLimits),
    }
    /// Effective API rate limits.
    ///
    /// `GET /rate-limits` → 200 (KSeF: „Pobranie aktualnie obowiązujących limitów API”).
    /// Bearer: the access token; rate-limit group `Other`.
    rate_limits = RateLimits {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [],
        response: json(api::EffectiveApiRateLimits),
    }
    /// TEST: override session limits.
    ///
    /// `POST /testdata/limits/context/session` → 200 (KSeF: „Zmiana limitów sesji dla bieżącego kontekstu”).
    /// Bearer: the access token; rate-limit group `Other`.
    testdata_set_session_limits = TestdataSetSessionLimits {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::SetSessionLimitsRequest],
        response: empty,
    }
    /// TEST: reset session limits.
    ///
    /// `DELETE /testdata/limits/context/session` → 200 (KSeF: „Przywrócenie domyślnych wartości limitów sesji dla bieżącego kontekstu”).
    /// Bearer: the access token; rate-limit group `Other`.
    testdata_reset_session_limits = TestdataResetSessionLimits {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [],
        response: empty,
    }
    /// TEST: override certificate limits.
    ///
    /// `POST /testdata/limits/subject/certificate` → 200 (KSeF: „Zmiana limitów certyfikatów dla bieżącego podmiotu”).
    /// Bearer: the access token; rate-limit group `Other`.
    testdata_set_certificate_limits = TestdataSetCertificateLimits {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::SetSubjectLimitsRequest],
        response: empty,
    }
    /// TEST: reset certificate limits.
    ///
    /// `DELETE /testdata/limits/subject/certificate` → 200 (KSeF: „Przywrócenie domyślnych wartości limitów certyfikatów dla bieżącego podmiotu”).
    /// Bearer: the access token; rate-limit group `Other`.
    testdata_reset_certificate_limits = TestdataResetCertificateLimits {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [],
        response: empty,
    }
    /// TEST: override API rate limits.
    ///
    /// `POST /testdata/rate-limits` → 200 (KSeF: „Zmiana limitów API dla bieżącego kontekstu”).
    /// Bearer: the access token; rate-limit group `Other`.
    testdata_set_rate_limits = TestdataSetRateLimits {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::SetRateLimitsRequest],
        response: empty,
    }
    /// TEST: reset API rate limits.
    ///
    /// `DELETE /testdata/rate-limits` → 200 (KSeF: „Przywrócenie domyślnych wartości limitów API dla bieżącego kontekstu”).
    /// Bearer: the access token; rate-limit group `Other`.
    testdata_reset_rate_limits = TestdataResetRateLimits {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [],
        response: empty,
    }
    /// TEST: set PRD rate-limit profile.
    ///
    /// `POST /testdata/rate-limits/production` → 200 (KSeF: „Zmiana limitów API dla bieżącego kontekstu na wartości produkcyjne”).
    /// Bearer: the access token; rate-limit group `Other`.
    testdata_set_production_rate_limits = TestdataSetProductionRateLimits {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [],
        response: empty,
    }
    /// TEST: create subject (VAT group/JST/enforcement) + subunits.
    ///
    /// `POST /testdata/subject` → 200 (KSeF: „Utworzenie podmiotu”).
    /// Bearer: none; rate-limit group `Public`.
    testdata_create_subject = TestdataCreateSubject {
        token: [],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::SubjectCreateRequest],
        response: empty,
    }
    /// TEST: remove subject.
    ///
    /// `POST /testdata/subject/remove` → 200 (KSeF: „Usunięcie podmiotu”).
    /// Bearer: none; rate-limit group `Public`.
    testdata_remove_subject = TestdataRemoveSubject {
        token: [],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::SubjectRemoveRequest],
        response: empty,
    }
    /// TEST: create person (NIP+PESEL link, owner; bailiff; deceased).
    ///
    /// `POST /testdata/person` → 200 (KSeF: „Utworzenie osoby fizycznej”).
    /// Bearer: none; rate-limit group `Public`.
    testdata_create_person = TestdataCreatePerson {
        token: [],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::PersonCreateRequest],
        response: empty,
    }
    /// TEST: remove person.
    ///
    /// `POST /testdata/person/remove` → 200 (KSeF: „Usunięcie osoby fizycznej”).
    /// Bearer: none; rate-limit group `Public`.
    testdata_remove_person = TestdataRemovePerson {
        token: [],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::PersonRemoveRequest],
        response: empty,
    }
    /// TEST: grant permissions (ZAW-FA simulation).
    ///
    /// `POST /testdata/permissions` → 200 (KSeF: „Nadanie uprawnień testowemu podmiotowi/osobie fizycznej”).
    /// Bearer: none; rate-limit group `Public`.
    testdata_grant_permissions = TestdataGrantPermissions {
        token: [],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::TestDataPermissionsGrantRequest],
        response: empty,
    }
    /// TEST: revoke permissions.
    ///
    /// `POST /testdata/permissions/revoke` → 200 (KSeF: „Odebranie uprawnień testowemu podmiotowi/osobie fizycznej”).
    /// Bearer: none; rate-limit group `Public`.
    testdata_revoke_permissions = TestdataRevokePermissions {
        token: [],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::TestDataPermissionsRevokeRequest],
        response: empty,
    }
    /// TEST: enable invoices with attachments for NIP.
    ///
    /// `POST /testdata/attachment` → 200 (KSeF: „Umożliwienie wysyłania faktur z załącznikiem”).
    /// Bearer: none; rate-limit group `Public`.
    testdata_enable_attachments = TestdataEnableAttachments {
        token: [],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::AttachmentPermissionGrantRequest],
        response: empty,
    }
    /// TEST: disable attachments.
    ///
    /// `POST /testdata/attachment/revoke` → 200 (KSeF: „Odebranie możliwości wysyłania faktur z załącznikiem”).
    /// Bearer: none; rate-limit group `Public`.
    testdata_revoke_attachments = TestdataRevokeAttachments {
        token: [],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::AttachmentPermissionRevokeRequest],
        response: empty,
    }
    /// TEST: block authentication for context (→ auth status 480).
    ///
    /// `POST /testdata/context/block` → 200 (KSeF: „Zablokowanie kontekstu”).
    /// Bearer: none; rate-limit group `Other`.
    testdata_block_context = TestdataBlockContext {
        token: [],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::BlockContextAuthenticationRequest],
        response: empty,
    }
    /// TEST: unblock context.
    ///
    /// `POST /testdata/context/unblock` → 200 (KSeF: „Odblokowanie kontekstu”).
    /// Bearer: none; rate-limit group `Other`.
    testdata_unblock_context = TestdataUnblockContext {
        token: [],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::UnblockContextAuthenticationRequest],
        response: empty,
    }
    /// TEST: update a KSeF certificate (test data).
    ///
    /// `PUT /testdata/certificates/{serialNumber}` → 200 (KSeF: „Aktualizacja certyfikatu”).
    /// Bearer: the access token; rate-limit group `Other`.
    testdata_update_certificate = TestdataUpdateCertificate {
        token: [token: &AccessToken],
        path: [serial_number: &str],
        query: [],
        continuation: [],
        body: [json body: &api::TestDataUpdateCertificateRequest],
        response: empty,
    }
    /// List registered Peppol providers.
    ///
    /// `GET /peppol/query` → 200 (KSeF: „Pobranie listy dostawców usług Peppol”).
    /// Bearer: none; rate-limit group `Public`.
    query_peppol_providers = QueryPeppolProviders {
        token: [],
        path: [],
        query: [ops::QueryPeppolProvidersQuery],
        continuation: [],
        body: [],
        response: json(api::QueryPeppolProvidersResponse),
    }
    /// Create a collective identifier for a set of invoices.
    ///
    /// `POST /collective-identifiers` → 201 (KSeF: „Generowanie identyfikatora zbiorczego”).
    /// Bearer: the access token; rate-limit group `CollectiveIdentifier`; permissions (any of): InvoiceRead, InvoiceWrite, CollectiveIdentifierManage.
    create_collective_identifier = CreateCollectiveIdentifier {
        token: [token: &AccessToken],
        path: [],
        query: [],
        continuation: [],
        body: [json body: &api::GenerateCollectiveIdentifierRequest],
        response: json(api::GenerateCollectiveIdentifierResponse),
    }
    /// List collective identifiers of the current context.
    ///
    /// `POST /collective-identifiers/query` → 200 (KSeF: „Pobranie listy identyfikatorów zbiorczych powiązanych z kontekstem”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): InvoiceRead, InvoiceWrite, CollectiveIdentifierManage.
    /// Pass the previous page's `continuationToken` as `continuation_token` (`None` for the first page).
    query_collective_identifiers = QueryCollectiveIdentifiers {
        token: [token: &AccessToken],
        path: [],
        query: [ops::QueryCollectiveIdentifiersQuery],
        continuation: [continuation_token],
        body: [json body: &api::CollectiveIdentifiersQueryRequest],
        response: json(api::CollectiveIdentifiersQueryResponse),
    }
    /// List the invoices of a collective identifier.
    ///
    /// `GET /collective-identifiers/{collectiveIdentifierNumber}/invoices` → 200 (KSeF: „Pobranie listy faktur wchodzących w skład identyfikatora zbiorczego”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): InvoiceRead, InvoiceWrite, CollectiveIdentifierManage.
    /// Pass the previous page's `continuationToken` as `continuation_token` (`None` for the first page).
    collective_identifier_invoices = CollectiveIdentifierInvoices {
        token: [token: &AccessToken],
        path: [collective_identifier_number: &str],
        query: [ops::CollectiveIdentifierInvoicesQuery],
        continuation: [continuation_token],
        body: [],
        response: json(api::CollectiveIdentifierInvoicesQueryResponse),
    }
    /// List the collective identifiers an invoice belongs to.
    ///
    /// `GET /collective-identifiers/ksef/{ksefNumber}` → 200 (KSeF: „Pobranie listy identyfikatorów zbiorczych po numerze KSeF”).
    /// Bearer: the access token; rate-limit group `Other`; permissions (any of): InvoiceRead, InvoiceWrite, CollectiveIdentifierManage.
    /// Pass the previous page's `continuationToken` as `continuation_token` (`None` for the first page).
    collective_identifiers_by_ksef_number = CollectiveIdentifiersByKsefNumber {
        token: [token: &AccessToken],
        path: [ksef_number: &KsefNumber],
        query: [ops::CollectiveIdentifiersByKsefNumberQuery],
        continuation: [continuation_token],
        body: [],
        response: json(api::CollectiveIdentifiersByKsefNumberQueryResponse),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ksef_model::operations::{Bearer as B, Body as K, OPERATIONS};

    fn squash(s: &str) -> String {
        s.chars().filter(|c| !c.is_whitespace()).collect()
    }

    fn snake(camel: &str) -> String {
        let mut out = String::new();
        for c in camel.chars() {
            if c.is_ascii_uppercase() {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn every_operation_has_exactly_one_method() {
        assert_eq!(METHODS.len(), OPERATIONS.len());
        for op in OPERATIONS {
            let n = METHODS.iter().filter(|m| m.id == op.id).count();
            assert_eq!(n, 1, "{} has {n} methods", op.name);
        }
    }

    #[test]
    fn rows_match_the_catalogue() {
        for m in METHODS {
            let op = m.id.spec();
            let ctx = format!("{} ({} {})", m.method, op.method, op.path);
            assert_eq!(m.method, op.name, "{ctx}: method name");
            let token = match op.bearer {
                B::None => "",
                B::AuthenticationToken => "&AuthenticationToken",
                B::RefreshToken => "&RefreshToken",
                B::AccessToken => "&AccessToken",
                B::AccessOrRefreshToken => "implAccessOrRefresh",
            };
            assert_eq!(squash(m.token), token, "{ctx}: token");
            let params: Vec<String> = op.path_params.iter().map(|p| snake(p)).collect();
            assert_eq!(m.path_params, params.as_slice(), "{ctx}: path params");
            let query = if op.query_params.is_empty() {
                String::new()
            } else {
                format!("ops::{:?}Query", op.id)
            };
            assert_eq!(squash(m.query), query, "{ctx}: query");
            assert_eq!(m.continuation, op.continuation_token, "{ctx}: continuation");
            let body = match op.request_body {
                K::None => String::new(),
                K::Json(s) => format!("json&api::{s}"),
                K::Xml => "xmlimplInto<Bytes>".into(),
                other => panic!("{ctx}: unsupported request body {other:?}"),
            };
            assert_eq!(squash(m.body), body, "{ctx}: body");
            let response = match op.response_body {
                K::None => "empty".to_owned(),
                K::Json(s) => format!("jsonapi::{s}"),
                K::JsonArray(s) => format!("jsonVec<api::{s}>"),
                K::Xml => "xml".into(),
                other => panic!("{ctx}: unsupported response body {other:?}"),
            };
            assert_eq!(squash(m.response), response, "{ctx}: response");
        }
    }

    /// Walks spec/open-api.json: every method+path must have a generated call.
    #[test]
    fn every_spec_operation_has_a_call() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/open-api.json");
        let spec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut missing = Vec::new();
        let mut seen = 0;
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, _) in item.as_object().unwrap() {
                if !matches!(method.as_str(), "get" | "post" | "put" | "delete" | "patch") {
                    continue;
                }
                seen += 1;
                let found = METHODS.iter().any(|m| {
                    let op = m.id.spec();
                    op.path == path && op.method.as_str().eq_ignore_ascii_case(method)
                });
                if !found {
                    missing.push(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        assert!(missing.is_empty(), "no call for: {missing:?}");
        assert_eq!(seen, METHODS.len(), "spec operations vs methods");
    }

    #[test]
    fn endpoints_come_from_the_catalogue() {
        use crate::retry::RetryClass;
        for op in OPERATIONS {
            let e = endpoint(op.id);
            assert_eq!(
                (e.name, e.path, e.success_status),
                (op.name, op.path, op.success_status)
            );
            assert_eq!(e.method.as_str(), op.method.as_str());
        }
        let e = endpoint(OperationId::RedeemTokens);
        assert_eq!(e.retry_class, RetryClass::RedeemOnce);
        let e = endpoint(OperationId::SendInvoice);
        assert_eq!(e.retry_class, RetryClass::NotIdempotent);
        assert_eq!(e.rate_limit.map(|r| r.0), Some("invoiceSend"));
        let e = endpoint(OperationId::ListTokens);
        assert_eq!(e.retry_class, RetryClass::Idempotent);
        assert_eq!(
            e.rate_limit.map(|r| r.0),
            Some("list_tokens"),
            "other: own counter"
        );
        let e = endpoint(OperationId::AuthChallenge);
        assert_eq!(e.rate_limit.map(|r| r.0), Some("public"));
        assert_eq!(endpoint(OperationId::OpenOnlineSession).success_status, 201);
        assert_eq!(
            endpoint(OperationId::StartInvoiceExport).success_status,
            201
        );
        assert_eq!(endpoint(OperationId::SendInvoice).success_status, 202);
    }
}
