//! The `Blobs` port on object stores, through `object_store`: a local folder
//! (`file:///path`) or an S3 bucket (`s3://bucket/prefix`; AWS or any S3-compatible storage,
//! configured as the AWS SDKs are: `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, …).
//! Files go up in parts (multipart uploads for large ones) and come down into a file made
//! whole beside its place and then linked into it, so a reader never sees half an object.

use async_trait::async_trait;
use futures_util::StreamExt;
use gantry_engine::ports::{BlobError, BlobMeta, Blobs};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt};
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// A blob URL that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("the object store URL {url}: {why}")]
pub struct BadBlobUrl {
    url: String,
    why: String,
}

/// An object store, and the URL it was made from (for messages).
pub struct ObjectBlobs {
    store: Arc<dyn ObjectStore>,
    url: String,
}

/// The URL without user information (a password must not reach a message).
fn shown(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

impl ObjectBlobs {
    /// The object store `url` names: `file:///absolute/folder` (made if missing) or
    /// `s3://bucket` with an optional key prefix (`s3://bucket/gantry`).
    pub fn from_url(url: &str) -> Result<ObjectBlobs, BadBlobUrl> {
        let bad = |why: String| BadBlobUrl {
            url: shown(url),
            why,
        };
        let store: Arc<dyn ObjectStore> = if let Some(dir) = url.strip_prefix("file://") {
            if !dir.starts_with('/') {
                return Err(bad(
                    "a file URL names an absolute folder: file:///path".into()
                ));
            }
            std::fs::create_dir_all(dir).map_err(|e| bad(format!("cannot make {dir}: {e}")))?;
            // Synced as it is written: a put is durable when it returns, as on S3.
            Arc::new(
                LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| bad(e.to_string()))?
                    .with_fsync(true),
            )
        } else if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() || bucket.contains('@') {
                return Err(bad("an S3 URL is s3://bucket or s3://bucket/prefix".into()));
            }
            let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
            // The AWS SDKs' variable for another endpoint (an S3-compatible store, an emulator).
            if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
                b = b
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_endpoint(endpoint);
            }
            if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none()
            {
                b = b.with_region("us-east-1");
            }
            let s3 = b.build().map_err(|e| bad(e.to_string()))?;
            let prefix = prefix.trim_matches('/');
            if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(PrefixStore::new(s3, prefix))
            }
        } else {
            return Err(bad("expected file:///folder or s3://bucket[/prefix]".into()));
        };
        Ok(ObjectBlobs {
            store,
            url: shown(url),
        })
    }

    fn failed(&self, op: &'static str, key: &str, cause: impl std::fmt::Display) -> BlobError {
        BlobError::Store {
            store: self.url.clone(),
            op,
            key: key.to_string(),
            cause: cause.to_string(),
        }
    }
}

fn file_error(what: &'static str, path: &Path, cause: std::io::Error) -> BlobError {
    BlobError::File {
        what,
        path: path.display().to_string(),
        cause,
    }
}

#[async_trait]
impl Blobs for ObjectBlobs {
    fn describe(&self) -> String {
        self.url.clone()
    }

    async fn put_file(&self, key: &str, path: &Path) -> Result<(), BlobError> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| file_error("cannot open", path, e))?;
        let mut up = BufWriter::new(self.store.clone(), Key::from(key));
        let copied = tokio::io::copy(&mut file, &mut up).await;
        if let Err(e) = copied {
            let _ = up.abort().await;
            return Err(self.failed("put", key, e));
        }
        up.shutdown().await.map_err(|e| self.failed("put", key, e))
    }

    async fn get_file(&self, key: &str, path: &Path) -> Result<bool, BlobError> {
        let got = match self.store.get(&Key::from(key)).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(self.failed("get", key, e)),
        };
        // A part file of this fetch's own (readers may fetch at once), linked into place only
        // if nothing is there by then: a file written meanwhile is never replaced.
        static FETCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = FETCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut part = path.as_os_str().to_owned();
        part.push(format!(".part-{}-{n}", std::process::id()));
        let part = std::path::PathBuf::from(part);
        let mut out = tokio::fs::File::create(&part)
            .await
            .map_err(|e| file_error("cannot create", &part, e))?;
        let mut chunks = got.into_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| self.failed("get", key, e))?;
            out.write_all(&chunk)
                .await
                .map_err(|e| file_error("cannot write", &part, e))?;
        }
        out.sync_all()
            .await
            .map_err(|e| file_error("cannot sync", &part, e))?;
        let linked = tokio::fs::hard_link(&part, path).await;
        let _ = tokio::fs::remove_file(&part).await;
        match linked {
            Ok(()) => Ok(true),
            // Someone put the file there first: theirs stands.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(true),
            Err(e) => Err(file_error("cannot link into place", path, e)),
        }
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        self.store
            .put(&Key::from(key), bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| self.failed("put", key, e))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        let got = match self.store.get(&Key::from(key)).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.failed("get", key, e)),
        };
        let bytes = got.bytes().await.map_err(|e| self.failed("get", key, e))?;
        Ok(Some(bytes.to_vec()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        let prefix_key = Key::from(prefix);
        let mut listed = self.store.list(Some(&prefix_key));
        let mut out = Vec::new();
        while let Some(meta) = listed.next().await {
            let meta = meta.map_err(|e| self.failed("list", prefix, e))?;
            out.push(BlobMeta {
                key: meta.location.to_string(),
                modified_ms: meta.last_modified.timestamp_millis(),
                size: meta.size,
            });
        }
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&Key::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failed("delete", key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_shown_without_credentials() {
        for (url, why) in [
            (
                "ftp://x/y",
                "expected file:///folder or s3://bucket[/prefix]",
            ),
            ("file://relative/dir", "absolute folder"),
            ("s3://", "s3://bucket or s3://bucket/prefix"),
            (
                "s3://user:secret@bucket",
                "s3://bucket or s3://bucket/prefix",
            ),
        ] {
            let e = ObjectBlobs::from_url(url).err().unwrap().to_string();
            assert!(e.contains(why), "{url}: {e}");
            assert!(!e.contains("secret"), "{e}");
        }
        assert_eq!(shown("s3://k:pw@b/p"), "s3://b/p");
    }

    #[tokio::test]
    async fn a_folder_keeps_files_whole_lists_and_deletes_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let blobs = ObjectBlobs::from_url(&format!("file://{}", root.display())).unwrap();
        let src = dir.path().join("a.log");
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&src, &body).unwrap();
        blobs.put_file("logs/r1.log", &src).await.unwrap();
        let back = dir.path().join("back.log");
        assert!(blobs.get_file("logs/r1.log", &back).await.unwrap());
        assert_eq!(std::fs::read(&back).unwrap(), body);
        assert!(!blobs.get_file("logs/none.log", &back).await.unwrap());
        let listed = blobs.list("logs").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, "logs/r1.log");
        assert_eq!(listed[0].size, body.len() as u64);
        blobs.delete("logs/r1.log").await.unwrap();
        blobs.delete("logs/r1.log").await.unwrap();
        assert!(blobs.list("logs").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn bytes_are_put_and_got_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let blobs = ObjectBlobs::from_url(&format!("file://{}", root.display())).unwrap();
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        blobs.put("events/e1.json", body.clone()).await.unwrap();
        assert_eq!(blobs.get("events/e1.json").await.unwrap(), Some(body));
        assert!(
            root.join("events").join("e1.json").exists(),
            "a file in the folder"
        );
        assert_eq!(blobs.get("events/none.json").await.unwrap(), None);
        blobs
            .put("events/e1.json", b"again".to_vec())
            .await
            .unwrap();
        let again = blobs.get("events/e1.json").await.unwrap();
        assert_eq!(again.as_deref(), Some(&b"again"[..]), "a put replaces");
    }
}
