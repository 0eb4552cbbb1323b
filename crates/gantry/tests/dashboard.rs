//! The web dashboard against a real `gantry serve`, over plain HTTP (no browser): pages, filters,
//! pages of runs, the graph, logs, escaping, 404s, login, CSRF and the security headers; the
//! Events and Rules pages in `dashboard/bus_pages.rs`, Services, Secrets, Runners, Deployments
//! and Settings in `dashboard/ops_pages.rs`.

#[path = "dashboard/bus_pages.rs"]
mod bus_pages;
mod common;
#[path = "common/deployer.rs"]
mod deployer;
#[path = "dashboard/live.rs"]
mod live;
#[path = "dashboard/ops_pages.rs"]
mod ops_pages;
#[path = "common/runners.rs"]
mod rig;
#[path = "dashboard/snapshots.rs"]
mod snapshots;

use common::Server;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// A browser stand-in: no redirects followed, cookies kept by hand, no bearer token.
struct Browser {
    http: reqwest::Client,
    url: String,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        self.body[at..].split('"').next().unwrap().to_string()
    }

    fn html(&self) -> bool {
        self.headers
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/html"))
    }
}

impl Browser {
    fn new(s: &Server) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            url: s.url.clone(),
            cookies: Vec::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = if self.cookies.is_empty() {
            req
        } else {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req.header(COOKIE, c.join("; "))
        };
        let resp = req.send().await.unwrap();
        for set in resp.headers().get_all(SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() {
                self.cookies.push((k.to_string(), v.to_string()));
            }
        }
        Page {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self
            .http
            .get(format!("{}{path}", self.url))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8");
        self.send(req).await
    }

    async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self
            .http
            .post(format!("{}{path}", self.url))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("origin", self.url.clone())
            .body(serde_urlencoded::to_string(form).unwrap());
        self.send(req).await
    }
}

fn csp_ok(p: &Page) {
    // Nothing inline, as the policy demands: no style attributes or elements, no handlers,
    // and scripts only from files.
    for inline in [" style=", "<style", " onclick=", " onload=", "javascript:"] {
        assert!(!p.body.contains(inline), "{inline} in {}", p.body);
    }
    assert!(
        p.body
            .split("<script")
            .skip(1)
            .all(|tag| tag.starts_with(" src=\"/assets/")),
        "{}",
        p.body
    );
    assert_eq!(
        p.headers
            .get(CONTENT_SECURITY_POLICY)
            .map(|v| v.to_str().unwrap()),
        Some(CSP)
    );
}

/// The rows of the runs table: the ids, in order.
fn row_ids(body: &str) -> Vec<String> {
    body.split("<tr data-run-id=\"")
        .skip(1)
        .map(|r| r.split('"').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn runs_list_shows_runs_filters_them_and_pages_through_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let ok = s
        .submit_yaml("name: first-ok\njobs:\n  a: {run: [\"true\"]}\n")
        .await;
    let (st, body) = s
        .post(
            "/api/v1/runs?branch=main&event=push",
            "application/yaml",
            "name: pushed\njobs:\n  a: {run: [\"exit 3\"]}\n",
        )
        .await;
    assert_eq!(st, 202);
    let pushed = body["run_id"].as_str().unwrap().to_string();
    let third = s
        .submit_yaml("name: third\njobs:\n  a: {run: [\"true\"]}\n")
        .await;
    for id in [&ok, &pushed, &third] {
        s.wait_finished(id, 20).await;
    }

    let mut b = Browser::new(&s);
    let home = b.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.html());
    csp_ok(&home);
    assert_eq!(
        row_ids(&home.body),
        [third.as_str(), pushed.as_str(), ok.as_str()],
        "newest first"
    );
    assert!(home.body.contains("first-ok") && home.body.contains("pushed"));
    assert!(home.body.contains("st-failed"), "{}", home.body);
    assert!(home.body.contains("<th scope=\"col\">Status</th>"));
    for section in [
        "/events",
        "/rules",
        "/services",
        "/secrets",
        "/runners",
        "/deploys",
        "/settings",
    ] {
        assert!(
            home.body.contains(&format!("href=\"{section}\"")),
            "{section}"
        );
        let p = b.get(section).await;
        assert_eq!(p.status, 200, "{section}");
        csp_ok(&p);
        assert!(!p.body.contains("coming soon"), "{section}");
    }

    assert_eq!(
        row_ids(&b.get("/?status=failed").await.body),
        [pushed.as_str()]
    );
    assert_eq!(
        row_ids(&b.get("/?branch=main").await.body),
        [pushed.as_str()]
    );
    assert_eq!(
        row_ids(&b.get("/?event=push").await.body),
        [pushed.as_str()]
    );
    assert_eq!(
        row_ids(&b.get("/?event=api&status=succeeded").await.body),
        [third.as_str(), ok.as_str()]
    );
    let none = b.get("/?repo=o/nothing").await;
    assert!(row_ids(&none.body).is_empty() && none.body.contains("No runs match"));
    assert_eq!(b.get("/?status=bogus").await.status, 400);

    // Two per page: the "older" link carries the last id and the filters.
    let first = b.get("/?limit=2").await;
    assert_eq!(row_ids(&first.body), [third.as_str(), pushed.as_str()]);
    let href = first
        .body
        .split("rel=\"next\" href=\"")
        .nth(1)
        .expect("an older link")
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&");
    assert_eq!(href, format!("/?limit=2&before={pushed}"));
    let second = b.get(&href).await;
    assert_eq!(row_ids(&second.body), [ok.as_str()]);
    assert!(
        !second.body.contains("rel=\"next\""),
        "the last page links no further"
    );
    assert!(
        second.body.contains("href=\"/?limit=2\">Newest"),
        "{}",
        second.body
    );

    // The assets the pages use, served by the binary itself.
    let css = b.get("/assets/app.css").await;
    assert_eq!(css.status, 200);
    assert!(css.body.contains("prefers-color-scheme: dark"));
    let js = b.get("/assets/app.js").await;
    assert_eq!(js.status, 200);
    assert!(js.body.contains("/api/v1/runs"));
}

#[tokio::test]
async fn run_page_shows_jobs_graph_and_escaped_logs() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let spec = "name: '<script>alert(1)</script>'\npr: {repo: o/r, number: 7}\njobs:\n  build: {run: [\"sleep 0.3; printf '<script>x</script> \\\\033[31mred\\\\033[0m\\\\n'\"]}\n  test: {needs: [build], run: [\"exit 4\"]}\n  lint: {run: [\"true\"]}\n";
    let id = s.submit_yaml(spec).await;
    s.wait_finished(&id, 20).await;

    let mut b = Browser::new(&s);
    let p = b.get(&format!("/runs/{id}")).await;
    assert_eq!(p.status, 200);
    csp_ok(&p);
    assert!(!p.body.contains("<script>alert"), "the run name is escaped");
    assert!(p.body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    for job in ["build", "test", "lint"] {
        assert!(
            p.body.contains(&format!("<tr data-job=\"{job}\">")),
            "{job}"
        );
        assert!(
            p.body.contains(&format!("href=\"{id}/jobs/{job}\"")),
            "{job}"
        );
    }
    assert!(p.body.contains("<td>4</td></tr>"), "the exit code");
    assert!(
        p.body.contains("href=\"https://github.com/o/r/pull/7\""),
        "the pull request is linked"
    );
    let svg = &p.body[p.body.find("<svg").unwrap()..p.body.find("</svg>").unwrap()];
    assert_eq!(svg.matches("<use href=\"#job-box\"").count(), 3);
    assert_eq!(svg.matches("<path").count(), 1, "only the critical path's");
    assert!(
        svg.contains("class=\"edge crit\" d=\"M"),
        "build → test: {svg}"
    );
    assert!(
        svg.contains("class=\"node st-failed crit\" data-job=\"test\""),
        "{svg}"
    );
    assert!(svg.contains("class=\"edge crit\""), "{svg}");
    assert!(p.body.contains("critical path: build → test"), "{}", p.body);
    assert!(p.body.contains("action=\"/runs/") && p.body.contains("/rerun\""));
    assert!(
        !p.body.contains("/cancel\""),
        "a finished run has no cancel button"
    );

    let log = b.get(&format!("/runs/{id}/jobs/build")).await;
    assert_eq!(log.status, 200);
    csp_ok(&log);
    assert!(!log.body.contains("<script>x"), "the log is escaped");
    assert!(
        log.body.contains("&lt;script&gt;x&lt;/script&gt;"),
        "{}",
        log.body
    );
    assert!(
        log.body.contains("<span class=\"fg1\">red</span>"),
        "{}",
        log.body
    );
    assert!(!log.body.contains('\u{1b}'));
    assert!(log.body.contains(&format!(
        "href=\"/api/v1/runs/{id}/jobs/build/log?attempt=1\""
    )));
    assert!(
        !log.body.contains("id=\"follow\""),
        "a finished log is not followed"
    );
    assert_eq!(b.get(&format!("/runs/{id}/jobs/nope")).await.status, 404);
    assert_eq!(
        b.get(&format!("/runs/{id}/jobs/build?attempt=9"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn unknown_pages_get_an_html_404_and_wrong_methods_a_405() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let mut b = Browser::new(&s);
    for path in [
        "/runs/01NOSUCHRUN",
        "/no/such/page",
        "/runs/01X/jobs/a",
        "/assets/nope.js",
    ] {
        let p = b.get(path).await;
        assert_eq!(p.status, 404, "{path}");
        assert!(p.html(), "{path}");
        assert!(p.body.contains("<h1>Not found</h1>"), "{path}");
        csp_ok(&p);
    }
    let escaped = b.get("/runs/%3Cscript%3E").await;
    assert_eq!(escaped.status, 404);
    assert!(!escaped.body.contains("<script>"), "{}", escaped.body);
    // Clients that do not ask for HTML get the API's JSON 404 outside the dashboard's paths.
    let (st, body) = s.get("/no/such/page").await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (st, body) = s.get("/api/v1/nope").await;
    assert_eq!(
        (st, body["error"]["message"].as_str()),
        (404, Some("no such route"))
    );
    // A form's route asked with GET: a page that says so, and the methods it takes.
    let p = b.get("/runs/01X/cancel").await;
    assert_eq!(p.status, 405);
    assert!(p.html());
    assert!(
        p.body
            .contains("/runs/01X/cancel does not take GET requests."),
        "{}",
        p.body
    );
    assert_eq!(p.headers["allow"], "POST");
    csp_ok(&p);
    let (st, body) = s.get("/api/v1/runs/01X/cancel").await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
}

#[tokio::test]
async fn with_a_token_pages_need_a_login_and_forms_a_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("GANTRY_API_TOKEN", common::TOKEN)]).await;
    let id = s
        .submit_yaml("name: long\njobs:\n  a: {run: [\"echo started; sleep 30\"]}\n")
        .await;
    s.wait_run(&id, 20, |r| r["status"] == "running").await;

    let mut b = Browser::new(&s);
    let home = b.get("/").await;
    assert_eq!(home.status, 303);
    assert_eq!(home.location(), "/login");
    csp_ok(&home);
    assert_eq!(b.get(&format!("/runs/{id}")).await.location(), "/login");
    let (st, _) = {
        let r = b
            .http
            .get(format!("{}/api/v1/runs", s.url))
            .send()
            .await
            .unwrap();
        (r.status(), ())
    };
    assert_eq!(st, 401, "the API needs the token or a session");

    let form = b.get("/login").await;
    assert_eq!(form.status, 200);
    csp_ok(&form);
    let login_csrf = form.csrf();
    assert!(!form.body.contains(common::TOKEN));
    let wrong = b
        .post_form("/login", &[("token", "wrong"), ("csrf", &login_csrf)])
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("not the API token"));
    assert!(b.cookies.iter().all(|(k, _)| k != "gantry_session"));
    let forged = b
        .post_form("/login", &[("token", common::TOKEN), ("csrf", "forged")])
        .await;
    assert_eq!(forged.status, 403);

    let form = b.get("/login").await;
    let ok = b
        .post_form(
            "/login",
            &[("token", common::TOKEN), ("csrf", &form.csrf())],
        )
        .await;
    assert_eq!(ok.status, 303);
    assert_eq!(ok.location(), "/");
    let set = ok
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("gantry_session="))
        .expect("a session cookie");
    let value = set
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("gantry_session=");
    assert_eq!(value.len(), 64, "{set}");
    assert!(!set.contains(common::TOKEN));
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.split("; ").any(|a| a == attr), "{attr} in {set}");
    }

    let home = b.get("/").await;
    assert_eq!(home.status, 200);
    assert_eq!(row_ids(&home.body), [id.as_str()]);
    // The dashboard's script reads the API with the cookie, GET only.
    let cookie = format!("gantry_session={value}");
    let http = b.http.clone();
    let api = |m: reqwest::Method, path: &str| {
        http.request(m, format!("{}{path}", s.url))
            .header(COOKIE, cookie.clone())
    };
    assert_eq!(
        api(reqwest::Method::GET, "/api/v1/runs")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let post = api(reqwest::Method::POST, &format!("/api/v1/runs/{id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        post.status(),
        401,
        "a session cookie changes nothing through the API"
    );

    // A running job's page offers to follow its log, and the event stream it follows takes
    // the cookie.
    let log = b.get(&format!("/runs/{id}/jobs/a")).await;
    assert_eq!(log.status, 200);
    assert!(log.body.contains("id=\"follow\"") && log.body.contains("data-live"));
    let stream = api(
        reqwest::Method::GET,
        &format!("/api/v1/runs/{id}/jobs/a/log"),
    )
    .header("accept", "text/event-stream")
    .send()
    .await
    .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    drop(stream);

    let run = b.get(&format!("/runs/{id}")).await;
    assert_eq!(run.status, 200);
    let csrf = run.csrf();
    let cancel = format!("/runs/{id}/cancel");
    assert_eq!(b.post_form(&cancel, &[]).await.status, 403, "no CSRF token");
    let forged = b.post_form(&cancel, &[("csrf", "0123abcd")]).await;
    assert_eq!(forged.status, 403, "a forged CSRF token");
    csp_ok(&forged);
    assert_eq!(
        s.get(&format!("/api/v1/runs/{id}")).await.1["status"],
        "running"
    );
    let done = b.post_form(&cancel, &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location(), format!("/runs/{id}"));
    let run = s.wait_finished(&id, 20).await;
    assert_eq!(run["status"], "cancelled");

    // Logging out ends the session: the cookie opens nothing any more.
    let csrf = b.get("/").await.csrf();
    let out = b.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!((out.status.as_u16(), out.location()), (303, "/login"));
    let old = b
        .http
        .get(format!("{}/", s.url))
        .header(COOKIE, cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 303);
}

#[tokio::test]
async fn rerun_goes_through_its_form_and_other_sites_cannot_post() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let id = s
        .submit_yaml("name: flaky\njobs:\n  a: {run: [\"exit 1\"]}\n")
        .await;
    s.wait_finished(&id, 20).await;

    let mut b = Browser::new(&s);
    let run = b.get(&format!("/runs/{id}")).await;
    assert!(
        b.cookies.iter().any(|(k, _)| k == "gantry_session"),
        "without a token a visitor gets a session, for CSRF tokens"
    );
    let csrf = run.csrf();
    let rerun = format!("/runs/{id}/rerun");

    // A page on another site: the guard refuses its origin before any form is read.
    let cross = b
        .http
        .post(format!("{}{rerun}", s.url))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("origin", "https://evil.example")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    // Form bodies still go nowhere in the API.
    let form_to_api = b
        .http
        .post(format!("{}/api/v1/runs/{id}/rerun", s.url))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(form_to_api.status(), 415);
    assert_eq!(
        s.get(&format!("/api/v1/runs/{id}")).await.1["jobs"][0]["attempt"],
        1
    );

    let ok = b.post_form(&rerun, &[("csrf", &csrf)]).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let run = s
        .wait_run(&id, 20, |r| {
            r["jobs"][0]["attempt"] == 2 && r["status"] == "failed"
        })
        .await;
    assert_eq!(run["jobs"][0]["exit_code"], 1);
    let page = b.get(&format!("/runs/{id}/jobs/a")).await;
    assert!(
        page.body.contains("href=\"?attempt=1\""),
        "earlier attempts are linked"
    );
    let again = b
        .post_form(&format!("/runs/{id}/cancel"), &[("csrf", &csrf)])
        .await;
    assert_eq!(again.status, 409, "a finished run cannot be cancelled");
    assert!(again.html());
}

#[tokio::test]
async fn pages_are_gzipped_for_browsers_that_ask_and_streams_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let names: String = (0..200)
        .map(|i| format!("  job-{i:03}: {{run: [\"true\"]}}\n"))
        .collect();
    let id = s.submit_yaml(&format!("name: wide\njobs:\n{names}")).await;
    s.wait_finished(&id, 60).await;
    let get = |path: String| {
        s.http
            .get(format!("{}{path}", s.url))
            .header("accept", "text/html")
            .header("accept-encoding", "gzip")
            .send()
    };
    let page = get(format!("/runs/{id}")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-encoding"], "gzip");
    let wire = page.bytes().await.unwrap().len();
    let plain = s
        .http
        .get(format!("{}/runs/{id}", s.url))
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let raw = plain.bytes().await.unwrap().len();
    assert!(wire * 5 < raw, "{wire} bytes gzipped of {raw}");
    let live = get("/live".into()).await.unwrap();
    assert!(live.headers().get("content-encoding").is_none());
}
