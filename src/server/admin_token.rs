//! The admin's token for an office with no one to edit `config.toml`: `ikd-field server
//! admin-token` draws one (32 hex characters from the operating system's CSPRNG) into
//! `admin-token.txt` in the server's data folder, readable by its owner only, and `serve` uses
//! it when `server.admin_token` is empty. The token opens the dashboard's login (`/masuk`) and
//! the admin API, like `server.admin_token`, which wins when both are set.
use crate::error::AppError;
use crate::tr;
use std::path::{Path, PathBuf};

/// The file's name in the data folder.
pub const FILE: &str = "admin-token.txt";

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// The token in the data folder's file, when there is one (blank lines and spaces ignored).
pub fn load(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path(data_dir)).ok()?;
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The data folder's token: the one kept, or a new one when there is none or `new` is asked
/// for. Returns it and whether it was made now.
pub fn ensure(data_dir: &Path, new: bool) -> Result<(String, bool), AppError> {
    if !new && let Some(t) = load(data_dir) {
        return Ok((t, false));
    }
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)
        .map_err(|e| AppError::other(format!("no randomness from the operating system: {e}")))?;
    let token = hex::encode(b);
    write(&path(data_dir), &token).map_err(|e| {
        AppError::other(tr!(
            "Token admin tidak bisa disimpan di {}: {e}",
            "The admin token cannot be saved in {}: {e}",
            path(data_dir).display()
        ))
        .hint(tr!(
            "Jalankan perintah sebagai pengguna yang menjalankan server, di folder data yang sama.",
            "Run the command as the user who runs the server, on the same data folder."
        ))
    })?;
    Ok((token, true))
}

/// Owner-only, written beside the file and renamed over it: a reader sees the old or the new.
fn write(path: &Path, token: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::output::replace_file(path, &format!("{token}\n"), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_made_once_kept_and_renewed_on_request() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), None);
        let (first, made) = ensure(dir.path(), false).unwrap();
        assert!(made);
        assert_eq!(first.len(), 32);
        assert!(first.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(ensure(dir.path(), false).unwrap(), (first.clone(), false));
        assert_eq!(load(dir.path()).as_deref(), Some(first.as_str()));
        let (second, made) = ensure(dir.path(), true).unwrap();
        assert!(made);
        assert_ne!(first, second);
        assert_eq!(load(dir.path()), Some(second));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
