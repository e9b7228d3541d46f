//! Bind mounts for the Node service: mount, read-only remount, unmount, and "is this path a
//! mount point" from /proc/self/mountinfo.

use std::io;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

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
    use super::unescape;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/a\040b/c\011d"), "/a b/c\td");
        assert_eq!(unescape(r"/plain\0x"), r"/plain\0x");
    }
}
