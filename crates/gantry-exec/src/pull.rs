//! Pulling an image the Docker host does not have, as `docker run` would: [`ensure_image`]
//! looks the image up, and when it is missing pulls it from its registry with the credentials
//! [`RegistryAuth`] finds for that registry. Progress goes to a log sink as a few readable
//! lines (the pull, each layer once it is in, the digest pulled), not the Engine's progress
//! bars; a failure names the image, its registry and the registry's reason. Pulls of the same
//! image wait for each other: the second finds the image there and pulls nothing.
//!
//! References are read as Docker reads them: `[host[:port]/]path[:tag][@digest]`, the first
//! part a registry host if it has a `.` or a `:` or is `localhost`, else Docker Hub
//! (`docker.io`); no tag and no digest means `latest`.

use crate::registry_auth::RegistryAuth;
use bollard::Docker;
use bollard::query_parameters::CreateImageOptions;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

/// An image reference, split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// `host[:port]`, or `docker.io`.
    pub registry: String,
    /// The name without tag or digest, as written (`127.0.0.1:5000/x/y`, `busybox`).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// Reads `image`; an error says what is wrong with it.
    pub fn parse(image: &str) -> Result<ImageRef, String> {
        let bad = |why: &str| Err(format!("`{image}` is not an image reference: {why}"));
        if image.is_empty() {
            return bad("it is empty");
        }
        if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("it has white space");
        }
        let (rest, digest) = match image.split_once('@') {
            None => (image, None),
            Some((rest, digest)) => {
                let ok = digest.split_once(':').is_some_and(|(alg, hex)| {
                    !alg.is_empty()
                        && alg.chars().all(|c| c.is_ascii_alphanumeric())
                        && hex.len() >= 32
                        && hex.chars().all(|c| c.is_ascii_hexdigit())
                });
                if !ok {
                    return bad("the digest after `@` is not like sha256:<hex>");
                }
                (rest, Some(digest.to_string()))
            }
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let (repo, tag) = rest.split_at(last_slash + i);
                (repo, Some(tag[1..].to_string()))
            }
            None => (rest, None),
        };
        if let Some(tag) = &tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                return bad("the tag after `:` may have only letters, digits, `_`, `.` and `-`");
            }
        }
        let parts: Vec<&str> = repository.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return bad("the name has an empty part");
        }
        let first = parts[0];
        let has_host =
            parts.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost");
        let path = if has_host { &parts[1..] } else { &parts[..] };
        let path_ok = |p: &&str| {
            p.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
        };
        if !path.iter().all(path_ok) {
            return bad("the name may have only lower-case letters, digits, `.`, `_` and `-`");
        }
        Ok(ImageRef {
            registry: if has_host {
                first.to_string()
            } else {
                "docker.io".to_string()
            },
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// The tag, or `latest` when there is neither tag nor digest.
    fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }

    /// What is pulled: `repo@digest`, else `repo:tag` (`:latest` by default).
    pub fn reference(&self) -> String {
        match &self.digest {
            Some(d) => format!("{}@{d}", self.repository),
            None => format!("{}:{}", self.repository, self.tag_or_latest()),
        }
    }
}

/// Makes sure `image` is on the Docker host: nothing when it is, else a pull from its
/// registry, with progress as lines through `log`. The error names the image and why.
pub async fn ensure_image(
    docker: &Docker,
    image: &str,
    auth: &RegistryAuth,
    log: &(dyn Fn(&str) + Sync),
) -> Result<(), String> {
    if present(docker, image).await? {
        return Ok(());
    }
    let r = ImageRef::parse(image)?;
    let reference = r.reference();
    let _flight = Flight::join(&reference).await;
    // Another pull of it may have ended while this one waited.
    if present(docker, image).await? {
        log(&format!(
            "{reference} is here: another pull got it meanwhile"
        ));
        return Ok(());
    }
    pull(docker, &r, auth, log).await?;
    if !present(docker, image).await? {
        return Err(format!(
            "pulled {reference}, but the Docker host still has no image `{image}`"
        ));
    }
    Ok(())
}

/// Whether the Docker host has `image`.
async fn present(docker: &Docker, image: &str) -> Result<bool, String> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(e) => Err(format!("cannot inspect image `{image}`: {e}")),
    }
}

async fn pull(
    docker: &Docker,
    r: &ImageRef,
    auth: &RegistryAuth,
    log: &(dyn Fn(&str) + Sync),
) -> Result<(), String> {
    let reference = r.reference();
    let credentials = auth.docker_credentials(&r.registry);
    let password = credentials.as_ref().and_then(|c| c.password.clone());
    let with = if credentials.is_some() {
        " (with credentials)"
    } else {
        ""
    };
    log(&format!("pulling {reference}{with}"));
    let opts = CreateImageOptions {
        from_image: Some(r.repository.clone()),
        tag: Some(r.digest.clone().unwrap_or_else(|| r.tag_or_latest().into())),
        ..Default::default()
    };
    let mut stream = std::pin::pin!(docker.create_image(Some(opts), None, credentials));
    // Each layer's size as the Engine last reported it while downloading.
    let mut sizes: HashMap<String, i64> = HashMap::new();
    let mut digest = None;
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(e) => {
                let why = describe(r, e, password.is_some());
                // The Engine does not echo credentials; this keeps it so whatever it says.
                return Err(match password.as_deref().filter(|p| !p.is_empty()) {
                    Some(p) => why.replace(p, "***"),
                    None => why,
                });
            }
        };
        let id = info.id.as_deref().unwrap_or("");
        match info.status.as_deref().unwrap_or("") {
            "Downloading" => {
                if let Some(total) = info.progress_detail.as_ref().and_then(|p| p.total) {
                    sizes.insert(id.to_string(), total);
                }
            }
            "Pull complete" => match sizes.get(id) {
                Some(&n) => log(&format!("layer {id} pulled ({})", human_size(n))),
                None => log(&format!("layer {id} pulled")),
            },
            "Already exists" => log(&format!("layer {id} already here")),
            s => {
                if let Some(d) = s.strip_prefix("Digest: ") {
                    digest = Some(d.to_string());
                }
            }
        }
    }
    match digest {
        Some(d) => log(&format!("pulled {reference} ({d})")),
        None => log(&format!("pulled {reference}")),
    }
    Ok(())
}

/// A failed pull in words: the image, its registry and the registry's reason.
fn describe(r: &ImageRef, e: bollard::errors::Error, had_credentials: bool) -> String {
    let reference = r.reference();
    let registry = &r.registry;
    let (status, message) = match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => (Some(status_code), message),
        bollard::errors::Error::DockerStreamError { error } => (None, error),
        other => (None, other.to_string()),
    };
    let message = message.trim();
    let lower = message.to_ascii_lowercase();
    if lower.contains("unauthorized")
        || lower.contains("no basic auth credentials")
        || lower.contains("authentication required")
    {
        let reason = match lower.find("unauthorized") {
            Some(i) => message[i..].to_string(),
            None => format!("unauthorized: {}", without_request(message)),
        };
        let hint = if had_credentials {
            format!("the registry refused the credentials for {registry}")
        } else {
            format!(
                "no credentials for {registry}: set them in gantry.toml's [registries] or the Docker config file"
            )
        };
        return format!(
            "cannot pull image {reference} from registry {registry}: {reason} ({hint})"
        );
    }
    if lower.contains("manifest unknown")
        || (status == Some(404) && lower.contains("not found"))
        || lower.contains("does not exist")
    {
        let reason = if lower.contains("manifest unknown") {
            "manifest unknown".to_string()
        } else {
            without_request(message).to_string()
        };
        return format!("image {reference} not found in registry {registry}: {reason}");
    }
    format!(
        "cannot pull image {reference} from registry {registry}: {}",
        without_request(message)
    )
}

/// `Head "https://…": reason` → `reason`: the URL says nothing the image does not.
fn without_request(message: &str) -> &str {
    for verb in ["Head \"", "Get \"", "Post \""] {
        if let Some(rest) = message.strip_prefix(verb)
            && let Some(i) = rest.find("\": ")
        {
            return &rest[i + 3..];
        }
    }
    message
}

fn human_size(bytes: i64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// Pulls under way, by reference: one at a time per image.
static FLIGHTS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The turn to pull one image; the last one out removes the image's entry.
struct Flight {
    key: String,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl Flight {
    async fn join(key: &str) -> Flight {
        let lock = FLIGHTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone();
        Flight {
            key: key.to_string(),
            _turn: lock.lock_owned().await,
        }
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        let mut flights = FLIGHTS.lock().unwrap_or_else(|e| e.into_inner());
        // The map's and this turn's: nobody else waits (others clone under this lock).
        if flights
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) <= 2)
        {
            flights.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(image: &str) -> ImageRef {
        ImageRef::parse(image).unwrap()
    }

    #[test]
    fn references_are_split_as_docker_splits_them() {
        let x = r("127.0.0.1:5000/x/y:1");
        assert_eq!(x.registry, "127.0.0.1:5000");
        assert_eq!(x.repository, "127.0.0.1:5000/x/y");
        assert_eq!(x.tag.as_deref(), Some("1"));
        assert_eq!(x.reference(), "127.0.0.1:5000/x/y:1");

        let x = r("127.0.0.1:5000/x/y");
        assert_eq!(x.tag, None);
        assert_eq!(x.reference(), "127.0.0.1:5000/x/y:latest");

        let x = r("busybox");
        assert_eq!(
            (x.registry.as_str(), x.repository.as_str()),
            ("docker.io", "busybox")
        );
        assert_eq!(x.reference(), "busybox:latest");
        let x = r("gantry-test/busybox:latest");
        assert_eq!(x.registry, "docker.io");
        assert_eq!(r("localhost/a").registry, "localhost");
        assert_eq!(r("localhost:5000/a:b").registry, "localhost:5000");
        assert_eq!(r("ghcr.io/o/n:v1.2-rc_3").registry, "ghcr.io");

        let digest = format!("sha256:{}", "ab".repeat(32));
        let x = r(&format!("registry.example.com:443/n@{digest}"));
        assert_eq!(x.registry, "registry.example.com:443");
        assert_eq!(x.repository, "registry.example.com:443/n");
        assert_eq!(x.digest.as_deref(), Some(digest.as_str()));
        assert_eq!(
            x.reference(),
            format!("registry.example.com:443/n@{digest}")
        );
        let x = r(&format!("n:1@{digest}"));
        assert_eq!(
            (x.tag.as_deref(), x.reference()),
            (Some("1"), format!("n@{digest}"))
        );
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        for (image, why) in [
            ("", "empty"),
            ("a b", "white space"),
            ("x:", "tag"),
            ("x:-a", "tag"),
            ("x@sha256:zz", "digest"),
            ("x@", "digest"),
            ("a//b", "empty part"),
            ("/a", "empty part"),
            ("Upper/Case", "lower-case"),
            ("host.io/Upper", "lower-case"),
        ] {
            let err = ImageRef::parse(image).unwrap_err();
            assert!(
                err.contains(why) && err.contains(&format!("`{image}`")),
                "{image}: {err}"
            );
        }
    }

    #[test]
    fn a_registry_reason_is_named_with_the_image() {
        let x = r("127.0.0.1:5000/nope:1");
        let e =
            |status_code: u16, message: &str| bollard::errors::Error::DockerResponseServerError {
                status_code,
                message: message.into(),
            };
        assert_eq!(
            describe(
                &x,
                e(
                    404,
                    "manifest for 127.0.0.1:5000/nope:1 not found: manifest unknown: manifest unknown"
                ),
                false
            ),
            "image 127.0.0.1:5000/nope:1 not found in registry 127.0.0.1:5000: manifest unknown"
        );
        let no_creds = describe(
            &x,
            e(
                500,
                "Head \"http://127.0.0.1:5000/v2/nope/manifests/1\": no basic auth credentials",
            ),
            false,
        );
        assert!(
            no_creds.starts_with("cannot pull image 127.0.0.1:5000/nope:1 from registry 127.0.0.1:5000: unauthorized: no basic auth credentials (no credentials for 127.0.0.1:5000"),
            "{no_creds}"
        );
        let refused = describe(&x, e(500, "unauthorized: authentication required"), true);
        assert!(
            refused.contains(": unauthorized: authentication required (the registry refused"),
            "{refused}"
        );
        let down = describe(
            &x,
            e(
                500,
                "Get \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused",
            ),
            false,
        );
        assert_eq!(
            down,
            "cannot pull image 127.0.0.1:5000/nope:1 from registry 127.0.0.1:5000: dial tcp 127.0.0.1:5000: connect: connection refused"
        );
    }

    #[tokio::test]
    async fn one_pull_of_an_image_at_a_time() {
        let first = Flight::join("img:1").await;
        let second = tokio::spawn(async { Flight::join("img:1").await });
        let other = Flight::join("img:2").await; // another image does not wait
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!second.is_finished());
        drop(first);
        let second = second.await.unwrap();
        assert!(FLIGHTS.lock().unwrap().contains_key("img:1"));
        drop(second);
        drop(other);
        let flights = FLIGHTS.lock().unwrap();
        assert!(!flights.contains_key("img:1") && !flights.contains_key("img:2"));
    }
}
