//! The sections not drawn yet (Services, Secrets, Runners, Deployments, Settings): each has
//! its place in the navigation and a page that says it is coming, with the API endpoint that
//! already answers.

use super::page::{self, NAV, Page};
use super::session::Session;
use askama::Template;
use axum::Extension;
use axum::extract::OriginalUri;
use axum::http::StatusCode;
use axum::response::Response;

#[derive(Template)]
#[template(path = "soon.html")]
struct SoonPage {
    page: Page,
    section: &'static str,
    api: &'static str,
}

/// The API endpoint that lists what a section will show.
fn api_of(path: &str) -> &'static str {
    match path {
        "/services" => "/api/v1/services",
        "/secrets" => "/api/v1/secrets",
        "/runners" => "/api/v1/runners",
        "/deploys" => "/api/v1/deployments",
        _ => "/openapi.json",
    }
}

pub async fn show(
    Extension(session): Extension<Session>,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let Some(&(path, section)) = NAV.iter().find(|(p, _)| *p == uri.path()) else {
        return page::not_found("There is no such page.");
    };
    page::render(
        StatusCode::OK,
        &SoonPage {
            page: Page::new(section, path, &session.csrf),
            section,
            api: api_of(path),
        },
    )
}
