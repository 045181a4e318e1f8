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

/// Valid sample values for the identifier schemas (validated types in `ksef_model::ids`).
fn id_sample(name: &str) -> Option<&'static str> {
    Some(match name {
        "Nip" => "5265877635",
        "Pesel" => "44051401359",
        "InternalId" => "5265877635-12345",
        "NipVatUe" => "5265877635-ATU12345678",
        "PeppolId" => "PPL123456",
        "KsefNumber" => "5265877635-20250626-010080DD2B5E-26",
        "ReferenceNumber" => "20250626-EE-2F20AD2000-242386DF86-52",
        "Sha256HashBase64" => "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        _ => return None,
    })
}

/// Builds an instance of `schema` from the spec alone: every property when `full`, else only
/// the required non-nullable ones.
fn synth(spec: &Value, schema: &Value, full: bool, depth: usize) -> Value {
    assert!(depth < 12, "schema recursion");
    if let Some(name) = ref_name(schema) {
        if let Some(sample) = id_sample(name) {
            return Value::from(sample);
        }
        return synth(spec, &spec["components"]["schemas"][name], full, depth + 1);
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values.last().unwrap().clone();
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => match schema.get("format").and_then(Value::as_str) {
            Some("date-time") => Value::from("2025-07-11T12:23:56.0154302Z"),
            Some("date") => Value::from("2025-07-11"),
            Some("byte") => Value::from("AAECAw=="),
            _ => Value::from("x"),
        },
        Some("integer") => Value::from(7),
        Some("number") => Value::from(12.5),
        Some("boolean") => Value::from(true),
        Some("array") => Value::Array(vec![synth(spec, &schema["items"], full, depth + 1)]),
        _ => {
            let mut out = serde_json::Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                let required: Vec<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                for (k, p) in props {
                    let nullable = p.get("nullable") == Some(&Value::Bool(true));
                    if full || (required.contains(&k.as_str()) && !nullable) {
                        out.insert(k.clone(), synth(spec, p, full, depth + 1));
                    }
                }
            } else if let Some(ap) = schema.get("additionalProperties") {
                out.insert("key".into(), synth(spec, ap, full, depth + 1));
            }
            Value::Object(out)
        }
    }
}

/// Every schema, not only those with examples: an instance with all properties and one with only
/// the required ones, both built from the spec, survive the round trip unchanged. This checks
/// wire names, required/optional and value types of every field of all 302 types.
#[test]
fn synthesized_instances_of_every_schema_round_trip() {
    let spec = spec();
    let mut failures = Vec::new();
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    for (name, schema) in schemas {
        for full in [true, false] {
            let instance = if let Some(sample) = id_sample(name) {
                Value::from(sample)
            } else if schema.get("type") == Some(&Value::from("integer")) {
                Value::from(30)
            } else {
                synth(&spec, schema, full, 0)
            };
            let what = format!(
                "{name} ({})",
                if full { "all fields" } else { "required only" }
            );
            check(name, &instance, &what, &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_enum_value_maps_to_a_known_variant() {
    let spec = spec();
    for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
        let Some(values) = schema.get("enum").and_then(Value::as_array) else {
            continue;
        };
        for v in values {
            let back = roundtrip_by_name(name, v.clone()).unwrap().unwrap();
            assert_eq!(&back, v, "{name}");
        }
        // A value KSeF might add later survives too.
        let new = Value::from("SomethingNew");
        assert_eq!(roundtrip_by_name(name, new.clone()).unwrap().unwrap(), new);
    }
    // Known values are not `Unknown`.
    use ksef_model::api::{CurrencyCode, InvoiceQueryFormType};
    assert!(!CurrencyCode::from("PLN").is_unknown());
    assert_eq!(InvoiceQueryFormType::KNOWN.len(), 3);
    assert_eq!(InvoiceQueryFormType::FaRr.as_str(), "FA_RR");
}
