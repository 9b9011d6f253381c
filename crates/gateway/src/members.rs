//! Who is who at the gateway: the [`Directory`] read from the signed trust list in force, and
//! putting a newer list in force when the operator replaces the file (no restart).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use originlink_exchange::Directory;
use originlink_trust::Cert;
use originlink_trust::trustlist::TrustList;

/// The directory in force and where a newer one comes from.
#[derive(Debug)]
pub struct Members {
    current: RwLock<Arc<Directory>>,
    list: RwLock<Arc<TrustList>>,
    path: PathBuf,
    operators: Vec<Cert>,
    own_cert: Vec<u8>,
}

impl Members {
    /// Reads and verifies the list at `path`: signed by one of `operators`, naming this
    /// gateway's certificate (`own_cert`, DER).
    pub fn load(
        path: PathBuf,
        operators: Vec<Cert>,
        own_cert: Vec<u8>,
    ) -> Result<(Members, TrustList), String> {
        let (list, directory) = read(&path, &operators, &own_cert)?;
        let members = Members {
            current: RwLock::new(Arc::new(directory)),
            list: RwLock::new(Arc::new(list.clone())),
            path,
            operators,
            own_cert,
        };
        Ok((members, list))
    }

    /// The directory in force.
    pub fn get(&self) -> Arc<Directory> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The trust list in force, as signed (for the operator's console).
    pub fn list(&self) -> Arc<TrustList> {
        self.list.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The trust list file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Reads the file again and puts it in force when it verifies, still names this gateway
    /// and is newer (a higher sequence) than the list in force: `Ok(Some(sequence))`. An older
    /// or the same list changes nothing (`Ok(None)`); one that does not verify is refused with
    /// the reason, and the list in force stays. Push workers keep the members they were started
    /// with: a member added later has its messages held for its pull until a restart.
    pub fn reload(&self) -> Result<Option<u64>, String> {
        let (list, directory) = read(&self.path, &self.operators, &self.own_cert)?;
        let current = self.get().sequence();
        if list.sequence <= current {
            return Ok(None);
        }
        let sequence = list.sequence;
        let members = list.members.len();
        // The list first: a reader may see the new list with the old directory for an instant,
        // never a directory newer than the list it shows.
        *self.list.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(list);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(directory);
        tracing::info!(from = current, to = sequence, members, "trust list reloaded");
        Ok(Some(sequence))
    }
}

fn read(
    path: &std::path::Path,
    operators: &[Cert],
    own_cert: &[u8],
) -> Result<(TrustList, Directory), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let list = TrustList::from_signed(&bytes, operators).map_err(|e| e.to_string())?;
    let directory = Directory::new(&list).map_err(|e| e.to_string())?;
    if !directory.gateways().any(|(_, _, c)| c.der() == own_cert) {
        return Err(format!(
            "the list does not name this gateway's certificate (sequence {}): nodes would refuse it",
            list.sequence
        ));
    }
    Ok((list, directory))
}
