//! A local run's secrets: given on the command line (`--secret NAME=VALUE`, or `--secret NAME`
//! to take the value from this process's environment) and read from dotenv files
//! (`--secret-file .env`), held in memory for the run and masked in its output like a
//! server's.

use async_trait::async_trait;
use gantry_core::secret::Scope;
use gantry_engine::ports::{Resolved, SecretError, SecretMeta, SecretStore, SecretValue};
use std::collections::BTreeMap;
use std::path::Path;

/// The secrets of one local run.
#[derive(Default)]
pub struct LocalSecrets {
    values: BTreeMap<String, SecretValue>,
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a secret name (letters, digits and _, not starting with a digit)",
            name.escape_debug()
        ))
    }
}

impl LocalSecrets {
    /// `NAME=VALUE`, or `NAME` (its value from the environment). The error names the problem,
    /// never a value.
    pub fn add_arg(&mut self, arg: &str) -> Result<(), String> {
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n, v.to_string()),
            None => {
                let v = std::env::var(arg).map_err(|_| {
                    format!("--secret {arg}: no value given (NAME=VALUE) and no {arg} in the environment")
                });
                check_name(arg).map_err(|e| format!("--secret: {e}"))?;
                (arg, v?)
            }
        };
        check_name(name).map_err(|e| format!("--secret: {e}"))?;
        self.values
            .insert(name.to_string(), SecretValue::new(value));
        Ok(())
    }

    /// Every `NAME=VALUE` of a dotenv file: blank lines and `#` comments skipped, `export `
    /// allowed, a value in single or double quotes taken without them. Problems name the file
    /// and line.
    pub fn add_file(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--secret-file: cannot read {}: {e}", path.display()))?;
        for (i, line) in text.lines().enumerate() {
            let at = format!("{}:{}", path.display(), i + 1);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
            let Some((name, value)) = line.split_once('=') else {
                return Err(format!("{at}: not NAME=VALUE"));
            };
            let name = name.trim();
            check_name(name).map_err(|e| format!("{at}: {e}"))?;
            let value = value.trim();
            let value = match value.as_bytes() {
                [q @ (b'"' | b'\''), .., last] if q == last && value.len() >= 2 => {
                    &value[1..value.len() - 1]
                }
                [b'"' | b'\'', ..] => return Err(format!("{at}: the value's quote is not closed")),
                _ => value,
            };
            self.values
                .insert(name.to_string(), SecretValue::new(value.to_string()));
        }
        Ok(())
    }
}

#[async_trait]
impl SecretStore for LocalSecrets {
    async fn set(&self, _: &Scope, _: &str, _: &str) -> Result<(), SecretError> {
        Err(SecretError::Invalid(
            "a local run's secrets come from --secret and --secret-file".into(),
        ))
    }

    async fn list(&self) -> Result<Vec<SecretMeta>, SecretError> {
        Ok(self
            .values
            .keys()
            .map(|name| SecretMeta {
                name: name.clone(),
                scope: "local".into(),
                created_at_ms: 0,
                updated_at_ms: 0,
            })
            .collect())
    }

    async fn delete(&self, _: &Scope, _: &str) -> Result<bool, SecretError> {
        Ok(false)
    }

    async fn resolve(&self, names: &[String], _: Option<&str>) -> Result<Resolved, SecretError> {
        let mut out = Resolved::default();
        for name in names {
            match self.values.get(name) {
                Some(v) => out.values.push((name.clone(), v.clone())),
                None => out.missing.push(name.clone()),
            }
        }
        Ok(out)
    }

    fn missing_hint(&self, _: Option<&str>) -> String {
        "give it to `gantry run` with --secret NAME[=VALUE] or --secret-file FILE".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_lines_and_their_problems() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(".env");
        std::fs::write(
            &f,
            "# comment\n\nA=1\nexport B = \"two words\"\nC='x=y'\nD=\n",
        )
        .unwrap();
        let mut s = LocalSecrets::default();
        s.add_file(&f).unwrap();
        let got: Vec<(&str, &str)> = s
            .values
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        assert_eq!(
            got,
            [("A", "1"), ("B", "two words"), ("C", "x=y"), ("D", "")]
        );
        for (text, want) in [
            ("A=1\nnovalue\n", ":2: not NAME=VALUE"),
            ("1A=x\n", ":1: `1A` is not a secret name"),
            ("A=\"sekr3t\n", ":1: the value's quote is not closed"),
        ] {
            std::fs::write(&f, text).unwrap();
            let err = LocalSecrets::default().add_file(&f).unwrap_err();
            assert!(err.contains(want), "{err}");
            assert!(!err.contains("sekr3t"), "a value in an error: {err}");
        }
        assert!(
            LocalSecrets::default()
                .add_file(&dir.path().join("none"))
                .unwrap_err()
                .contains("cannot read")
        );
    }

    #[test]
    fn arguments_with_a_value_or_from_the_environment() {
        let mut s = LocalSecrets::default();
        s.add_arg("TOKEN=abc=def").unwrap();
        assert_eq!(s.values["TOKEN"].expose(), "abc=def");
        s.add_arg("PATH").unwrap();
        assert!(!s.values["PATH"].expose().is_empty());
        let err = s.add_arg("GANTRY_TEST_NO_SUCH_VARIABLE_X").unwrap_err();
        assert!(err.contains("no value given"), "{err}");
        assert!(
            s.add_arg("a-b=1")
                .unwrap_err()
                .contains("not a secret name")
        );
    }
}
