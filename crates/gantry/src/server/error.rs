//! API errors: `{"error": {"code", "message"}}` with a 4xx/5xx status, for every route. What a
//! client sees is written for the client; internal causes are logged, not returned.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gantry_core::spec::{Problem, Problems, Unreadable};
use gantry_engine::EngineError;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub problems: Vec<Problem>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            problems: Vec::new(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(cause = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }
}

impl From<Problems> for ApiError {
    fn from(p: Problems) -> Self {
        let (status, code) = match p.1 {
            Unreadable::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Unreadable::NotUtf8 | Unreadable::Syntax => (StatusCode::BAD_REQUEST, "invalid_body"),
            Unreadable::No => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_spec"),
        };
        let message = p.to_string().trim_end().to_string();
        ApiError {
            status,
            code,
            message,
            problems: p.0,
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::RunNotFound(_) => ApiError::not_found(e.to_string()),
            EngineError::RunFinished(_) | EngineError::CannotRerun { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            EngineError::Stopped => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the server is shutting down",
            ),
            EngineError::Store(s) => ApiError::internal(s),
        }
    }
}

impl From<gantry_engine::ports::StoreError> for ApiError {
    fn from(e: gantry_engine::ports::StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if !self.problems.is_empty() {
            error["problems"] = serde_json::to_value(&self.problems).unwrap_or_default();
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}
