//! Query parameters shared by the list endpoints: `limit`, from 1 to [`MAX_LIMIT`] (50 when
//! not given). A larger one is refused, not clamped, so a client learns the cap.

use super::ApiError;
use axum::http::StatusCode;

/// The most items one list call returns.
pub const MAX_LIMIT: u32 = 1000;
const DEFAULT_LIMIT: u32 = 50;

/// `limit` checked, or a 400 that says what it must be.
pub fn limit(given: Option<&str>) -> Result<u32, ApiError> {
    let Some(text) = given else {
        return Ok(DEFAULT_LIMIT);
    };
    match text.parse::<u32>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => {
            let shown: String = text.chars().take(64).collect();
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("`limit` must be a whole number from 1 to {MAX_LIMIT}, not `{shown}`"),
            ))
        }
    }
}
