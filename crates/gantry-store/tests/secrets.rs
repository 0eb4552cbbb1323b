//! The age-encrypted secret store on a real SQLite file.

use gantry_core::secret::Scope;
use gantry_engine::ports::SecretStore;
use gantry_store::{SecretKey, SqliteStore};
use std::os::unix::fs::PermissionsExt;

#[tokio::test]
async fn values_are_encrypted_scoped_and_resolved_repo_first() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("secret.key");
    let key = SecretKey::load_or_create(&key_path).unwrap();
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the key file is private");
    let again = SecretKey::load_or_create(&key_path).unwrap();
    assert_eq!(
        format!("{key:?}"),
        format!("{again:?}"),
        "the key is reused"
    );

    let db = dir.path().join("gantry.db");
    let store = SqliteStore::open(&db).await.unwrap();
    let secrets = store.secrets(key.clone());
    let repo = Scope::parse("repo:acme/web").unwrap();
    secrets
        .set(&Scope::Global, "TOKEN", "global-value-1")
        .await
        .unwrap();
    secrets.set(&repo, "TOKEN", "repo-value-22").await.unwrap();
    secrets
        .set(&Scope::Global, "ONLY_GLOBAL", "g-only")
        .await
        .unwrap();

    let names = vec!["TOKEN".to_string(), "ONLY_GLOBAL".into(), "NOPE".into()];
    let r = secrets.resolve(&names, Some("acme/web")).await.unwrap();
    let got: Vec<_> = r
        .values
        .iter()
        .map(|(n, v)| (n.as_str(), v.expose()))
        .collect();
    assert_eq!(got, [("TOKEN", "repo-value-22"), ("ONLY_GLOBAL", "g-only")]);
    assert_eq!(r.missing, ["NOPE"]);
    assert!(
        !format!("{r:?}").contains("repo-value"),
        "Debug hides values"
    );
    let r = secrets
        .resolve(&names[..1], Some("other/repo"))
        .await
        .unwrap();
    assert_eq!(r.values[0].1.expose(), "global-value-1");

    // Replacing keeps one row; list shows names and scopes only.
    secrets.set(&repo, "TOKEN", "repo-value-33").await.unwrap();
    let list = secrets.list().await.unwrap();
    let listed: Vec<_> = list
        .iter()
        .map(|m| (m.scope.as_str(), m.name.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("global", "ONLY_GLOBAL"),
            ("global", "TOKEN"),
            ("repo:acme/web", "TOKEN")
        ]
    );

    // Refused values say why and store nothing.
    let err = secrets
        .set(&Scope::Global, "SHORT", "abc")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at least 4"), "{err}");
    assert!(
        secrets
            .set(&Scope::Global, "bad-name", "abcdef")
            .await
            .is_err()
    );
    assert_eq!(secrets.list().await.unwrap().len(), 3);

    assert!(secrets.delete(&repo, "TOKEN").await.unwrap());
    assert!(!secrets.delete(&repo, "TOKEN").await.unwrap());
    drop(secrets);
    drop(store);

    // On disk: no value in clear, anywhere in the database files.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("global-value-1") && !text.contains("g-only"));
    }

    // Another key cannot read them.
    let store = SqliteStore::open(&db).await.unwrap();
    let other = SecretKey::load_or_create(&dir.path().join("other.key")).unwrap();
    let err = store
        .secrets(other)
        .resolve(&names[..1], None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot be decrypted"), "{err}");
    assert!(SecretKey::parse("not a key").is_err());
}
