//! The `Blobs` port: large data kept outside the database, by key (`logs/<run>.log`,
//! `events/<id>.json`), in an object store (a bucket, or a folder). Whole objects are written and read; a write of a key
//! replaces what was there, and a reader sees the old object or the new one, never a mix.

use async_trait::async_trait;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The store answered with an error, or could not be reached.
    #[error("object store {store}: {op} {key}: {cause}")]
    Store {
        store: String,
        op: &'static str,
        key: String,
        cause: String,
    },
    /// A local file could not be read or written.
    #[error("{what} {path}: {cause}")]
    File {
        what: &'static str,
        path: String,
        cause: std::io::Error,
    },
}

/// An object's key and when it was last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub key: String,
    pub modified_ms: i64,
    pub size: u64,
}

#[async_trait]
pub trait Blobs: Send + Sync + 'static {
    /// Where the objects are, for people (`s3://bucket/prefix`; never credentials).
    fn describe(&self) -> String;
    /// Writes the file at `path` as object `key` (streamed: the file's size does not matter).
    async fn put_file(&self, key: &str, path: &Path) -> Result<(), BlobError>;
    /// Writes object `key` into the file at `path`, made whole beside it and then put in place
    /// only if no file is there by then (one written meanwhile stands). `Ok(false)` when there
    /// is no such object.
    async fn get_file(&self, key: &str, path: &Path) -> Result<bool, BlobError>;
    /// Writes `bytes` as object `key`, durable when this returns (a folder's file and its
    /// directory entry are synced; S3 has it once it answers).
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError>;
    /// Object `key`'s bytes, whole; `Ok(None)` when there is no such object.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError>;
    /// Objects whose keys start with `prefix`.
    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError>;
    /// Deletes object `key`; deleting one that is not there is not an error.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
}
