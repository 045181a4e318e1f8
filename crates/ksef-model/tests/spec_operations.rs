//! Checks the generated operation catalogue against `spec/open-api.json` and
//! `xtask/operations.tsv`, reading both directly (independently of the generator).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns: a panic is the failure report

use std::collections::BTreeSet;
use std::path::Path;

use ksef_model::operations::{
    Bearer, Body, ListSessionsQuery, ListTokensQuery, Method, OPERATIONS, OperationId,
    RateLimitGroup,
};
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn spec() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("spec/open-api.json")).unwrap())
        .unwrap()
}

fn schema_name(schema: &Value) -> Option<String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return Some(r.rsplit('/').next()?.to_string());
    }
    match schema
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([one]) => schema_name(one),
        _ => None,
    }
}

/// The body kind the spec describes for a `content` object.
fn expected_body(content: Option<&Value>) -> Body {
    let Some(content) = content.and_then(Value::as_object) else {
        return Body::None;
    };
    if let Some(json) = content.get("application/json") {
        let schema = &json["schema"];
        if let Some(name) = schema_name(schema) {
            return Body::Json(leak(name));
        }
        assert_eq!(schema["type"], "array", "unexpected JSON body {schema}");
        return Body::JsonArray(leak(schema_name(&schema["items"]).unwrap()));
    }
    assert!(content.contains_key("application/xml"), "{content:?}");
    Body::Xml
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The rate-limit group named in the last column of the 429 description's "Limity" row.
fn expected_group(op: &Value) -> RateLimitGroup {
    let Some(desc) = op
        .pointer("/responses/429/description")
        .and_then(Value::as_str)
    else {
        return RateLimitGroup::Other;
    };
    let row = desc.lines().find(|l| l.contains("Limity")).unwrap();
    let group = row
        .trim()
        .trim_end_matches('|')
        .rsplit('|')
        .next()
        .unwrap()
        .trim();
    match group {
        "-" => RateLimitGroup::Public,
        "onlineSession" => RateLimitGroup::OnlineSession,
        "batchSession" => RateLimitGroup::BatchSession,
        "invoiceSend" => RateLimitGroup::InvoiceSend,
        "invoiceStatus" => RateLimitGroup::InvoiceStatus,
        "sessionList" => RateLimitGroup::SessionList,
        "sessionInvoiceList" => RateLimitGroup::SessionInvoiceList,
        "sessionMisc" => RateLimitGroup::SessionMisc,
        "invoiceMetadata" => RateLimitGroup::InvoiceMetadata,
        "invoiceExport" => RateLimitGroup::InvoiceExport,
        "invoiceExportStatus" => RateLimitGroup::InvoiceExportStatus,
        "invoiceDownload" => RateLimitGroup::InvoiceDownload,
        "collectiveIdentifier" => RateLimitGroup::CollectiveIdentifier,
        "other" => RateLimitGroup::Other,
        g => panic!("unknown group {g:?}"),
    }
}

#[test]
fn catalogue_matches_spec_and_names() {
    let spec = spec();
    let tsv = std::fs::read_to_string(root().join("xtask/operations.tsv")).unwrap();
    let rows: Vec<Vec<&str>> = tsv
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').collect())
        .collect();

    let mut spec_ops = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            spec_ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    assert_eq!(spec_ops.len(), 83);
    assert_eq!(OPERATIONS.len(), 83);
    assert_eq!(rows.len(), 83);
    let catalogue: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|op| (op.method.as_str().to_string(), op.path.to_string()))
        .collect();
    assert_eq!(
        catalogue, spec_ops,
        "catalogue and spec list different operations"
    );

    for (op, row) in OPERATIONS.iter().zip(&rows) {
        let what = format!("{} {}", op.method, op.path);
        // Names and order from operations.tsv.
        assert_eq!(
            (op.method.as_str(), op.path, op.name),
            (row[0], row[1], row[2]),
            "{what}: differs from operations.tsv"
        );
        assert_eq!(op.area.as_str(), row[3], "{what}: area");
        let camel: String = op
            .name
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .unwrap()
                    .to_uppercase()
                    .chain(c)
                    .collect::<String>()
            })
            .collect();
        assert_eq!(format!("{:?}", op.id), camel, "{what}: OperationId");

        let sop = &spec["paths"][op.path][op.method.as_str().to_lowercase()];
        assert_eq!(
            op.summary,
            sop["summary"].as_str().unwrap(),
            "{what}: summary"
        );

        // Success status and bodies.
        let responses = sop["responses"].as_object().unwrap();
        let (status, success) = responses
            .iter()
            .filter(|(c, _)| c.starts_with('2'))
            .min_by_key(|(c, _)| c.as_str())
            .unwrap();
        assert_eq!(op.success_status.to_string(), *status, "{what}: status");
        assert_eq!(
            op.response_body,
            expected_body(success.get("content")),
            "{what}: response body"
        );
        assert_eq!(
            op.request_body,
            expected_body(sop.pointer("/requestBody/content")),
            "{what}: request body"
        );

        // Permissions.
        let perms: Vec<&str> = sop
            .get("x-required-permissions")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|v| v.as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(
            op.required_permissions,
            perms.as_slice(),
            "{what}: permissions"
        );

        // Rate limits: x-rate-limits, or the `other` defaults 10/30/120 where the spec has none.
        let rl = op.rate_limit;
        match sop.get("x-rate-limits") {
            Some(l) => {
                let get = |k: &str| {
                    l.get(k)
                        .map(|v| u32::try_from(v.as_u64().unwrap()).unwrap())
                };
                assert_eq!(
                    (rl.per_second, rl.per_minute, rl.per_hour),
                    (get("perSecond"), get("perMinute"), get("perHour")),
                    "{what}: limits"
                );
            }
            None => assert_eq!(
                (rl.per_second, rl.per_minute, rl.per_hour),
                (Some(10), Some(30), Some(120)),
                "{what}: default limits"
            ),
        }
        assert_eq!(rl.group, expected_group(sop), "{what}: group");

        // Bearer: none exactly when the spec has no security requirement.
        let secured = sop
            .get("security")
            .and_then(Value::as_array)
            .is_some_and(|s| !s.is_empty());
        assert_eq!(op.bearer != Bearer::None, secured, "{what}: bearer");

        // Parameters.
        let params: Vec<&Value> = sop
            .get("parameters")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let of = |kind: &str| -> Vec<&str> {
            params
                .iter()
                .filter(|p| p["in"] == kind)
                .map(|p| p["name"].as_str().unwrap())
                .collect()
        };
        let mut path_params = op.path_params.to_vec();
        path_params.sort_unstable();
        let mut spec_path = of("path");
        spec_path.sort_unstable();
        if spec_path.is_empty() {
            // Some spec paths omit path parameter declarations; the template is the truth.
            let in_template = op.path.matches('{').count();
            assert_eq!(op.path_params.len(), in_template, "{what}: path params");
        } else {
            assert_eq!(path_params, spec_path, "{what}: path params");
        }
        let query: Vec<(&str, bool, bool)> = params
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| {
                (
                    p["name"].as_str().unwrap(),
                    p.get("required") == Some(&Value::Bool(true)),
                    p.pointer("/schema/type") == Some(&Value::from("array")),
                )
            })
            .collect();
        let ours: Vec<(&str, bool, bool)> = op
            .query_params
            .iter()
            .map(|q| (q.name, q.required, q.is_array))
            .collect();
        assert_eq!(ours, query, "{what}: query params");
        assert_eq!(
            op.continuation_token,
            of("header").contains(&"x-continuation-token"),
            "{what}: continuation token"
        );
    }
}

#[test]
fn bearer_table_for_auth_operations() {
    use OperationId as O;
    let cases = [
        (O::AuthChallenge, Bearer::None),
        (O::AuthXadesSignature, Bearer::None),
        (O::AuthKsefToken, Bearer::None),
        (O::AuthStatus, Bearer::AuthenticationToken),
        (O::RedeemTokens, Bearer::AuthenticationToken),
        (O::RefreshAccessToken, Bearer::RefreshToken),
        (O::RevokeCurrentAuthSession, Bearer::AccessOrRefreshToken),
        (O::ListAuthSessions, Bearer::AccessToken),
        (O::PublicKeyCertificates, Bearer::None),
        (O::SendInvoice, Bearer::AccessToken),
    ];
    for (id, bearer) in cases {
        assert_eq!(id.spec().bearer, bearer, "{id}");
    }
}

#[test]
fn special_bodies_and_statuses() {
    use OperationId as O;
    assert_eq!(O::AuthXadesSignature.spec().request_body, Body::Xml);
    assert_eq!(O::AuthXadesSignature.spec().success_status, 202);
    assert_eq!(O::DownloadInvoice.spec().response_body, Body::Xml);
    assert_eq!(O::SessionUpo.spec().response_body, Body::Xml);
    assert_eq!(O::CloseOnlineSession.spec().success_status, 204);
    assert_eq!(O::CloseOnlineSession.spec().response_body, Body::None);
    assert_eq!(O::TestdataCreatePerson.spec().success_status, 200);
    assert_eq!(O::TestdataCreatePerson.spec().response_body, Body::None);
    assert_eq!(
        O::PublicKeyCertificates.spec().response_body,
        Body::JsonArray("PublicKeyCertificate")
    );
    assert_eq!(
        O::OpenOnlineSession.spec().request_body,
        Body::Json("OpenOnlineSessionRequest")
    );
    assert_eq!(O::OpenOnlineSession.spec().method, Method::Post);
    assert!(O::ListSessions.spec().continuation_token);
    assert_eq!(
        O::SendInvoice.spec().rate_limit.group,
        RateLimitGroup::InvoiceSend
    );
}

#[test]
fn query_pairs_repeat_arrays_and_format_date_times() {
    use ksef_model::api::{AuthenticationTokenStatus, CommonSessionStatus, SessionType};
    let q = ListSessionsQuery {
        page_size: Some(20),
        session_type: SessionType::Online,
        reference_number: None,
        date_created_from: Some("2025-07-11T12:23:56.0154302+02:00".parse().unwrap()),
        date_created_to: None,
        date_closed_from: None,
        date_closed_to: None,
        date_modified_from: None,
        date_modified_to: None,
        statuses: vec![
            CommonSessionStatus::InProgress,
            CommonSessionStatus::Succeeded,
        ],
    };
    assert_eq!(
        q.to_query_pairs(),
        vec![
            ("pageSize", "20".to_string()),
            ("sessionType", "Online".to_string()),
            (
                "dateCreatedFrom",
                "2025-07-11T12:23:56.0154302+02:00".to_string()
            ),
            ("statuses", "InProgress".to_string()),
            ("statuses", "Succeeded".to_string()),
        ]
    );
    let minimal = ListSessionsQuery::new(SessionType::Batch);
    assert_eq!(
        minimal.to_query_pairs(),
        vec![("sessionType", "Batch".to_string())]
    );
    let t = ListTokensQuery {
        status: vec![AuthenticationTokenStatus::Active],
        description: Some("ci".into()),
        ..Default::default()
    };
    assert_eq!(
        t.to_query_pairs(),
        vec![
            ("status", "Active".to_string()),
            ("description", "ci".to_string())
        ]
    );
}
