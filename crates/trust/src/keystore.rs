//! The one place that touches key and certificate files.
//!
//! Private keys are PEM PKCS#8 written with mode 0600 and never overwritten; a key file that
//! group or others can read is refused on load, before its bytes are read.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::keys::{PrivateKey, cert_to_pem};
use crate::x509::Cert;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |cause| Error::Io { path: path.to_path_buf(), cause }
}

/// Writes `key` to a new file `path` (mode 0600). Refuses to overwrite an existing file.
pub fn write_private_key(path: &Path, key: &PrivateKey) -> Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io(path))?;
    f.write_all(key.to_pem().as_bytes()).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Refuses a secret file (a private key, `audit.key`) that group or others can read, before
/// any of its bytes are read.
fn refuse_if_readable_by_others(path: &Path) -> Result<()> {
    let meta = fs::metadata(path).map_err(io(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::KeyPermissions { path: path.to_path_buf(), mode });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(())
}

/// Loads a PEM PKCS#8 private key, refusing one that group or others can read.
pub fn load_private_key(path: &Path) -> Result<PrivateKey> {
    refuse_if_readable_by_others(path)?;
    let text = fs::read_to_string(path).map_err(io(path))?;
    PrivateKey::from_pem(&text).map_err(|e| match e {
        Error::KeyInvalid(m) => Error::KeyInvalid(format!("{}: {m}", path.display())),
        e => e,
    })
}

/// Reads a 32-byte secret (64 hex digits and a newline, e.g. the node's `audit.key`),
/// refusing one that group or others can read, before its bytes are read.
pub fn load_secret(path: &Path) -> Result<[u8; 32]> {
    refuse_if_readable_by_others(path)?;
    let text = fs::read_to_string(path).map_err(io(path))?;
    let mut out = [0u8; 32];
    if hex::decode_to_slice(text.trim(), &mut out).is_err() {
        return Err(Error::KeyInvalid(format!(
            "{}: not a 32-byte secret (64 hex digits); restore the file from your backup",
            path.display()
        )));
    }
    Ok(out)
}

/// [`load_secret`], first creating the file with 32 random bytes (mode 0600, synced) when it
/// does not exist. Two processes creating it at once agree on the first one written.
pub fn load_or_create_secret(path: &Path) -> Result<[u8; 32]> {
    match fs::symlink_metadata(path) {
        Ok(_) => return load_secret(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(path)(e)),
    }
    let mut secret = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
        .map_err(|_| io(path)(std::io::Error::other("no random source")))?;
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = match opts.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return load_secret(path),
        Err(e) => return Err(io(path)(e)),
    };
    f.write_all(format!("{}\n", hex::encode(secret)).as_bytes()).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The new name is durable too: a secret lost in a crash would orphan what it keyed.
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
    }
    Ok(secret)
}

/// Writes a certificate as PEM to a new file (mode 0644 whatever the umask: public, but
/// writable by the owner only). Refuses to overwrite.
pub fn write_cert(path: &Path, der: &[u8]) -> Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o644);
    }
    let mut f = opts.open(path).map_err(io(path))?;
    #[cfg(unix)]
    {
        // `mode` is filtered by the umask; set the bits exactly.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(0o644)).map_err(io(path))?;
    }
    f.write_all(cert_to_pem(der).as_bytes()).map_err(io(path))
}

/// Reads every certificate in a PEM file (DER accepted too). At least one is required.
pub fn load_certs(path: &Path) -> Result<Vec<Cert>> {
    let bytes = fs::read(path).map_err(io(path))?;
    Cert::parse_all(&bytes).map_err(|e| Error::CertInvalid(format!("{}: {e}", path.display())))
}

/// Creates the folder `path` (and missing parents) for keys: mode 0700 whatever the umask,
/// so only the owner can list or open what is in it.
pub fn create_private_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(io(path))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(io(path))
    }
    #[cfg(not(unix))]
    fs::create_dir_all(path).map_err(io(path))
}

/// Refuses a key folder holding any private key (`*.key`) or secret (`*.secret`) that group
/// or others can read, even one the caller does not load (a `ca.key` left beside the node's
/// keys is as much a leak as its own signing key).
pub fn check_key_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for entry in fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            let secret = path.extension().is_some_and(|e| e == "key" || e == "secret");
            if !secret {
                continue;
            }
            let mode = fs::metadata(&path).map_err(io(&path))?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(Error::KeyPermissions { path, mode });
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The standard file names `keys init` writes in its output directory.
#[derive(Debug, Clone)]
pub struct AuthorityDir(pub PathBuf);

impl AuthorityDir {
    /// `ca.crt`
    pub fn ca_cert(&self) -> PathBuf {
        self.0.join("ca.crt")
    }
    /// `ca.key`
    pub fn ca_key(&self) -> PathBuf {
        self.0.join("ca.key")
    }
    /// `signing.crt`
    pub fn signing_cert(&self) -> PathBuf {
        self.0.join("signing.crt")
    }
    /// `signing.key`
    pub fn signing_key(&self) -> PathBuf {
        self.0.join("signing.key")
    }
    /// `tls.crt`
    pub fn tls_cert(&self) -> PathBuf {
        self.0.join("tls.crt")
    }
    /// `tls.key`
    pub fn tls_key(&self) -> PathBuf {
        self.0.join("tls.key")
    }

    /// Writes all six files. Refuses when any exists.
    pub fn write(&self, keys: &crate::keys::AuthorityKeys) -> Result<()> {
        create_private_dir(&self.0)?;
        for p in [
            self.ca_cert(),
            self.ca_key(),
            self.signing_cert(),
            self.signing_key(),
            self.tls_cert(),
            self.tls_key(),
        ] {
            if p.exists() {
                return Err(Error::Io {
                    cause: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "already exists; not overwriting keys",
                    ),
                    path: p,
                });
            }
        }
        write_private_key(&self.ca_key(), &keys.ca.key)?;
        write_cert(&self.ca_cert(), &keys.ca.cert_der)?;
        write_private_key(&self.signing_key(), &keys.signing.key)?;
        write_cert(&self.signing_cert(), &keys.signing.cert_der)?;
        write_private_key(&self.tls_key(), &keys.tls.key)?;
        write_cert(&self.tls_cert(), &keys.tls.cert_der)
    }

    /// Rotation: moves the current `signing.crt`/`signing.key` to `signing-<serial>.*` and
    /// writes the new pair. Returns the archived certificate path. Every `signing*.crt` in the
    /// directory is an allowed signing certificate when the trust list is built from it.
    pub fn rotate(&self, new: &crate::keys::Issued) -> Result<PathBuf> {
        let old = load_certs(&self.signing_cert())?;
        let serial = old.first().map(|c| c.serial_hex()).unwrap_or_default();
        let short = &serial[..serial.len().min(16)];
        let old_crt = self.0.join(format!("signing-{short}.crt"));
        let old_key = self.0.join(format!("signing-{short}.key"));
        if old_crt.exists() || old_key.exists() {
            return Err(Error::Io {
                cause: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "archive already exists"),
                path: old_crt,
            });
        }
        fs::rename(self.signing_cert(), &old_crt).map_err(io(&old_crt))?;
        fs::rename(self.signing_key(), &old_key).map_err(io(&old_key))?;
        write_private_key(&self.signing_key(), &new.key)?;
        write_cert(&self.signing_cert(), &new.cert_der)?;
        Ok(old_crt)
    }

    /// Every `signing*.crt` in the directory: the current one first, then archived ones.
    pub fn all_signing_certs(&self) -> Result<Vec<Cert>> {
        let mut out = load_certs(&self.signing_cert())?;
        let mut archived: Vec<PathBuf> = fs::read_dir(&self.0)
            .map_err(io(&self.0))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("signing-") && n.ends_with(".crt"))
            })
            .collect();
        archived.sort();
        for p in archived {
            out.extend(load_certs(&p)?);
        }
        Ok(out)
    }
}
