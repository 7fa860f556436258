//! The node's unix sockets (control API, Docker API subset): bound owner-only, refusing a
//! socket another live process serves, replacing a stale one.

use crate::error::{bail, Context, Result};
use tokio::net::UnixListener;

/// Binds an owner-only unix socket at `path`; `flag` names the option in errors.
pub(crate) async fn bind_unix_socket(flag: &str, path: &std::path::Path) -> Result<UnixListener> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("{flag} {}", path.display()))?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            bail!(
                "{flag} {}: socket is in use by another process",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let l = UnixListener::bind(path).with_context(|| format!("{flag} {}", path.display()))?;
    set_owner_only(path)?;
    Ok(l)
}

fn set_owner_only(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("securing {}", path.display()))
}
