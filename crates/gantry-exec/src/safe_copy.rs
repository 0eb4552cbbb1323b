//! Copying files between two folder trees without ever following a link. Every folder on the
//! way is opened relative to the one above it, with `O_NOFOLLOW | O_DIRECTORY`, and every file
//! with `O_NOFOLLOW`: a link committed in a checkout, left by a job, or swapped in while the
//! copy runs can send neither a read out of the source tree nor a write out of the
//! destination. Links themselves are copied as links (what they point at is not read).
//! Portable to every Unix Gantry builds on (the `*at` calls are POSIX).

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, symlinkat, unlinkat};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

fn open_root(path: &Path) -> io::Result<OwnedFd> {
    let f = File::open(path)?;
    if !f.metadata()?.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a folder",
            path.display()
        )));
    }
    Ok(OwnedFd::from(f))
}

/// The folder `name` inside `dir`, opened without following a link; made first when `create`.
/// `None`: it does not exist (and was not to be made).
fn step(dir: &OwnedFd, name: &OsStr, create: bool) -> io::Result<Option<OwnedFd>> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) if create => {
            match mkdirat(dir, name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(Some(openat(dir, name, flags, Mode::empty())?))
        }
        Err(Errno::ENOENT) => Ok(None),
        Err(Errno::ELOOP | Errno::ENOTDIR | Errno::EMLINK) => Err(io::Error::other(format!(
            "`{}` is a link or a file, not a folder",
            name.to_string_lossy()
        ))),
        Err(e) => Err(e.into()),
    }
}

/// `rel`'s parts: its folders and its name (only plain parts; `.` is skipped).
fn parts(rel: &Path) -> io::Result<(Vec<&OsStr>, &OsStr)> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => {
                return Err(io::Error::other(format!(
                    "`{}` is not a path inside the folder",
                    rel.display()
                )));
            }
        }
    }
    let name = out.pop().ok_or_else(|| io::Error::other("an empty path"))?;
    Ok((out, name))
}

/// The folder holding `rel` inside `root`, without following links; `None` when a folder on
/// the way is missing or is a link (nothing there to read).
fn source_dir(root: &OwnedFd, dirs: &[&OsStr]) -> io::Result<Option<OwnedFd>> {
    let mut at = root.try_clone()?;
    for d in dirs {
        match step(&at, d, false) {
            Ok(Some(fd)) => at = fd,
            Ok(None) | Err(_) => return Ok(None),
        }
    }
    Ok(Some(at))
}

fn kind_of(mode: nix::libc::mode_t) -> SFlag {
    SFlag::from_bits_truncate(mode) & SFlag::S_IFMT
}

/// Copies `files` (relative to `root`) into `dest`: regular files (with their mode) and links
/// (as links); anything else, a file gone meanwhile, or one reached only through a link in
/// `root`, is passed over. A link or a file in `dest` where a folder is needed is an error
/// naming the path; a file or link at a file's place is replaced. The number copied.
pub(crate) fn copy_listed(root: &Path, files: &[PathBuf], dest: &Path) -> io::Result<usize> {
    let src_root = open_root(root)?;
    let dst_root = open_root(dest)?;
    let mut copied = 0;
    for rel in files {
        let (dirs, name) = parts(rel)?;
        let Some(src) = source_dir(&src_root, &dirs)? else {
            continue;
        };
        let st = match fstatat(&src, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        let kind = kind_of(st.st_mode);
        if kind != SFlag::S_IFREG && kind != SFlag::S_IFLNK {
            continue;
        }
        let in_the_way =
            |e: io::Error| io::Error::other(format!("cannot write {}: {e}", rel.display()));
        let mut dst = dst_root.try_clone()?;
        for d in &dirs {
            dst = step(&dst, d, true)
                .map_err(in_the_way)?
                .ok_or_else(|| in_the_way(io::Error::other("its folder vanished")))?;
        }
        match fstatat(&dst, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(there) if kind_of(there.st_mode) == SFlag::S_IFDIR => {
                return Err(in_the_way(io::Error::other("a folder is in the way")));
            }
            Ok(_) => unlinkat(&dst, name, UnlinkatFlags::NoRemoveDir)?,
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
        if kind == SFlag::S_IFLNK {
            let target = readlinkat(&src, name)?;
            symlinkat(target.as_os_str(), &dst, name)?;
        } else {
            // Non-blocking: a pipe swapped in for the file cannot hold the copy up.
            let from = match openat(
                &src,
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(Errno::ENOENT | Errno::ELOOP) => continue,
                Err(e) => return Err(e.into()),
            };
            let fst = fstat(&from)?;
            if kind_of(fst.st_mode) != SFlag::S_IFREG {
                continue;
            }
            let mode = Mode::from_bits_truncate(fst.st_mode & 0o777);
            let to = openat(
                &dst,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                mode,
            )?;
            fchmod(&to, mode)?;
            io::copy(&mut File::from(from), &mut File::from(to))?;
        }
        copied += 1;
    }
    Ok(copied)
}

static STAGED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Copies `files` of `root` into a new folder beside `dest` (`.new-NAME-PID-N`, its parents
/// made), for the caller to rename into `dest`'s place so `dest` is never half-written. The
/// new folder and the number copied; on an error nothing is left behind.
pub(crate) fn stage_beside(
    dest: &Path,
    root: &Path,
    files: &[PathBuf],
) -> io::Result<(PathBuf, usize)> {
    let parent = dest
        .parent()
        .ok_or_else(|| io::Error::other(format!("{} has no folder", dest.display())))?;
    std::fs::create_dir_all(parent)?;
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let n = STAGED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = parent.join(format!(".new-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&temp);
    std::fs::create_dir(&temp)?;
    match copy_listed(root, files, &temp) {
        Ok(copied) => Ok((temp, copied)),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&temp);
            Err(e)
        }
    }
}

/// The contents of the regular file `rel` inside `root`, read without following a link and
/// at most `max` bytes; `None` when it is missing, a link, or not a regular file.
pub(crate) fn read_regular(root: &Path, rel: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let (dirs, name) = parts(rel)?;
    let Some(dir) = source_dir(&open_root(root)?, &dirs)? else {
        return Ok(None);
    };
    let fd = match openat(
        &dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ELOOP) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let st = fstat(&fd)?;
    if kind_of(st.st_mode) != SFlag::S_IFREG {
        return Ok(None);
    }
    if st.st_size as u64 > max {
        return Err(io::Error::other(format!(
            "{} is larger than {} MiB",
            rel.display(),
            max >> 20
        )));
    }
    let mut out = Vec::new();
    File::from(fd).take(max).read_to_end(&mut out)?;
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_in_the_destination_are_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst, outside) = (
            dir.path().join("src"),
            dir.path().join("dst"),
            dir.path().join("outside"),
        );
        for d in [&src, &dst, &outside] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::create_dir_all(src.join("vendor")).unwrap();
        std::fs::write(src.join("vendor/authorized_keys"), "attacker").unwrap();
        // The destination (a checkout) has `vendor` as a link to a folder outside.
        symlink(&outside, dst.join("vendor")).unwrap();
        let err = copy_listed(&src, &[PathBuf::from("vendor/authorized_keys")], &dst)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("vendor/authorized_keys") && err.contains("link"),
            "{err}"
        );
        assert!(!outside.join("authorized_keys").exists());
        // A link at a file's place is replaced, not written through.
        std::fs::write(outside.join("target"), "keep").unwrap();
        std::fs::write(src.join("file"), "new").unwrap();
        symlink(outside.join("target"), dst.join("file")).unwrap();
        copy_listed(&src, &[PathBuf::from("file")], &dst).unwrap();
        assert_eq!(
            std::fs::read_to_string(outside.join("target")).unwrap(),
            "keep"
        );
        assert_eq!(std::fs::read_to_string(dst.join("file")).unwrap(), "new");
    }

    #[test]
    fn links_in_the_source_are_copied_as_links_and_never_read_through() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst, outside) = (
            dir.path().join("src"),
            dir.path().join("dst"),
            dir.path().join("outside"),
        );
        for d in [&src, &dst, &outside] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(outside.join("secret"), "s").unwrap();
        symlink(&outside, src.join("data")).unwrap();
        symlink(outside.join("secret"), src.join("link")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(src.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(src.join("run.sh"), std::fs::Permissions::from_mode(0o750))
            .unwrap();
        let files = ["data/secret", "link", "run.sh", "gone"].map(PathBuf::from);
        assert_eq!(copy_listed(&src, &files, &dst).unwrap(), 2);
        assert!(!dst.join("data").exists());
        assert!(
            std::fs::symlink_metadata(dst.join("link"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let mode = std::fs::metadata(dst.join("run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o750);
        // Reading for a hash: regular files only, through no link, capped.
        assert_eq!(
            read_regular(&src, Path::new("link"), 1 << 20).unwrap(),
            None
        );
        assert_eq!(
            read_regular(&src, Path::new("data/secret"), 1 << 20).unwrap(),
            None
        );
        assert_eq!(
            read_regular(&src, Path::new("run.sh"), 1 << 20).unwrap(),
            Some(b"#!/bin/sh\n".to_vec())
        );
        assert!(read_regular(&src, Path::new("run.sh"), 4).is_err());
    }
}
