//! The SQLite store's single-writer lock: an exclusive lock on `<database>.lock`
//! (`flock(2)` through [`std::fs::File::try_lock`]), held for the life of the process's
//! store handles. The process that holds it writes; any other process that opens the
//! file while it is held gets a read-only store whose writes fail with
//! [`StoreError::ReadOnly`] naming the holder (its pid, host and command, written into
//! the lock file). The lock is released by the kernel when its holder exits, however
//! it exits, so a crashed writer never leaves the store locked.
//!
//! Handles opened in one process share one lock (a process-wide registry), because
//! `flock` locks of two open file descriptions of one file conflict even within a process.

use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::error::{Result, StoreError};

/// A held write lock; released when the last handle drops it.
#[derive(Debug)]
pub(crate) struct WriteLock {
    _file: File,
}

/// What opening the lock found.
#[derive(Debug, Clone)]
pub(crate) enum Access {
    /// This process holds the lock and may write (kept alive by this handle).
    Write(#[allow(dead_code)] Arc<WriteLock>),
    /// Another process holds it: read only.
    Read {
        /// The database file.
        path: Box<str>,
        /// The holder, as its lock file describes it.
        holder: Box<str>,
    },
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<WriteLock>>> {
    static R: OnceLock<Mutex<HashMap<PathBuf, Weak<WriteLock>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Takes (or shares, within this process) the write lock of the SQLite file `db`.
///
/// # Errors
/// [`StoreError::Io`] when the lock file cannot be opened or locked for a reason other
/// than another holder.
pub(crate) fn acquire(db: &Path) -> Result<Access> {
    let lock_path = PathBuf::from(format!("{}.lock", db.display()));
    let key = lock_path.canonicalize().unwrap_or_else(|_| lock_path.clone());
    let mut reg = registry().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(held) = reg.get(&key).and_then(Weak::upgrade) {
        return Ok(Access::Write(held));
    }
    let io = |e: std::io::Error| StoreError::Io {
        path: lock_path.display().to_string(),
        source: e,
    };
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
            let holder = match holder.trim() {
                "" => "unknown holder".to_string(),
                h => h.to_string(),
            };
            return Ok(Access::Read {
                path: db.display().to_string().into(),
                holder: holder.into(),
            });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    writeln!(file, "{}", describe_process()).map_err(io)?;
    let held = Arc::new(WriteLock { _file: file });
    reg.insert(key, Arc::downgrade(&held));
    Ok(Access::Write(held))
}

/// `pid N on HOST: COMMAND LINE`, for the message another process shows.
fn describe_process() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this host".into());
    let cmd: Vec<String> = std::env::args().collect();
    format!("pid {} on {host}: {}", std::process::id(), cmd.join(" "))
}
