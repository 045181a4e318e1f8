//! KSeF error responses in both formats (ksef-api.md §18): the legacy `ExceptionResponse` by
//! default and `application/problem+json` when the request says `X-Error-Format:
//! problem-details` (400 and 429); 401, 403 and 410 are always problem+json.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::ids::rfc3339;

/// The Polish description KSeF gives for an exception code (ksef-api.md §18.5).
pub(crate) fn describe(code: i32) -> &'static str {
    match code {
        9101 => "Nieprawidłowy dokument.",
        9102 => "Brak podpisu.",
        9103 => "Przekroczona liczba dozwolonych podpisów.",
        9105 => "Nieprawidłowy podpis.",
        21001 => "Nieczytelna treść.",
        21111 => "Nieprawidłowe wyzwanie autoryzacyjne.",
        21115 => "Nieprawidłowy certyfikat.",
        21117 => "Nieprawidłowy identyfikator podmiotu dla wskazanego typu kontekstu.",
        21155 => "Przekroczono dozwoloną liczbę faktur w sesji.",
        21157 => "Nieprawidłowy rozmiar części pakietu.",
        21161 => "Przekroczono dozwoloną liczbę części pakietu.",
        21164 => "Faktura o podanym identyfikatorze nie istnieje.",
        21165 => "Faktura o podanym numerze KSeF nie jest jeszcze dostępna.",
        21166 => "Korekta techniczna niedostępna.",
        21167 => "Status faktury nie pozwala na korektę techniczną.",
        21173 => "Brak sesji o wskazanym numerze referencyjnym.",
        21178 => "Nie znaleziono UPO dla podanych kryteriów.",
        21180 => "Status sesji nie pozwala na wykonanie operacji.",
        21175 => "Wynik zapytania o podanym identyfikatorze nie istnieje.",
        21181 => "Nieprawidłowe żądanie eksportu faktur.",
        21182 => "Osiągnięto limit trwających eksportów.",
        21183 => "Zakres filtrowania wykracza poza dostępny zakres danych.",
        21205 => "Pakiet nie może być pusty.",
        21208 => "Czas oczekiwania na requesty upload lub finish został przekroczony.",
        21217 => "Nieprawidłowe kodowanie znaków.",
        21301 => "Brak autoryzacji.",
        21304 => "Brak uwierzytelnienia.",
        21308 => "Próba wykorzystania metod autoryzacyjnych osoby zmarłej.",
        21401 => "Dokument nie jest zgodny ze schemą (xsd).",
        21402 => "Nieprawidłowy rozmiar pliku.",
        21403 => "Nieprawidłowy skrót pliku.",
        21405 => "Błąd walidacji danych wejściowych.",
        21406 => "Konflikt podpisu i typu uwierzytelnienia.",
        21418 => "Przekazany token kontynuacji ma nieprawidłowy format.",
        21470 => "Przesłany identyfikator klucza jest nieznany lub wskazuje na wycofany klucz.",
        25001 => {
            "Brak możliwości pobrania danych do CSR dla wykorzystanego sposobu uwierzytelnienia."
        }
        25002 => {
            "Brak możliwości złożenia wniosku certyfikacyjnego dla wykorzystanego sposobu uwierzytelnienia."
        }
        25003 => "Dane w CSR nie zgadzają się z danymi w użytym wektorze uwierzytelniającym.",
        25004 => "Niepoprawny format CSR lub niepoprawny podpis CSR.",
        25005 => "Wniosek certyfikacyjny o podanym numerze referencyjnym nie istnieje.",
        25006 => "Osiągnięto limit możliwych do złożenia wniosków certyfikacyjnych.",
        25007 => "Osiągnięto limit dopuszczalnej liczby posiadanych certyfikatów.",
        25008 => "Certyfikat o podanym numerze seryjnym nie istnieje.",
        25009 => {
            "Nie można odwołać wskazanego certyfikatu, ponieważ jest już odwołany, zablokowany lub nieważny."
        }
        25010 => "Nieprawidłowy typ lub długość klucza.",
        25011 => "Nieprawidłowy algorytm podpisu CSR.",
        30001 => "Podmiot lub uprawnienie już istnieje.",
        71001 => "Faktura nie może zostac przypisana do Identyfikatora Zbiorczego.",
        71002 => "Faktura jest już przypisana do maksymalnej liczby Identyfikatorów Zbiorczych.",
        _ => "Nieznany błąd.",
    }
}

/// One entry of `exceptionDetailList` / problem-details `errors`.
#[derive(Debug, Clone)]
pub(crate) struct Detail {
    pub code: i32,
    pub details: Vec<String>,
}

/// An error response, rendered according to the request's preferred format.
#[derive(Debug, Clone)]
pub(crate) enum ApiError {
    /// 400 with one or more exception codes.
    BadRequest(Vec<Detail>),
    /// 401 (always problem+json).
    Unauthorized(String),
    /// 403 (always problem+json).
    Forbidden {
        reason_code: &'static str,
        detail: String,
        security: Value,
    },
    /// 410 (always problem+json).
    Gone(String),
    /// 404 for paths that are not part of the API.
    NotFound,
    /// 413: the body exceeds the simulator's limit.
    PayloadTooLarge(usize),
    /// 415: wrong `Content-Type`.
    UnsupportedMediaType(String),
    /// 429 with `Retry-After`.
    TooManyRequests(crate::limits::Breach),
    /// 501: an operation of the catalogue the simulator does not implement yet.
    NotImplemented(&'static str),
    /// 503 from the presigned storage (a part could not be spooled to disk): retry later.
    StorageUnavailable(String),
}

impl ApiError {
    /// A 400 with a single exception code.
    pub fn bad(code: i32, details: impl IntoIterator<Item = String>) -> Self {
        ApiError::BadRequest(vec![Detail {
            code,
            details: details.into_iter().collect(),
        }])
    }

    /// 400 21405 with the validator's message.
    pub fn validation(msg: impl Into<String>) -> Self {
        Self::bad(21405, [msg.into()])
    }

    /// 403 `missing-permissions`.
    pub fn missing_permissions(required: &[&str], present: &[String]) -> Self {
        ApiError::Forbidden {
            reason_code: "missing-permissions",
            detail: "Brak wymaganych uprawnień do wykonania operacji w bieżącym kontekście.".into(),
            security: json!({
                "requiredAnyOfPermissions": required,
                "presentPermissions": present,
            }),
        }
    }

    /// The HTTP status of this error.
    #[cfg(test)]
    pub fn status(&self) -> StatusCode {
        self.render(false, "/", OffsetDateTime::UNIX_EPOCH, "0")
            .status()
    }

    /// Renders the error. `problem` = the request carried `X-Error-Format: problem-details`.
    pub fn render(
        &self,
        problem: bool,
        instance: &str,
        now: OffsetDateTime,
        trace: &str,
    ) -> Response {
        let ts = rfc3339(now);
        match self {
            ApiError::BadRequest(list) => {
                if problem {
                    let errors: Vec<Value> = list
                        .iter()
                        .map(|d| {
                            json!({"code": d.code, "description": describe(d.code), "details": d.details})
                        })
                        .collect();
                    problem_json(
                        StatusCode::BAD_REQUEST,
                        json!({
                            "title": "Bad Request", "status": 400, "instance": instance,
                            "detail": "Żądanie jest nieprawidłowe.", "errors": errors,
                            "timestamp": ts, "traceId": trace,
                        }),
                    )
                } else {
                    legacy(StatusCode::BAD_REQUEST, list, &ts, trace)
                }
            }
            ApiError::Unauthorized(detail) => problem_json(
                StatusCode::UNAUTHORIZED,
                json!({"title": "Unauthorized", "status": 401, "detail": detail,
                       "instance": instance, "traceId": trace, "timestamp": ts}),
            ),
            ApiError::Forbidden {
                reason_code,
                detail,
                security,
            } => problem_json(
                StatusCode::FORBIDDEN,
                json!({"title": "Forbidden", "status": 403, "detail": detail,
                       "instance": instance, "reasonCode": reason_code, "security": security,
                       "traceId": trace, "timestamp": ts}),
            ),
            ApiError::Gone(detail) => problem_json(
                StatusCode::GONE,
                json!({"title": "Gone", "status": 410, "instance": instance, "detail": detail,
                       "timestamp": ts, "traceId": trace}),
            ),
            ApiError::NotFound => StatusCode::NOT_FOUND.into_response(),
            ApiError::TooManyRequests(b) => {
                let detail = format!(
                    "Przekroczono limit {} żądań na {}. Spróbuj ponownie po {} sekundach.",
                    b.limit, b.window, b.retry_after
                );
                let mut r = if problem {
                    problem_json(
                        StatusCode::TOO_MANY_REQUESTS,
                        json!({"title": "Too Many Requests", "status": 429, "instance": instance,
                               "detail": detail, "timestamp": ts, "traceId": trace}),
                    )
                } else {
                    json_response(
                        StatusCode::TOO_MANY_REQUESTS,
                        "application/json",
                        &json!({"status": {"code": 429, "description": "Too Many Requests",
                                           "details": [detail]}}),
                    )
                };
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(b.retry_after));
                r
            }
            ApiError::PayloadTooLarge(limit) => {
                let list = [Detail {
                    code: 21405,
                    details: vec![format!(
                        "Treść żądania przekracza dozwolony rozmiar {limit} bajtów."
                    )],
                }];
                let mut r = legacy(StatusCode::BAD_REQUEST, &list, &ts, trace);
                *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
                r
            }
            ApiError::UnsupportedMediaType(msg) => {
                let list = [Detail {
                    code: 21405,
                    details: vec![msg.clone()],
                }];
                let mut r = legacy(StatusCode::BAD_REQUEST, &list, &ts, trace);
                *r.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
                r
            }
            ApiError::NotImplemented(name) => {
                let body = json!({"exception": {
                    "exceptionDetailList": [{
                        "exceptionCode": 501,
                        "exceptionDescription": "Operacja nie jest jeszcze zaimplementowana w symulatorze.",
                        "details": [format!(
                            "ksef-sim does not implement operation `{name}` yet (see IMPLEMENTED_OPERATIONS)."
                        )],
                    }],
                    "serviceCode": trace, "serviceCtx": "ksef-sim", "serviceName": "ksef-sim",
                    "timestamp": ts,
                }});
                json_response(StatusCode::NOT_IMPLEMENTED, "application/json", &body)
            }
            // Blob storage answers outside the API's error model: a bare status and a text.
            ApiError::StorageUnavailable(msg) => {
                let mut r = (StatusCode::SERVICE_UNAVAILABLE, msg.clone()).into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                r
            }
        }
    }
}

fn legacy(status: StatusCode, list: &[Detail], ts: &str, trace: &str) -> Response {
    let details: Vec<Value> = list
        .iter()
        .map(|d| {
            json!({"exceptionCode": d.code, "exceptionDescription": describe(d.code), "details": d.details})
        })
        .collect();
    let body = json!({"exception": {
        "exceptionDetailList": details,
        "serviceCode": trace,
        "serviceCtx": "srvKSEFSIM",
        "serviceName": "ksef-sim",
        "timestamp": ts,
    }});
    json_response(status, "application/json", &body)
}

fn problem_json(status: StatusCode, body: Value) -> Response {
    json_response(status, "application/problem+json", &body)
}

/// A JSON response with the given content type.
pub(crate) fn json_response(
    status: StatusCode,
    content_type: &'static str,
    body: &Value,
) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = (status, bytes).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(ApiError::validation("x").status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            ApiError::Unauthorized("x".into()).status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            ApiError::NotImplemented("x").status(),
            StatusCode::NOT_IMPLEMENTED
        );
        assert_eq!(describe(21405), "Błąd walidacji danych wejściowych.");
    }
}
