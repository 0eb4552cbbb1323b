//! The age-encrypted secret store, on a real SQLite file and a real PostgreSQL database.

use common::Place;
use gantry_core::secret::Scope;
use gantry_store::SecretKey;
use std::os::unix::fs::PermissionsExt;

#[macro_use]
mod common;

both!(async fn values_are_encrypted_scoped_and_resolved_repo_first(backend) {
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

    let place = Place::new(backend);
    let secrets = place.secrets(key.clone()).await;
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

    // On disk: no value in clear, anywhere in the database files (SQLite's; PostgreSQL's
    // rows are read back as stored).
    if let Some(db) = &place.pg {
        let stored = common::pg::psql(&db.url, "SELECT encode(ciphertext, 'escape') FROM secrets").unwrap();
        assert!(!stored.contains("global-value-1") && !stored.contains("g-only"));
    }
    for entry in std::fs::read_dir(place.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("global-value-1") && !text.contains("g-only"));
    }

    // Another key cannot read them.
    let other = SecretKey::load_or_create(&dir.path().join("other.key")).unwrap();
    let err = place
        .secrets(other)
        .await
        .resolve(&names[..1], None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot be decrypted"), "{err}");
    assert!(SecretKey::parse("not a key").is_err());
});
