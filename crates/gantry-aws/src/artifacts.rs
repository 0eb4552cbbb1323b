//! Code artifacts: a folder (or one file) zipped the same way every time — hidden files and
//! compiled Python left out, files in name
//! order, fixed times and modes — so unchanged code gives the same zip, the same S3 key and
//! an empty change set; and the artifacts bucket (`gantry-artifacts-<account>-<region>`),
//! made when missing, whose objects expire after 7 days.

use crate::{Aws, AwsError, Log};
use sha2::Digest;
use std::io::Write;
use std::path::Path;

/// Days an uploaded artifact is kept.
pub const KEEP_DAYS: i32 = 7;

/// `dir` (everything under it but hidden files and `*.pyc`) or a single file, zipped.
pub fn zip_path(path: &Path) -> Result<Vec<u8>, String> {
    let mut files = Vec::new();
    if path.is_file() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{} has no usable name", path.display()))?;
        files.push((name.to_string(), path.to_path_buf()));
    } else {
        collect(path, path, &mut files)?;
    }
    files.sort();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    for (name, file) in files {
        let bytes =
            std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        out.start_file(name, opts)
            .and_then(|_| out.write_all(&bytes).map_err(Into::into))
            .map_err(|e| format!("cannot zip {}: {e}", file.display()))?;
    }
    out.finish()
        .map(|c| c.into_inner())
        .map_err(|e| format!("cannot zip {}: {e}", path.display()))
}

fn collect(
    root: &Path,
    dir: &Path,
    files: &mut Vec<(String, std::path::PathBuf)>,
) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        // Hidden files (`.git`, `.env`…) and compiled Python stay out, as links do.
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.')
            || name == "__pycache__"
            || name.ends_with(".pyc")
            || meta.file_type().is_symlink()
        {
            continue;
        }
        if meta.is_dir() {
            collect(root, &path, files)?;
        } else {
            let rel = path
                .strip_prefix(root)
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .replace('\\', "/");
            files.push((rel, path));
        }
    }
    Ok(())
}

/// The key a zip is stored under: its content's digest, so the same code is the same object.
pub fn key_for(prefix: &str, zip: &[u8]) -> String {
    format!("{prefix}/{}.zip", hex::encode(sha2::Sha256::digest(zip)))
}

/// The artifacts bucket of this account and region, made (with its expiry rule) if missing.
pub async fn bucket(aws: &Aws, log: &Log<'_>) -> Result<String, AwsError> {
    let sts = aws_sdk_sts::Client::new(&aws.sdk_config);
    let who = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| AwsError::call("GetCallerIdentity", e))?;
    let account = who.account().unwrap_or("unknown");
    let name = format!("gantry-artifacts-{account}-{}", aws.region);
    if aws.s3.head_bucket().bucket(&name).send().await.is_ok() {
        return Ok(name);
    }
    let mut create = aws.s3.create_bucket().bucket(&name);
    if aws.region != "us-east-1" {
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    aws.region.as_str(),
                ))
                .build(),
        );
    }
    create
        .send()
        .await
        .map_err(|e| AwsError::call("CreateBucket", e))?;
    use aws_sdk_s3::types::{
        BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
        LifecycleRuleFilter,
    };
    let rule = LifecycleRule::builder()
        .id("gantry-artifacts-expire")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .expiration(LifecycleExpiration::builder().days(KEEP_DAYS).build())
        .build()
        .map_err(|e| AwsError::Failed(format!("lifecycle rule: {e}")))?;
    aws.s3
        .put_bucket_lifecycle_configuration()
        .bucket(&name)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(rule)
                .build()
                .map_err(|e| AwsError::Failed(format!("lifecycle: {e}")))?,
        )
        .send()
        .await
        .map_err(|e| AwsError::call("PutBucketLifecycleConfiguration", e))?;
    log(&format!(
        "made the artifacts bucket {name} (objects expire after {KEEP_DAYS} days)"
    ));
    Ok(name)
}

/// Uploads `zip` under `key` unless an object is there already (same key, same content).
pub async fn upload(aws: &Aws, bucket: &str, key: &str, zip: Vec<u8>) -> Result<bool, AwsError> {
    if aws
        .s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .is_ok()
    {
        return Ok(false);
    }
    aws.s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(zip.into())
        .send()
        .await
        .map_err(|e| AwsError::call("PutObject", e))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_same_files_zip_to_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/.git")).unwrap();
        std::fs::write(dir.path().join("src/index.js"), "exports.handler = 1").unwrap();
        std::fs::write(dir.path().join("src/.git/HEAD"), "ref").unwrap();
        std::fs::write(dir.path().join(".env"), "SECRET=1").unwrap();
        std::fs::write(dir.path().join("package.json"), "{}").unwrap();
        let a = super::zip_path(dir.path()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(dir.path().join("package.json"), "{}").unwrap();
        let b = super::zip_path(dir.path()).unwrap();
        assert_eq!(a, b, "times do not change the zip");
        assert_eq!(super::key_for("s", &a), super::key_for("s", &b));
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(a)).unwrap();
        let names: Vec<String> = (0..z.len())
            .map(|i| z.by_index(i).unwrap().name().to_string())
            .collect();
        assert_eq!(
            names,
            ["package.json", "src/index.js"],
            ".git and .env left out"
        );
        std::fs::write(dir.path().join("package.json"), "{\"x\":1}").unwrap();
        assert_ne!(super::zip_path(dir.path()).unwrap(), b);
    }
}
