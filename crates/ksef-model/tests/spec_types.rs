//! Checks the generated API types against `spec/open-api.json`: every schema has a type, and every
//! `example` in the spec deserializes into its type and serializes back to an equal JSON value.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns: a panic is the failure report

use std::path::Path;

use ksef_model::api::{SCHEMA_NAMES, roundtrip_by_name};
use ksef_model::datetime::DateTime;
use serde_json::Value;

fn spec() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/open-api.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ref_name(schema: &Value) -> Option<&str> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next();
    }
    match schema
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([one]) => ref_name(one),
        _ => None,
    }
}

#[test]
fn every_schema_has_a_type() {
    let spec = spec();
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    assert_eq!(schemas.len(), 302, "the spec changed: regenerate");
    let mut names: Vec<&str> = schemas.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names, SCHEMA_NAMES,
        "SCHEMA_NAMES differs from the spec (both sorted)"
    );
    for name in names {
        // A type exists under this name iff the registry knows it; feed it a value of the wrong
        // shape and expect a deserialization error rather than `None`.
        assert!(
            roundtrip_by_name(name, Value::Array(vec![Value::Null; 7])).is_some(),
            "no type for schema {name}"
        );
    }
}

/// Normalizes what is legitimately lossy in a round trip:
/// - `null` and an absent key are the same for an `Option` field: null-valued keys are removed;
/// - date-time strings are compared as instants (our `Display` writes `Z` for `+00:00`, drops
///   trailing zero fraction digits, and adds the UTC offset to KSeF's offset-less timestamps).
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        Value::String(s) if s.len() >= 19 && s.as_bytes().get(10) == Some(&b'T') => {
            match s.parse::<DateTime>() {
                Ok(t) => Value::String(format!(
                    "instant:{}",
                    t.as_offset_date_time().unix_timestamp_nanos()
                )),
                Err(_) => v.clone(),
            }
        }
        other => other.clone(),
    }
}

/// The spec abbreviates long Base64 values with `...` (e.g. `"encryptedToken": "..."`). Such
/// placeholders are not data: they are replaced by valid Base64 (the text without the dots, cut to
/// whole 4-character groups) before the round trip, which is then compared with the substituted
/// example. Nothing else is rewritten.
fn fill_elisions(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), fill_elisions(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(fill_elisions).collect()),
        Value::String(s) if s.contains("...") => {
            let mut t = s.replace("...", "");
            t.truncate(t.len() - t.len() % 4);
            if t.is_empty() {
                t = "AAAA".into();
            }
            Value::String(t)
        }
        other => other.clone(),
    }
}

/// Spec examples that contradict the spec's own schema. Each must keep failing with the given
/// message fragment (so the test notices when KSeF fixes the example).
const KNOWN_INVALID: &[(&str, &str)] = &[
    // `PeppolId` is `^P[A-Z]{2}[0-9]{6}$` (9 characters); the example id is "P123456789".
    ("GET /peppol/query 200", "Peppol ID"),
];

fn check(type_name: &str, example: &Value, whence: &str, failures: &mut Vec<String>) {
    let example = &fill_elisions(example);
    if let Some((_, fragment)) = KNOWN_INVALID.iter().find(|(w, _)| whence.starts_with(w)) {
        match roundtrip_by_name(type_name, example.clone()) {
            Some(Err(e)) if e.to_string().contains(fragment) => {}
            other => failures.push(format!(
                "{whence}: listed as a known-invalid spec example but gave {other:?}"
            )),
        }
        return;
    }
    match roundtrip_by_name(type_name, example.clone()) {
        None => failures.push(format!("{whence}: no type {type_name}")),
        Some(Err(e)) => failures.push(format!("{whence}: {type_name} rejects the example: {e}")),
        Some(Ok(back)) => {
            if normalize(&back) != normalize(example) {
                failures.push(format!(
                    "{whence}: {type_name} round trip differs:\n  spec: {example}\n  back: {back}"
                ));
            }
        }
    }
}

/// Checks a media-type object's `example`/`examples` against its schema.
fn check_media(media: &Value, whence: &str, failures: &mut Vec<String>, count: &mut usize) {
    let Some(schema) = media.get("schema") else {
        return;
    };
    let mut examples: Vec<(String, &Value)> = Vec::new();
    if let Some(e) = media.get("example") {
        examples.push((whence.to_string(), e));
    }
    if let Some(map) = media.get("examples").and_then(Value::as_object) {
        for (k, e) in map {
            if let Some(v) = e.get("value") {
                examples.push((format!("{whence} example {k:?}"), v));
            }
        }
    }
    for (whence, example) in examples {
        if let Some(name) = ref_name(schema) {
            *count += 1;
            check(name, example, &whence, failures);
        } else if schema.get("type").and_then(Value::as_str) == Some("array") {
            let item = ref_name(&schema["items"]).unwrap();
            for (i, e) in example.as_array().unwrap().iter().enumerate() {
                *count += 1;
                check(item, e, &format!("{whence}[{i}]"), failures);
            }
        } else if schema.get("type").and_then(Value::as_str) == Some("string") {
            // XML bodies (signed AuthTokenRequest): strings, not JSON types.
            assert!(
                example.is_string(),
                "{whence}: non-string example of a string body"
            );
        } else {
            failures.push(format!(
                "{whence}: example of an unsupported schema {schema}"
            ));
        }
    }
}

#[test]
fn every_spec_example_round_trips() {
    let spec = spec();
    let mut failures = Vec::new();
    let mut count = 0;

    // Schema-level examples and property examples (whole values of a typed field).
    for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
        if let Some(example) = schema.get("example") {
            count += 1;
            check(name, example, &format!("schema {name}"), &mut failures);
        }
        for (prop, p) in schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let (Some(example), Some(target)) = (p.get("example"), ref_name(p)) {
                count += 1;
                check(target, example, &format!("{name}.{prop}"), &mut failures);
            }
        }
    }

    // Request and response media-type examples.
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let whence = format!("{} {path}", method.to_uppercase());
            if let Some(content) = op
                .pointer("/requestBody/content")
                .and_then(Value::as_object)
            {
                for (ct, media) in content {
                    check_media(
                        media,
                        &format!("{whence} request {ct}"),
                        &mut failures,
                        &mut count,
                    );
                }
            }
            for (status, resp) in op["responses"].as_object().unwrap() {
                for (ct, media) in resp
                    .get("content")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    check_media(
                        media,
                        &format!("{whence} {status} {ct}"),
                        &mut failures,
                        &mut count,
                    );
                }
            }
        }
    }
    assert!(
        count > 60,
        "only {count} examples found: is the walk broken?"
    );
    assert!(
        failures.is_empty(),
        "{} of {count} examples fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn unknown_enum_values_and_properties_survive() {
    let v: ksef_model::api::SessionType = serde_json::from_str("\"Hybrid\"").unwrap();
    assert!(v.is_unknown());
    assert_eq!(v.as_str(), "Hybrid");
    assert_eq!(serde_json::to_string(&v).unwrap(), "\"Hybrid\"");
    let known: ksef_model::api::SessionType = "Online".parse().unwrap();
    assert_eq!(known, ksef_model::api::SessionType::Online);
    // Unknown properties are ignored.
    let r: ksef_model::api::AuthenticationChallengeResponse = serde_json::from_value(
        serde_json::json!({"challenge": "20250514-CR-226FB7B000-3ACF9BE4C0-10",
            "timestamp": "2025-07-11T12:23:56.0154302+00:00", "timestampMs": 1752236636015_u64,
            "clientIp": "127.0.0.1", "somethingNew": {"x": 1}}),
    )
    .unwrap();
    assert_eq!(r.challenge.as_str(), "20250514-CR-226FB7B000-3ACF9BE4C0-10");
}
