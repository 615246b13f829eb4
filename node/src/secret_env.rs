//! Secrets from the environment: `NAME` holds the value, or `NAME_FILE` names a file that does
//! (Docker and Compose secrets arrive as files under `/run/secrets`, and a value in a file does
//! not show in `docker inspect` or `/proc/*/environ`).

use std::path::Path;

use zeroize::Zeroizing;

/// Why a secret variable could not be read. Never carries the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretEnvError {
    /// Both `NAME` and `NAME_FILE` are set: which one wins would be a guess.
    #[error("set {name} or {name}_FILE, not both")]
    Both {
        /// The variable.
        name: String,
    },
    /// The file named by `NAME_FILE` could not be read.
    #[error("{name}_FILE={path}: {source}")]
    Read {
        /// The variable.
        name: String,
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not UTF-8 text.
    #[error("{name}_FILE={path}: not UTF-8 text")]
    NotText {
        /// The variable.
        name: String,
        /// The file.
        path: String,
    },
}

/// `NAME`, else the contents of the file `NAME_FILE` names (one trailing newline dropped, as
/// `echo secret > file` adds it), else `None`.
pub fn secret_var(name: &str) -> Result<Option<Zeroizing<String>>, SecretEnvError> {
    secret_var_from(name, &|k| std::env::var(k).ok())
}

/// [`secret_var`] over any environment (tests pass a map).
pub fn secret_var_from(
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Zeroizing<String>>, SecretEnvError> {
    let direct = env(name).map(Zeroizing::new);
    let file = env(&format!("{name}_FILE")).filter(|p| !p.is_empty());
    match (direct, file) {
        (Some(_), Some(_)) => Err(SecretEnvError::Both { name: name.into() }),
        (Some(v), None) => Ok(Some(v)),
        (None, None) => Ok(None),
        (None, Some(path)) => read_secret_file(name, Path::new(&path)).map(Some),
    }
}

fn read_secret_file(name: &str, path: &Path) -> Result<Zeroizing<String>, SecretEnvError> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| SecretEnvError::Read {
        name: name.into(),
        path: path.display().to_string(),
        source,
    })?);
    let text = std::str::from_utf8(&bytes).map_err(|_| SecretEnvError::NotText {
        name: name.into(),
        path: path.display().to_string(),
    })?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    Ok(Zeroizing::new(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn the_value_or_the_file_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "hunter2\n").unwrap();
        let path = f.display().to_string();

        let direct = env_of(&[("X", "v".into())]);
        assert_eq!(
            secret_var_from("X", &direct).unwrap().unwrap().as_str(),
            "v"
        );

        let from_file = env_of(&[("X_FILE", path.clone())]);
        let got = secret_var_from("X", &from_file).unwrap().unwrap();
        assert_eq!(got.as_str(), "hunter2", "one trailing newline is dropped");

        std::fs::write(&f, "a b \r\n\n").unwrap();
        let got = secret_var_from("X", &from_file).unwrap().unwrap();
        assert_eq!(got.as_str(), "a b \r\n", "only one newline is dropped");

        assert!(secret_var_from("X", &env_of(&[])).unwrap().is_none());
        let empty_file_var = env_of(&[("X_FILE", String::new())]);
        assert!(secret_var_from("X", &empty_file_var).unwrap().is_none());
    }

    #[test]
    fn both_or_an_unreadable_file_is_an_error_that_names_no_value() {
        let both = env_of(&[("X", "topsecret".into()), ("X_FILE", "/nope".into())]);
        let err = secret_var_from("X", &both).unwrap_err();
        assert!(matches!(err, SecretEnvError::Both { .. }));
        assert!(!err.to_string().contains("topsecret"));

        let missing = env_of(&[("X_FILE", "/definitely/not/here".into())]);
        let err = secret_var_from("X", &missing).unwrap_err();
        assert!(matches!(err, SecretEnvError::Read { .. }));
        assert!(err.to_string().contains("X_FILE=/definitely/not/here"));

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bin");
        std::fs::write(&f, [0xff, 0xfe, 0x00]).unwrap();
        let bad = env_of(&[("X_FILE", f.display().to_string())]);
        assert!(matches!(
            secret_var_from("X", &bad).unwrap_err(),
            SecretEnvError::NotText { .. }
        ));
    }
}
