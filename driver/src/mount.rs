//! Bind mounts for the Node service: mount, read-only remount, unmount, and "is this path a
//! mount point" from /proc/self/mountinfo; a block volume's data file is bound as the loop
//! device it is attached to, since a Pod's container can only be given a device node. The Node
//! handlers reach them through [`Mounter`]:
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
    /// Binds a block volume's data file onto `target` as a block device: the kernel's mounts
    /// attach it to a loop device first. By default (a table of mounts) the file itself.
    fn bind_block(&self, file: &Path, target: &Path, readonly: bool) -> io::Result<()> {
        self.bind(file, target, readonly)
    }
    /// Unmounts the top mount at `target` (and detaches the loop device it showed, if any).
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

    fn bind_block(&self, file: &Path, target: &Path, readonly: bool) -> io::Result<()> {
        let device = loopdev::attach(file, readonly)?;
        bind(&device.path(), target, readonly).inspect_err(|_| {
            let _ = device.detach();
        })
    }

    fn unbind(&self, target: &Path) -> io::Result<()> {
        // Read before the unmount: afterwards `target` is the plain file under it.
        let device = loopdev::Loop::shown_at(target);
        unbind(target)?;
        device.map_or(Ok(()), loopdev::Loop::detach)
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

/// Loop devices through the kernel's loop driver (linux/loop.h): a free one found through
/// /dev/loop-control, a file attached to it, and detached again. Not the `loopdev` crates:
/// they generate their bindings with bindgen at build time, so every machine that builds the
/// driver would need libclang, for three ioctls whose numbers are fixed kernel ABI.
mod loopdev {
    use std::fs::OpenOptions;
    use std::io;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use std::path::{Path, PathBuf};

    use nix::errno::Errno;

    /// The loop driver's block major number.
    const LOOP_MAJOR: u64 = 7;
    nix::ioctl_none_bad!(ctl_get_free, 0x4C82);
    nix::ioctl_write_int_bad!(set_fd, 0x4C00);
    nix::ioctl_none_bad!(clr_fd, 0x4C01);

    /// One loop device, by its minor number.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Loop(u64);

    impl Loop {
        pub fn path(self) -> PathBuf {
            PathBuf::from(format!("/dev/loop{}", self.0))
        }

        /// The loop device `path` is (through whatever is mounted there), if it is one.
        pub fn shown_at(path: &Path) -> Option<Self> {
            let meta = std::fs::metadata(path).ok()?;
            let rdev = meta.rdev();
            (meta.file_type().is_block_device() && nix::sys::stat::major(rdev) == LOOP_MAJOR)
                .then(|| Self(nix::sys::stat::minor(rdev)))
        }

        /// The file the device is attached to, if it is attached.
        #[cfg(test)]
        pub fn backing_file(self) -> Option<PathBuf> {
            let sysfs = format!("/sys/block/loop{}/loop/backing_file", self.0);
            std::fs::read_to_string(sysfs).ok().map(|f| PathBuf::from(f.trim_end()))
        }

        /// Detaches the device from its file; the kernel defers it while someone (the kubelet's
        /// own loop device on top) still has the device open.
        pub fn detach(self) -> io::Result<()> {
            let device = OpenOptions::new().read(true).open(self.path())?;
            // SAFETY: LOOP_CLR_FD takes no argument; the descriptor is open for the call.
            unsafe { clr_fd(device.as_raw_fd()) }.map(drop).map_err(io::Error::from)
        }
    }

    /// Attaches `file` to a free loop device, read-only when asked (the kernel makes the device
    /// read-only when its file is opened so). Another process may take the free device between
    /// the two calls: then the next free one is tried.
    pub fn attach(file: &Path, readonly: bool) -> io::Result<Loop> {
        let backing = OpenOptions::new().read(true).write(!readonly).open(file)?;
        let control = OpenOptions::new().read(true).write(true).open("/dev/loop-control")?;
        for _ in 0..16 {
            // SAFETY: LOOP_CTL_GET_FREE takes no argument; the descriptor is open for the call.
            let minor = unsafe { ctl_get_free(control.as_raw_fd()) }?;
            let device = Loop(u64::try_from(minor).map_err(|_| io::Error::other("negative loop device number"))?);
            let handle = OpenOptions::new().read(true).write(!readonly).open(device.path())?;
            // SAFETY: LOOP_SET_FD takes the backing file's descriptor, open for the call.
            match unsafe { set_fd(handle.as_raw_fd(), backing.as_raw_fd()) } {
                Ok(_) => return Ok(device),
                Err(Errno::EBUSY) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(io::Error::other(format!("no free loop device for {} after 16 tries", file.display())))
    }
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
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::path::{Path, PathBuf};

    use super::loopdev::Loop;
    use super::{unescape, Mounter, RecordedMounts, SystemMounts};

    /// Whatever a failed assertion left mounted at the target, and its loop device, undone.
    struct Unmounted(PathBuf);

    impl Drop for Unmounted {
        fn drop(&mut self) {
            while let Some(device) = Loop::shown_at(&self.0) {
                let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
                let _ = device.detach();
            }
        }
    }

    fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
        let mut f = std::fs::File::open(path).unwrap();
        f.seek(SeekFrom::Start(offset)).unwrap();
        let mut buf = vec![0; len];
        f.read_exact(&mut buf).unwrap();
        buf
    }

    // Needs root and the loop driver, as the node plugin does; attaches a real loop device.
    #[test]
    fn a_block_volume_is_bound_as_a_loop_device_of_its_file_and_unbinding_detaches_it() {
        let dir = tempfile::tempdir().unwrap();
        let (file, target) = (dir.path().join("data"), dir.path().join("target"));
        std::fs::write(&file, vec![0u8; 1 << 20]).unwrap();
        std::fs::write(&target, b"").unwrap();
        let _guard = Unmounted(target.clone());
        let m = SystemMounts;

        m.bind_block(&file, &target, false).unwrap();
        let device = Loop::shown_at(&target).expect("the target shows a loop device");
        assert_eq!(device.backing_file(), Some(file.canonicalize().unwrap()));
        let mut through = std::fs::OpenOptions::new().write(true).open(&target).unwrap();
        through.seek(SeekFrom::Start(4096)).unwrap();
        through.write_all(b"tether").unwrap();
        through.sync_all().unwrap();
        drop(through);
        m.unbind(&target).unwrap();
        assert_eq!(m.mounted(&target).unwrap(), None);
        assert_eq!(Loop::shown_at(&target), None, "the target is the plain file again");
        assert_eq!(device.backing_file(), None, "the loop device is detached");
        assert_eq!(read_at(&file, 4096, 6), b"tether", "written through the device into the file");

        m.bind_block(&file, &target, true).unwrap();
        let device = Loop::shown_at(&target).expect("the target shows a loop device");
        // The kernel lets a read-only device be opened for writing, and refuses the write.
        let refused = std::fs::OpenOptions::new().write(true).open(&target).and_then(|mut f| f.write_all(b"x"));
        assert!(refused.is_err(), "a read-only block volume takes no write");
        assert_eq!(read_at(&target, 4096, 6), b"tether");
        m.unbind(&target).unwrap();
        assert_eq!(device.backing_file(), None);
    }

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
