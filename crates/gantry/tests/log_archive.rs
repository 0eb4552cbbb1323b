//! Finished runs' logs in an object store (`GANTRY_BLOB_URL`), on the AWS emulator's S3
//! (moto's server, real HTTP, the `object_store` crate's S3 client): a finished run's log is
//! archived under the URL's prefix; a server without the file (another server ran it, or it
//! was removed) serves the log from the archive; a missing bucket or a URL that names nothing
//! usable stops the server at start with the reason.

mod common;
#[path = "common/moto.rs"]
mod moto;

use common::Server;
use std::process::Command;

#[tokio::test]
async fn finished_logs_go_to_s3_and_come_back_from_it() {
    let emulator = moto::Emulator::start();
    moto::make_bucket(&emulator, "gantry-logs").await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = emulator.env();
    env.push(("GANTRY_BLOB_URL".into(), "s3://gantry-logs/ci".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = Server::start_with(dir.path(), &env).await;

    let id = s
        .submit_yaml(
            "name: archived\njobs:\n  a: {run: [\"echo hello-archive; echo second line\"]}\n",
        )
        .await;
    let run = s.wait_finished(&id, 30).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let key = format!("gantry-logs/ci/logs/{id}.log");
    let archived = common::eventually(20, "the log in the bucket", async || {
        moto::object(&emulator, &key).await
    })
    .await;
    let text = String::from_utf8_lossy(&archived);
    assert!(text.contains("hello-archive"), "{text}");

    // The file gone from this server (as on a server that did not run the job): the log is
    // fetched from the archive, whole.
    let before = s.job_log(&id, "a").await;
    assert!(before.ends_with("hello-archive\nsecond line\n"), "{before}");
    let local = dir.path().join("logs").join(format!("{id}.log"));
    assert!(local.exists());
    std::fs::remove_file(&local).unwrap();
    assert_eq!(s.job_log(&id, "a").await, before);
    assert_eq!(
        std::fs::read(&local).unwrap(),
        archived,
        "fetched back as archived"
    );
}

#[tokio::test]
async fn a_missing_bucket_or_a_bad_url_stops_the_server_at_start() {
    let emulator = moto::Emulator::start();
    for (url, want) in [
        (
            "s3://no-such-bucket/x",
            "cannot use the object store s3://no-such-bucket/x",
        ),
        (
            "gs://elsewhere",
            "expected file:///folder or s3://bucket[/prefix]",
        ),
        (
            "s3://key:hunter2@bucket",
            "an S3 URL is s3://bucket or s3://bucket/prefix",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(common::gantry_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .envs(emulator.env())
            .env("GANTRY_BLOB_URL", url)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url}: {stderr}");
        assert!(stderr.contains(want), "{url}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}
