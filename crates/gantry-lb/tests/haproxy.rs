//! The HAProxy target groups against a real HAProxy (Debian's, installed by `scripts/test-deps`)
//! started here with an admin socket, and a real HTTP target behind it.

use gantry_engine::ports::{Target, TargetGroupError, TargetGroups, TargetHealth, TargetStatus};
use gantry_lb::{HaproxyGroup, HaproxyTargetGroups};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts HAProxy in the foreground (killed when the test ends) with one frontend → `auth_be`.
fn haproxy(dir: &Path, front: u16) -> tokio::process::Child {
    let deps = format!("{}/../../scripts/test-deps", env!("CARGO_MANIFEST_DIR"));
    let st = std::process::Command::new(deps).status().unwrap();
    assert!(st.success(), "scripts/test-deps failed");
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n    stats socket {}/admin.sock level admin\n\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 5s\n    timeout server 5s\n\
             frontend fe\n    bind 127.0.0.1:{front}\n    default_backend auth_be\n\
             backend auth_be\n    balance roundrobin\n    option httpchk GET /\n",
            dir.display()
        ),
    )
    .unwrap();
    tokio::process::Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .kill_on_drop(true)
        .spawn()
        .expect("start haproxy")
}

async fn target_server() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|| async { "hello from the target" }),
    );
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    port
}

async fn get(port: u16) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return (0, String::new());
    };
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    let code = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, out)
}

async fn wait_health(tg: &HaproxyTargetGroups, t: &Target, want: TargetHealth) -> TargetStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = tg.health("auth", t).await.unwrap();
        if h.health == want {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {h:?}, wanted {want:?}",
            t.id
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn targets_are_registered_checked_drained_and_removed_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let front = free_port();
    let _haproxy = haproxy(dir.path(), front);
    let socket = dir.path().join("admin.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "HAProxy did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tg = HaproxyTargetGroups::new(HashMap::from([(
        "auth".to_string(),
        HaproxyGroup {
            socket: socket.clone(),
            backend: "auth_be".into(),
            check_interval_ms: 200,
            healthy_threshold: 2,
        },
    )]));
    assert_eq!(get(front).await.0, 503, "no servers yet");

    let port = target_server().await;
    let t = Target {
        id: "task-1".into(),
        address: "127.0.0.1".into(),
        port,
    };
    tg.register("auth", &t).await.unwrap();
    wait_health(&tg, &t, TargetHealth::Healthy).await;
    let (code, body) = get(front).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("hello from the target"));

    // A target nobody listens on goes unhealthy.
    let dead = Target {
        id: "task-dead".into(),
        address: "127.0.0.1".into(),
        port: free_port(),
    };
    tg.register("auth", &dead).await.unwrap();
    let down = wait_health(&tg, &dead, TargetHealth::Unhealthy).await;
    // HAProxy's check says why: a refused connection.
    let why = down.reason.unwrap_or_default();
    assert!(why.starts_with("L4CON"), "{why}");
    tg.deregister("auth", &dead).await.unwrap();

    tg.drain("auth", &t).await.unwrap();
    wait_health(&tg, &t, TargetHealth::Draining).await;
    tg.deregister("auth", &t).await.unwrap();
    tg.deregister("auth", &t).await.unwrap(); // gone already: fine
    assert_eq!(get(front).await.0, 503);
    assert!(tg.health("auth", &t).await.is_err());

    // Errors name the problem.
    let dup = tg.register("auth", &t).await;
    assert!(dup.is_ok(), "re-registering after removal works: {dup:?}");
    let err = tg.register("auth", &t).await.unwrap_err();
    assert!(matches!(err, TargetGroupError::Refused { .. }), "{err}");
    assert!(matches!(
        tg.register("nope", &t).await.unwrap_err(),
        TargetGroupError::UnknownGroup(_)
    ));
    let gone = HaproxyTargetGroups::new(HashMap::from([(
        "auth".to_string(),
        HaproxyGroup {
            socket: dir.path().join("missing.sock"),
            backend: "auth_be".into(),
            check_interval_ms: 200,
            healthy_threshold: 2,
        },
    )]));
    let err = gone.register("auth", &t).await.unwrap_err();
    assert!(err.to_string().contains("cannot be reached"), "{err}");
}
