//! Bind mounts for the Node service: mount, read-only remount, unmount, and "is this path a
//! mount point" from /proc/self/mountinfo. The Node handlers reach them through [`Mounter`]:
//! [`SystemMounts`] (the kernel's) in the driver, [`RecordedMounts`] (a table in memory) where
//! nothing may be mounted for real, such as the node-request fuzz target.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// The three mount operations the Node handlers make.
pub trait Mounter: Send + Sync + 'static {
    /// Bind-mounts `source` onto `target`, read-only when asked.
    fn bind(&self, source: &Path, target: &Path, readonly: bool) -> io::Result<()>;
    /// Unmounts the top mount at `target`.
    fn unbind(&self, target: &Path) -> io::Result<()>;
    /// Whether `path` is a mount point, and if so whether its top mount is read-only.
    fn mounted(&self, path: &Path) -> io::Result<Option<bool>>;
}

/// The kernel's mounts (the functions below).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemMounts;

impl Mounter for SystemMounts {
    fn bind(&self, source: &Path, target: &Path, readonly: bool) -> io::Result<()> {
        bind(source, target, readonly)
    }

    fn unbind(&self, target: &Path) -> io::Result<()> {
        unbind(target)
    }

    fn mounted(&self, path: &Path) -> io::Result<Option<bool>> {
        mounted(path)
    }
}

/// One mount [`RecordedMounts`] holds: its (canonical) target, source and read-only flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub target: PathBuf,
    pub source: PathBuf,
    pub readonly: bool,
}

/// Mounts kept in a table instead of the kernel, refusing what the kernel refuses (a source or
/// target that does not exist, an unmount of what is not mounted), and every path outside
/// `root`: whatever drives it cannot mount or unmount anything outside that folder.
#[derive(Debug)]
pub struct RecordedMounts {
    root: PathBuf,
    table: Mutex<Vec<Recorded>>,
}

impl RecordedMounts {
    /// An empty table confined to `root` (which must exist).
    pub fn new(root: &Path) -> io::Result<Self> {
        Ok(Self { root: root.canonicalize()?, table: Mutex::new(Vec::new()) })
    }

    /// The mounts now, oldest first.
    pub fn mounts(&self) -> Vec<Recorded> {
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// `path` resolved, if it exists and lies inside the root.
    fn confined(&self, path: &Path) -> io::Result<PathBuf> {
        let canonical = path.canonicalize()?;
        if !canonical.starts_with(&self.root) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} is outside {}", canonical.display(), self.root.display()),
            ));
        }
        Ok(canonical)
    }
}

impl Mounter for RecordedMounts {
    fn bind(&self, source: &Path, target: &Path, readonly: bool) -> io::Result<()> {
        let (source, target) = (self.confined(source)?, self.confined(target)?);
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Recorded {
            target,
            source,
            readonly,
        });
        Ok(())
    }

    fn unbind(&self, target: &Path) -> io::Result<()> {
        let target = self.confined(target)?;
        let mut table = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let top = table.iter().rposition(|m| m.target == target).ok_or_else(|| io::Error::from_raw_os_error(22))?;
        table.remove(top);
        Ok(())
    }

    fn mounted(&self, path: &Path) -> io::Result<Option<bool>> {
        let Ok(canonical) = path.canonicalize() else { return Ok(None) };
        let table = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(table.iter().rev().find(|m| m.target == canonical).map(|m| m.readonly))
    }
}

/// Bind-mounts `source` onto `target`; read-only takes a second, remounting call because
/// the kernel ignores `MS_RDONLY` on the first bind.
pub fn bind(source: &Path, target: &Path, readonly: bool) -> io::Result<()> {
    mount(Some(source), target, None::<&str>, MsFlags::MS_BIND, None::<&str>)?;
    if readonly {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        if let Err(e) = mount(None::<&str>, target, None::<&str>, flags, None::<&str>) {
            // Never leave a writable mount behind a read-only request.
            let _ = umount2(target, MntFlags::MNT_DETACH);
            return Err(e.into());
        }
    }
    Ok(())
}

/// Unmounts `target`.
pub fn unbind(target: &Path) -> io::Result<()> {
    umount2(target, MntFlags::empty()).map_err(io::Error::from)
}

/// Undoes the octal escapes (`\040` for a space) mountinfo uses in paths.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal =
            bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if let Some(d) = octal {
            out.push(d.iter().fold(0u8, |acc, b| acc.wrapping_mul(8).wrapping_add(b - b'0')));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `path` is a mount point, and if so whether it is read-only.
pub fn mounted(path: &Path) -> io::Result<Option<bool>> {
    let Ok(canonical) = path.canonicalize() else { return Ok(None) };
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    // The last matching line is the top of the mount stack.
    let top = info.lines().rev().find_map(|line| {
        let mut fields = line.split(' ');
        let point = fields.nth(4)?;
        let options = fields.next()?;
        (Path::new(&unescape(point)) == canonical).then(|| options.split(',').any(|o| o == "ro"))
    });
    Ok(top)
}

#[cfg(test)]
mod tests {
    use super::{unescape, Mounter, RecordedMounts};

    #[test]
    fn recorded_mounts_stack_refuse_what_the_kernel_refuses_and_stay_in_their_root() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("root"), dir.path().join("outside"));
        for d in [&root, &outside, &root.join("src"), &root.join("t")] {
            std::fs::create_dir_all(d).unwrap();
        }
        let m = RecordedMounts::new(&root).unwrap();
        let (src, t) = (root.join("src"), root.join("t"));
        assert_eq!(m.mounted(&t).unwrap(), None);
        m.bind(&src, &t, false).unwrap();
        m.bind(&src, &t, true).unwrap();
        assert_eq!(m.mounted(&t).unwrap(), Some(true), "the top of the stack");
        m.unbind(&t).unwrap();
        assert_eq!(m.mounted(&root.join("src/../t")).unwrap(), Some(false), "paths are resolved");
        m.unbind(&t).unwrap();
        assert!(m.unbind(&t).is_err(), "nothing is mounted there");
        assert!(m.bind(&root.join("missing"), &t, false).is_err());
        assert!(m.bind(&src, &outside, false).is_err() && m.bind(&outside, &t, false).is_err());
        assert!(m.mounts().is_empty());
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/a\040b/c\011d"), "/a b/c\td");
        assert_eq!(unescape(r"/plain\0x"), r"/plain\0x");
    }
}
