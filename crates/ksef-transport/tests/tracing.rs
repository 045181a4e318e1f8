//! Tracing: one span per call with operation, reference, status and attempt — and never a token.

// Test helpers outside #[test] fns may unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ksef_transport::{AccessToken, ManualClock, Transport};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A minimal subscriber that writes every span name, span field, recorded value and event
/// field as text (no tracing-subscriber needed).
#[derive(Clone, Default)]
struct Capture {
    out: Arc<Mutex<String>>,
    next: Arc<AtomicU64>,
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}=\"{}\"", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut out = self.out.lock().unwrap();
        let _ = write!(out, "\nspan {}", span.metadata().name());
        span.record(&mut Fields(&mut out));
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut out = self.out.lock().unwrap();
        out.push_str("\nrecord");
        values.record(&mut Fields(&mut out));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut out = self.out.lock().unwrap();
        let _ = write!(out, "\nevent {}", event.metadata().level());
        event.record(&mut Fields(&mut out));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[tokio::test]
async fn spans_name_the_call_and_never_the_token() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());

    let server = MockServer::start().await;
    let reference = "20250625-SO-2C3E6C8000-B675CF5D68-07";
    Mock::given(method("GET"))
        .and(path(format!("/v2/sessions/{reference}")))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/sessions/{reference}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({
                    "status": {"code": 100, "description": "Sesja interaktywna otwarta"},
                    "dateCreated": "2025-07-11T12:23:56+00:00",
                    "dateUpdated": "2025-07-11T12:23:56+00:00"
                }))
                .insert_header("x-system-warning", "[W7]: Test warning"),
        )
        .mount(&server)
        .await;
    let t = Transport::builder_for_url(&format!("{}/v2", server.uri()))
        .clock(Arc::new(ManualClock::new()))
        .build()
        .unwrap();
    let token = AccessToken::new("SUPER-SECRET-ACCESS-TOKEN");
    let r = t
        .session_status(&token, &reference.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(r.status.code, 100);

    let out = capture.out.lock().unwrap().clone();
    assert!(out.contains("ksef_call"), "{out}");
    assert!(out.contains("operation=\"session_status\""), "{out}");
    assert!(out.contains(reference), "{out}");
    assert!(out.contains("status=200"), "{out}");
    assert!(out.contains("attempt=2"), "{out}");
    assert!(out.contains("retrying"), "{out}");
    assert!(out.contains("W7") && out.contains("Test warning"), "{out}");
    assert!(!out.contains("SUPER-SECRET"), "token leaked: {out}");
    assert!(!out.contains("Bearer"), "{out}");
}
