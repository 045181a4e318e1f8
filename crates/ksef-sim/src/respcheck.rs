//! Response validation (opt-in, cargo feature `validate-responses`): every response the
//! dispatcher produces for a catalogue operation is checked against `spec/open-api.json` — the
//! schema the spec gives for that operation, status and media type — and what does not match is
//! recorded as a [`ResponseViolation`] together with the set of (operation, status) pairs seen.
//!
//! The validator understands the OpenAPI 3.0 subset the spec uses: `$ref`, `allOf`,
//! `oneOf`/`anyOf`, `nullable`, `type`, `required`, `properties` (a property the schema does not
//! declare is an error unless `additionalProperties` allows it: the simulator must not invent
//! fields), `additionalProperties`, `items`, `enum`, `minLength`/`maxLength`, `pattern` (ECMA
//! syntax translated; a pattern that does not compile is reported, never skipped),
//! `minimum`/`maximum`/`exclusiveMinimum`/`exclusiveMaximum` (boolean and numeric forms),
//! `minItems`/`maxItems` and `format` `date-time`, `date`, `byte`, `uri`, `int32`, `int64`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

use axum::body::Body;
use axum::http::header;
use axum::response::Response;
use ksef_model::operations::{OPERATIONS, Operation, OperationId};
use serde_json::Value;

/// The spec, embedded (only with the `validate-responses` feature).
const SPEC_JSON: &str = include_str!("../../../spec/open-api.json");

/// Statuses answered before an operation runs (the API gateway's): the spec lists no body for
/// them, KSeF sends the legacy `ExceptionResponse`.
const GATEWAY_STATUSES: &[u16] = &[413, 415];

/// Deliberate differences from the spec, each with its reason: (operation name or `*`, status,
/// JSON pointer prefix or `*`, reason). A violation matching an entry is not recorded.
pub const ALLOWED_DEVIATIONS: &[(&str, u16, &str, &str)] = &[(
    "*",
    501,
    "*",
    "the simulator's own answer for an operation it does not implement (not part of KSeF)",
)];

/// One response that does not match the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseViolation {
    /// The operation's catalogue name.
    pub operation: &'static str,
    /// The HTTP status sent.
    pub status: u16,
    /// JSON pointer (RFC 6901) into the body; empty for the body as a whole.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ResponseViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {:?}: {}",
            self.operation, self.status, self.pointer, self.message
        )
    }
}

/// The recorder kept by a simulator started with `validate_responses(true)`.
#[derive(Debug, Default)]
pub(crate) struct ResponseCheck {
    violations: Mutex<Vec<ResponseViolation>>,
    covered: Mutex<BTreeMap<(OperationId, u16), u64>>,
}

impl ResponseCheck {
    /// The operation a request is for, when validation is on.
    pub fn operation(&self, method: &axum::http::Method, path: &str) -> Option<&'static Operation> {
        use ksef_model::operations::Method;
        let m = match *method {
            axum::http::Method::GET => Method::Get,
            axum::http::Method::POST => Method::Post,
            axum::http::Method::PUT => Method::Put,
            axum::http::Method::DELETE => Method::Delete,
            _ => return None,
        };
        crate::server::route(m, path.strip_prefix("/v2")?).map(|(op, _)| op)
    }

    /// Buffers `response`, checks it against the spec, records the outcome and gives the
    /// response back unchanged.
    pub async fn inspect(&self, op: &'static Operation, response: Response) -> Response {
        let (parts, body) = response.into_parts();
        let bytes = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(b) => b,
            Err(e) => {
                self.record(
                    op,
                    parts.status.as_u16(),
                    vec![(String::new(), format!("body could not be read: {e}"))],
                );
                return Response::from_parts(parts, Body::empty());
            }
        };
        let status = parts.status.as_u16();
        let ct = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let errors = check_response(op, status, ct, &bytes);
        self.record(op, status, errors);
        Response::from_parts(parts, Body::from(bytes))
    }

    fn record(&self, op: &'static Operation, status: u16, errors: Vec<(String, String)>) {
        *self
            .covered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((op.id, status))
            .or_default() += 1;
        let errors: Vec<_> = errors
            .into_iter()
            .filter(|(pointer, _)| !allowed(op.name, status, pointer))
            .map(|(pointer, message)| ResponseViolation {
                operation: op.name,
                status,
                pointer,
                message,
            })
            .collect();
        if !errors.is_empty() {
            self.violations
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(errors);
        }
    }

    pub fn violations(&self) -> Vec<ResponseViolation> {
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn covered(&self) -> BTreeMap<(OperationId, u16), u64> {
        self.covered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn allowed(op: &str, status: u16, pointer: &str) -> bool {
    ALLOWED_DEVIATIONS.iter().any(|(o, s, p, _)| {
        (*o == "*" || *o == op) && *s == status && (*p == "*" || pointer.starts_with(p))
    })
}

/// The parsed spec (parsed on first use).
pub fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| serde_json::from_str(SPEC_JSON).unwrap_or(Value::Null))
}

/// The spec's success status of `op` (for reports): the one 2xx status its responses list.
pub fn success_statuses() -> Vec<(&'static Operation, u16)> {
    OPERATIONS
        .iter()
        .map(|op| (op, op.success_status))
        .collect()
}

/// Checks one response of `op` against the spec: the status must be one the spec lists (or a
/// gateway status), the media type one it defines for that status, and a JSON body must match
/// the schema. Returns (JSON pointer, message) pairs; empty when the response conforms.
pub fn check_response(
    op: &Operation,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Vec<(String, String)> {
    let spec = spec();
    let mut errors = Vec::new();
    let mut err = |m: String| errors.push((String::new(), m));
    if spec.is_null() {
        err("the embedded spec could not be parsed".into());
        return errors;
    }
    let method = op.method.as_str().to_ascii_lowercase();
    let responses = &spec["paths"][op.path][method.as_str()]["responses"];
    let ct = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let gateway_schema = serde_json::json!({"$ref": "#/components/schemas/ExceptionResponse"});
    let (content, schema_for_gateway) = if GATEWAY_STATUSES.contains(&status) {
        (None, Some(&gateway_schema))
    } else {
        let r = &responses[status.to_string()];
        if r.is_null() {
            err(format!(
                "status {status} is not a response the spec defines for {} {} (defined: {})",
                op.method,
                op.path,
                responses
                    .as_object()
                    .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            ));
            return errors;
        }
        (r["content"].as_object(), None)
    };
    let schema = match (content, schema_for_gateway) {
        (_, Some(s)) => {
            if ct != "application/json" {
                err(format!(
                    "gateway status {status} must carry application/json, got {ct:?}"
                ));
                return errors;
            }
            s.clone()
        }
        (None, None) => {
            if !body.is_empty() {
                err(format!(
                    "the spec defines no body for {status}, the response has {} bytes ({ct:?})",
                    body.len()
                ));
            }
            return errors;
        }
        (Some(media), None) => {
            let Some(m) = media.get(&ct) else {
                err(format!(
                    "content type {ct:?} is not one the spec defines for {status} ({})",
                    media.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
                return errors;
            };
            if body.is_empty() {
                err(format!(
                    "the spec defines a {ct} body for {status}, the response is empty"
                ));
                return errors;
            }
            if !ct.ends_with("json") {
                // XML bodies (UPO, invoices) are checked against their XSDs elsewhere.
                return errors;
            }
            m["schema"].clone()
        }
    };
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            err(format!("the {ct} body is not JSON: {e}"));
            return errors;
        }
    };
    validate(spec, &schema, &value, "", &mut errors);
    errors
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    let mut s = schema;
    for _ in 0..32 {
        match s["$ref"].as_str() {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                s = &spec["components"]["schemas"][name];
            }
            None => return s,
        }
    }
    s
}

/// RFC 6901 escaping of one reference token.
fn token(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// Translates an ECMA-262 pattern (the dialect JSON Schema uses) into the `regex` crate's:
/// `\d`, `\D`, `\w`, `\W` are ASCII-only in ECMA (Unicode in `regex`), and ECMA lets any
/// punctuation be escaped (`\ `, `\/`). Features `regex` lacks (look-around, back-references)
/// stay as they are and fail to compile, which the caller reports.
pub fn translate_ecma(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 8);
    let mut in_class = false;
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let (class, negated) = match n {
                    'd' => ("0-9", false),
                    'D' => ("0-9", true),
                    'w' => ("A-Za-z0-9_", false),
                    'W' => ("A-Za-z0-9_", true),
                    _ => ("", false),
                };
                if !class.is_empty() {
                    match (in_class, negated) {
                        (false, false) => out.push_str(&format!("[{class}]")),
                        (false, true) => out.push_str(&format!("[^{class}]")),
                        (true, false) => out.push_str(class),
                        (true, true) => out.push_str(&format!("[^{class}]")),
                    }
                } else if n.is_ascii_alphanumeric() {
                    out.push('\\');
                    out.push(n);
                } else {
                    out.push_str(&regex::escape(&n.to_string()));
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A leading `^` or `]` belongs to the class syntax.
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '[' if in_class => out.push_str("\\["),
            _ => out.push(c),
        }
    }
    out
}

/// Compiles a spec pattern (cached); `Err` with the compiler's message when it does not compile.
pub fn compile_pattern(p: &str) -> Result<regex::Regex, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Result<regex::Regex, String>>>> = OnceLock::new();
    let mut c = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    c.entry(p.to_owned())
        .or_insert_with(|| regex::Regex::new(&translate_ecma(p)).map_err(|e| e.to_string()))
        .clone()
}

fn is_nullable(spec: &Value, s: &Value) -> bool {
    s["nullable"] == true
        || s["allOf"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| is_nullable(spec, resolve(spec, x))))
}

/// Validates `v` against an OpenAPI 3.0 schema of `spec`; errors are (JSON pointer, message).
pub fn validate(
    spec: &Value,
    schema: &Value,
    v: &Value,
    at: &str,
    errors: &mut Vec<(String, String)>,
) {
    let s = resolve(spec, schema);
    let mut err = |m: String| errors.push((at.to_owned(), m));
    if v.is_null() {
        // A schema that constrains nothing (no type, composition or enum) admits null.
        let constrains = ["type", "allOf", "oneOf", "anyOf", "enum"]
            .iter()
            .any(|k| !s[*k].is_null());
        if constrains && !is_nullable(spec, s) {
            err("null is not allowed".into());
        }
        return;
    }
    if let Some(all) = s["allOf"].as_array() {
        for sub in all {
            validate(spec, sub, v, at, errors);
        }
    }
    let mut err = |m: String| errors.push((at.to_owned(), m));
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = s[key].as_array() {
            let matching = alts
                .iter()
                .filter(|alt| {
                    let mut e = Vec::new();
                    validate(spec, alt, v, at, &mut e);
                    e.is_empty()
                })
                .count();
            if matching == 0 || (key == "oneOf" && matching > 1) {
                err(format!("matches {matching} of the {key} alternatives"));
            }
        }
    }
    if let Some(e) = s["enum"].as_array()
        && !e.contains(v)
    {
        err(format!("{v} is not one of the enum values"));
    }
    match s["type"].as_str() {
        Some("object") => {
            let Some(obj) = v.as_object() else {
                err(format!("expected an object, got {}", kind(v)));
                return;
            };
            for r in s["required"].as_array().into_iter().flatten() {
                if let Some(r) = r.as_str()
                    && !obj.contains_key(r)
                {
                    err(format!("required property {r:?} is missing"));
                }
            }
            let props = s["properties"].as_object();
            for (k, val) in obj {
                let here = format!("{at}/{}", token(k));
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => validate(spec, ps, val, &here, errors),
                    None => match &s["additionalProperties"] {
                        Value::Bool(true) => {}
                        Value::Object(_) => {
                            validate(spec, &s["additionalProperties"], val, &here, errors)
                        }
                        // Absent or false: the simulator must not send what the spec does not
                        // declare (in allOf compositions each part declares its own).
                        _ if props.is_some() || s["additionalProperties"] == false => {
                            errors.push((here, "property not declared by the schema".into()))
                        }
                        _ => {}
                    },
                }
            }
        }
        Some("array") => {
            let Some(arr) = v.as_array() else {
                err(format!("expected an array, got {}", kind(v)));
                return;
            };
            let n = arr.len() as u64;
            if let Some(m) = s["minItems"].as_u64()
                && n < m
            {
                err(format!("{n} items, minItems is {m}"));
            }
            if let Some(m) = s["maxItems"].as_u64()
                && n > m
            {
                err(format!("{n} items, maxItems is {m}"));
            }
            for (i, item) in arr.iter().enumerate() {
                validate(spec, &s["items"], item, &format!("{at}/{i}"), errors);
            }
        }
        Some("string") => {
            let Some(st) = v.as_str() else {
                err(format!("expected a string, got {}", kind(v)));
                return;
            };
            // ECMA counts UTF-16 code units; the spec's strings are BMP, so chars agree.
            let n = st.chars().count() as u64;
            if let Some(m) = s["minLength"].as_u64()
                && n < m
            {
                err(format!("length {n}, minLength is {m}"));
            }
            if let Some(m) = s["maxLength"].as_u64()
                && n > m
            {
                err(format!("length {n}, maxLength is {m}"));
            }
            if let Some(p) = s["pattern"].as_str() {
                match compile_pattern(p) {
                    Ok(re) if !re.is_match(st) => err(format!("{st:?} does not match {p}")),
                    Ok(_) => {}
                    Err(e) => err(format!("pattern {p} does not compile: {e}")),
                }
            }
            if let Some(f) = s["format"].as_str()
                && let Err(m) = check_string_format(f, st)
            {
                err(format!("{st:?} is not a valid {f}: {m}"));
            }
        }
        Some("integer") => {
            if !(v.is_i64() || v.is_u64()) {
                err(format!("expected an integer, got {v}"));
                return;
            }
            let range = match s["format"].as_str() {
                Some("int32") => Some((i64::from(i32::MIN), i64::from(i32::MAX))),
                Some("int64") => Some((i64::MIN, i64::MAX)),
                _ => None,
            };
            if let Some((lo, hi)) = range
                && !v.as_i64().is_some_and(|x| (lo..=hi).contains(&x))
            {
                err(format!(
                    "{v} is out of the {} range",
                    s["format"].as_str().unwrap_or("")
                ));
            }
            bounds(s, v, &mut err);
        }
        Some("number") => {
            if !v.is_number() {
                err(format!("expected a number, got {}", kind(v)));
                return;
            }
            bounds(s, v, &mut err);
        }
        Some("boolean") if !v.is_boolean() => err(format!("expected a boolean, got {}", kind(v))),
        _ => {}
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// minimum/maximum with OpenAPI 3.0's boolean `exclusiveMinimum`/`exclusiveMaximum` and JSON
/// Schema's numeric form.
fn bounds(s: &Value, v: &Value, err: &mut impl FnMut(String)) {
    let Some(x) = v.as_f64() else { return };
    let lower = match (&s["minimum"], &s["exclusiveMinimum"]) {
        (m, Value::Bool(true)) => m.as_f64().map(|m| (m, true)),
        (_, e) if e.is_number() => e.as_f64().map(|m| (m, true)),
        (m, _) => m.as_f64().map(|m| (m, false)),
    };
    let upper = match (&s["maximum"], &s["exclusiveMaximum"]) {
        (m, Value::Bool(true)) => m.as_f64().map(|m| (m, true)),
        (_, e) if e.is_number() => e.as_f64().map(|m| (m, true)),
        (m, _) => m.as_f64().map(|m| (m, false)),
    };
    if let Some((m, excl)) = lower
        && (x < m || (excl && x == m))
    {
        err(format!(
            "{v} is below the {}minimum {m}",
            if excl { "exclusive " } else { "" }
        ));
    }
    if let Some((m, excl)) = upper
        && (x > m || (excl && x == m))
    {
        err(format!(
            "{v} is above the {}maximum {m}",
            if excl { "exclusive " } else { "" }
        ));
    }
}

/// The string formats the spec uses; unknown formats pass (JSON Schema treats them as
/// annotations).
pub fn check_string_format(format: &str, s: &str) -> Result<(), String> {
    use time::format_description::well_known::Rfc3339;
    match format {
        "date-time" => time::OffsetDateTime::parse(s, &Rfc3339)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        "date" => {
            let b = s.as_bytes();
            let digits = |r: std::ops::Range<usize>| {
                b[r].iter().try_fold(0u32, |n, d| {
                    d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
                })
            };
            if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
                return Err("expected YYYY-MM-DD".into());
            }
            let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10)) else {
                return Err("expected YYYY-MM-DD".into());
            };
            let month = u8::try_from(m)
                .ok()
                .and_then(|m| time::Month::try_from(m).ok())
                .ok_or("no such month")?;
            time::Date::from_calendar_date(y as i32, month, d as u8)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        "byte" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        "uri" => check_uri(s),
        _ => Ok(()),
    }
}

/// An absolute URI (RFC 3986): a scheme, `:`, and no characters a URI cannot hold.
fn check_uri(s: &str) -> Result<(), String> {
    let (scheme, rest) = s.split_once(':').ok_or("no scheme")?;
    let mut sc = scheme.chars();
    if !sc.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !sc.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Err(format!("bad scheme {scheme:?}"));
    }
    if let Some(c) = rest
        .chars()
        .find(|c| !c.is_ascii() || c.is_ascii_control() || " \"<>\\^`{|}".contains(*c))
    {
        return Err(format!("character {c:?} is not allowed in a URI"));
    }
    let mut b = rest.bytes();
    while let Some(x) = b.next() {
        if x == b'%'
            && !(b.next().is_some_and(|h| h.is_ascii_hexdigit())
                && b.next().is_some_and(|h| h.is_ascii_hexdigit()))
        {
            return Err("bad percent-encoding".into());
        }
    }
    if (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        && !rest.starts_with("//")
    {
        return Err("an http(s) URI needs an authority".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errs(schema: Value, v: Value) -> Vec<(String, String)> {
        let mut e = Vec::new();
        validate(spec(), &schema, &v, "", &mut e);
        e
    }

    fn ok(schema: Value, v: Value) {
        let e = errs(schema.clone(), v.clone());
        assert!(e.is_empty(), "{v} against {schema}: {e:?}");
    }

    fn bad(schema: Value, v: Value, pointer: &str, contains: &str) {
        let e = errs(schema.clone(), v.clone());
        assert!(
            e.iter().any(|(p, m)| p == pointer && m.contains(contains)),
            "{v} against {schema}: expected {pointer:?} {contains:?}, got {e:?}"
        );
    }

    #[test]
    fn embedded_spec_parses_and_every_pattern_compiles() {
        assert!(spec()["paths"].is_object());
        fn walk(v: &Value, n: &mut usize) {
            match v {
                Value::Object(o) => {
                    if let Some(p) = o.get("pattern").and_then(Value::as_str) {
                        compile_pattern(p).unwrap();
                        *n += 1;
                    }
                    o.values().for_each(|x| walk(x, n));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, n)),
                _ => {}
            }
        }
        let mut n = 0;
        walk(spec(), &mut n);
        assert!(n > 10, "{n}");
    }

    #[test]
    fn minimum_maximum_and_exclusive_forms() {
        let s = json!({"type": "integer", "minimum": 1, "maximum": 10});
        ok(s.clone(), json!(1));
        ok(s.clone(), json!(10));
        bad(s.clone(), json!(0), "", "below the minimum 1");
        bad(s, json!(11), "", "above the maximum 10");
        let s = json!({"type": "integer", "minimum": 0, "exclusiveMinimum": true});
        bad(s.clone(), json!(0), "", "exclusive minimum");
        ok(s, json!(1));
        let s = json!({"type": "number", "maximum": 5, "exclusiveMaximum": true});
        bad(s.clone(), json!(5.0), "", "exclusive maximum");
        ok(s, json!(4.5));
        // JSON Schema's numeric form.
        bad(
            json!({"type": "number", "exclusiveMinimum": 2}),
            json!(2),
            "",
            "exclusive",
        );
        bad(
            json!({"type": "number", "exclusiveMaximum": 2}),
            json!(2),
            "",
            "exclusive",
        );
        // The spec's own: CollectiveIdentifiersQueryResponseItem.invoiceCount > 0.
        let item = json!({"$ref": "#/components/schemas/CollectiveIdentifiersQueryResponseItem"});
        let mut e = Vec::new();
        validate(spec(), &item, &json!({"invoiceCount": 0}), "", &mut e);
        assert!(
            e.iter()
                .any(|(p, m)| p == "/invoiceCount" && m.contains("exclusive")),
            "{e:?}"
        );
    }

    #[test]
    fn min_items_and_max_items() {
        let s =
            json!({"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "integer"}});
        bad(s.clone(), json!([]), "", "minItems is 1");
        bad(s.clone(), json!([1, 2, 3]), "", "maxItems is 2");
        ok(s.clone(), json!([1, 2]));
        bad(s, json!([1, "x"]), "/1", "expected an integer");
    }

    #[test]
    fn min_length_and_max_length_count_characters() {
        let s = json!({"type": "string", "minLength": 2, "maxLength": 3});
        bad(s.clone(), json!("a"), "", "minLength is 2");
        bad(s.clone(), json!("abcd"), "", "maxLength is 3");
        ok(s, json!("żół"));
    }

    #[test]
    fn patterns_use_ecma_semantics_and_fail_loudly() {
        let nip = json!({"type": "string", "pattern": "^[1-9]((\\d[1-9])|([1-9]\\d))\\d{7}$"});
        ok(nip.clone(), json!("5265877635"));
        bad(nip.clone(), json!("0265877635"), "", "does not match");
        // ECMA's \d is ASCII only; regex's would accept Arabic-Indic digits.
        bad(nip, json!("52658776٣5"), "", "does not match");
        // Escaped space and hyphen inside a class (the spec's certificate name pattern).
        let name = json!({"type": "string", "pattern": "^[a-zA-Z0-9_\\-\\ ąćęłńóśźżĄĆĘŁŃÓŚŹŻ]+$"});
        ok(name.clone(), json!("Mój certyfikat-1"));
        bad(name, json!("a/b"), "", "does not match");
        // \w inside and outside classes.
        ok(
            json!({"type": "string", "pattern": "^\\w[\\w.]*$"}),
            json!("a_1.b"),
        );
        bad(
            json!({"type": "string", "pattern": "^\\w+$"}),
            json!("ą"),
            "",
            "does not match",
        );
        // Look-behind does not compile in `regex`: an error, never a silent pass.
        bad(
            json!({"type": "string", "pattern": "(?<=a)b"}),
            json!("ab"),
            "",
            "does not compile",
        );
        assert_eq!(translate_ecma("\\d[\\d\\-]\\D"), "[0-9][0-9\\-][^0-9]");
    }

    #[test]
    fn enum_and_required_and_types() {
        ok(json!({"type": "string", "enum": ["A", "B"]}), json!("A"));
        bad(
            json!({"type": "string", "enum": ["A", "B"]}),
            json!("C"),
            "",
            "enum",
        );
        let s =
            json!({"type": "object", "required": ["a"], "properties": {"a": {"type": "boolean"}}});
        bad(s.clone(), json!({}), "", "\"a\" is missing");
        bad(s.clone(), json!({"a": 1}), "/a", "expected a boolean");
        bad(s, json!([]), "", "expected an object");
        bad(
            json!({"type": "integer"}),
            json!(1.5),
            "",
            "expected an integer",
        );
        bad(
            json!({"type": "number"}),
            json!("1"),
            "",
            "expected a number",
        );
    }

    #[test]
    fn additional_properties() {
        let closed = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        bad(closed, json!({"a": "x", "b/c": 1}), "/b~1c", "not declared");
        let map =
            json!({"type": "object", "additionalProperties": {"type": "string", "nullable": true}});
        ok(map.clone(), json!({"x": "y", "z": null}));
        bad(map, json!({"x": 1}), "/x", "expected a string");
        ok(
            json!({"type": "object", "properties": {}, "additionalProperties": true}),
            json!({"q": 1}),
        );
        bad(
            json!({"type": "object", "additionalProperties": false}),
            json!({"q": 1}),
            "/q",
            "not declared",
        );
    }

    #[test]
    fn formats() {
        let dt = json!({"type": "string", "format": "date-time"});
        ok(dt.clone(), json!("2025-07-11T12:23:56.0154302+00:00"));
        ok(dt.clone(), json!("2025-07-11T14:23:56+02:00"));
        ok(dt.clone(), json!("2025-07-11T12:23:56Z"));
        bad(dt.clone(), json!("2025-07-11 12:23:56"), "", "date-time");
        bad(dt, json!("2025-07-11T12:23:56"), "", "date-time");
        let d = json!({"type": "string", "format": "date"});
        ok(d.clone(), json!("2024-02-29"));
        bad(d.clone(), json!("2025-02-29"), "", "date");
        bad(d, json!("2025-2-1"), "", "date");
        let b = json!({"type": "string", "format": "byte"});
        ok(b.clone(), json!("AAEC/w=="));
        bad(b.clone(), json!("AAEC/w"), "", "byte");
        bad(b, json!("not base64!"), "", "byte");
        let u = json!({"type": "string", "format": "uri"});
        ok(
            u.clone(),
            json!("https://ksef.local:8443/storage/x?sig=a%2Fb"),
        );
        bad(u.clone(), json!("/relative/path"), "", "uri");
        bad(u.clone(), json!("https://a b"), "", "uri");
        bad(u, json!("https:no-authority"), "", "uri");
        let i32s = json!({"type": "integer", "format": "int32"});
        ok(i32s.clone(), json!(2_147_483_647));
        bad(i32s, json!(2_147_483_648_i64), "", "int32");
        bad(
            json!({"type": "integer", "format": "int64"}),
            json!(u64::MAX),
            "",
            "int64",
        );
    }

    #[test]
    fn nullable_and_all_of() {
        bad(
            json!({"type": "string"}),
            Value::Null,
            "",
            "null is not allowed",
        );
        ok(json!({"type": "string", "nullable": true}), Value::Null);
        ok(
            json!({"allOf": [{"type": "string"}], "nullable": true}),
            Value::Null,
        );
        ok(json!({"description": "anything"}), Value::Null);
        let s = json!({"allOf": [{"type": "object", "properties": {"a": {"type": "integer", "minimum": 1}}}]});
        bad(s, json!({"a": 0}), "/a", "minimum");
        bad(
            json!({"oneOf": [{"type": "integer"}, {"type": "number"}]}),
            json!(1),
            "",
            "2 of the oneOf",
        );
        ok(
            json!({"anyOf": [{"type": "integer"}, {"type": "number"}]}),
            json!(1),
        );
    }

    fn op(id: OperationId) -> &'static Operation {
        OPERATIONS.iter().find(|o| o.id == id).unwrap()
    }

    #[test]
    fn bodies_statuses_and_media_types() {
        let ch = op(OperationId::AuthChallenge);
        let good = br#"{"challenge":"20250514-CR-226FB7B000-3ACF9BE4C0-10","timestamp":"2025-07-11T12:23:56.0154302+00:00","timestampMs":1752236636015,"clientIp":"127.0.0.1"}"#;
        assert_eq!(
            check_response(ch, 200, Some("application/json; charset=utf-8"), good),
            vec![]
        );
        let e = check_response(ch, 200, Some("application/json"), b"");
        assert!(e[0].1.contains("response is empty"), "{e:?}");
        let e = check_response(ch, 200, Some("application/json"), b"<x/>");
        assert!(e[0].1.contains("not JSON"), "{e:?}");
        let e = check_response(ch, 200, Some("text/plain"), b"hi");
        assert!(e[0].1.contains("not one the spec defines"), "{e:?}");
        let e = check_response(ch, 200, None, b"");
        assert!(e[0].1.contains("not one the spec defines"), "{e:?}");
        let e = check_response(ch, 404, None, b"");
        assert!(e[0].1.contains("not a response the spec defines"), "{e:?}");
        let e = check_response(ch, 200, Some("application/json"), br#"{"challenge":"x"}"#);
        assert!(
            e.iter()
                .any(|(p, m)| p == "/challenge" && m.contains("length")),
            "{e:?}"
        );
        // A 401 is problem+json only.
        let e = check_response(
            op(OperationId::ListTokens),
            401,
            Some("application/json"),
            b"{}",
        );
        assert!(e[0].1.contains("not one the spec defines"), "{e:?}");
        // 204 has no body.
        let revoke = op(OperationId::RevokeToken);
        assert_eq!(check_response(revoke, 204, None, b""), vec![]);
        let e = check_response(revoke, 204, Some("application/json"), b"{}");
        assert!(e[0].1.contains("no body"), "{e:?}");
        // Gateway statuses carry the legacy ExceptionResponse.
        let e = check_response(ch, 413, Some("application/json"), br#"{"exception":1}"#);
        assert!(e.iter().any(|(p, _)| p == "/exception"), "{e:?}");
        // XML bodies: media type and non-empty only.
        let upo = op(OperationId::SessionUpo);
        assert_eq!(
            check_response(upo, 200, Some("application/xml"), b"<a/>"),
            vec![]
        );
    }
}
