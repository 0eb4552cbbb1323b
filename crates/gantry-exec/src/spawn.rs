//! Starting a job's process, and waiting for it (and reading whether its workspace is still
//! empty): the one place in Gantry with `unsafe` code.
//!
//! `std::process::Command` (glibc's `posix_spawn` underneath) pays, per process, for an mmap'd
//! and unmapped child stack (the unmap interrupts every other core running one of our
//! threads), ~64 `sigaction` calls in the child, a copy of our whole environment into a map,
//! and a `pidfd_open` after the fact. A DAG of short jobs is bound by exactly that. Here the
//! child is made with `clone(CLONE_VM | CLONE_VFORK)` on a stack each thread keeps, and the
//! argument and environment vectors are built in two buffers. A pidfd is opened only for a
//! wait that finds the process still running: most jobs of a big DAG have ended by the time
//! anyone waits (their output's end comes first) and are reaped by pid, without one (making
//! and closing a pidfd per job, `CLONE_PIDFD`, was ~3% of a profile of the 1000-job DAG's
//! engine). The pid cannot name another process meanwhile: only we reap it.
//!
//! The child shares our memory until it calls `execve`, and we are suspended until then, so it
//! may only make system calls: new process group, standard streams, working directory (entered
//! through the open folder: no path to look up), signal state, exec. A failed step writes the
//! step and `errno` where we read them once we resume.
//!
//! Signals: we block every signal around the clone, so none of our handlers can run on the
//! child's stack while it shares our memory — every signal but `SIGCHLD`. No `SIGCHLD` is meant
//! for the child (it has no children before it execs), and ours is ignored unless blocked: a
//! job that ended while we blocked it (~200 µs per clone, until the child execs) had its
//! `SIGCHLD` queued for another of our threads (SQLite's), woken for nothing, ~450 times in
//! the 1000-job DAG. The child then puts `SIGPIPE` back to its default (Rust's runtime
//! ignores it; a job expects the default, as `std::process::Command` gives),
//! resets to default any signal with a handler that arrived for it before it left our process
//! group (it is delivered after the mask is cleared, as to a freshly forked child), and
//! clears its mask. From its new group until `execve`, nobody knows its pid.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use tokio::io::unix::AsyncFd;

/// NUL-terminated strings in one buffer: an argument or environment vector.
#[derive(Debug, Default, Clone)]
pub struct CStrings {
    buf: Vec<u8>,
    starts: Vec<usize>,
}

impl CStrings {
    /// Adds one string made of `parts`; an interior NUL is refused (it would cut it short).
    pub fn push(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        if parts.iter().any(|p| p.contains(&0)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an argument or environment variable contains a NUL byte",
            ));
        }
        self.starts.push(self.buf.len());
        for p in parts {
            self.buf.extend_from_slice(p);
        }
        self.buf.push(0);
        Ok(())
    }

    /// The strings for which `keep` holds, in order.
    pub fn filtered(&self, keep: impl Fn(&[u8]) -> bool) -> CStrings {
        let mut out = CStrings::default();
        for (i, &start) in self.starts.iter().enumerate() {
            let end = self.starts.get(i + 1).map_or(self.buf.len(), |&e| e) - 1;
            let s = &self.buf[start..end];
            if keep(s) {
                out.starts.push(out.buf.len());
                out.buf.extend_from_slice(s);
                out.buf.push(0);
            }
        }
        out
    }

    /// The NULL-terminated pointer array `execve` takes; valid while `self` is not changed.
    fn pointers(&self) -> Vec<*const c_char> {
        let base = self.buf.as_ptr();
        let mut v: Vec<*const c_char> = self
            .starts
            .iter()
            .map(|&s| base.wrapping_add(s).cast())
            .collect();
        v.push(std::ptr::null());
        v
    }
}

/// What a new process is started with. Its standard input and output are the given files
/// (standard error is standard output); it leads a new process group.
#[derive(Debug)]
pub struct Spawn<'a> {
    /// The program's path (not searched in `PATH`).
    pub program: &'a CStr,
    pub argv: &'a CStrings,
    pub env: &'a CStrings,
    /// The working directory, open.
    pub cwd: BorrowedFd<'a>,
    pub stdin: BorrowedFd<'a>,
    pub output: BorrowedFd<'a>,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// A started process: its pid (also its process group), and a pidfd once a wait needs one.
#[derive(Debug)]
pub struct Process {
    pid: i32,
    /// The pidfd as the reactor knows it, opened and registered only once a wait finds the
    /// process still running. Declared before `pidfd`, so it is removed before that is closed.
    watched: Option<AsyncFd<RawPidfd>>,
    pidfd: Option<OwnedFd>,
    exit: Option<Exit>,
}

/// The raw pidfd for the reactor; `Process::pidfd` owns it.
#[derive(Debug)]
struct RawPidfd(c_int);

impl AsRawFd for RawPidfd {
    fn as_raw_fd(&self) -> c_int {
        self.0
    }
}

/// The step of the child's set-up that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
enum Step {
    Group = 1,
    Streams = 2,
    Cwd = 3,
    Exec = 4,
}

/// Everything the child reads (and the one thing it writes), prepared before the clone.
struct ChildArgs {
    program: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    cwd: c_int,
    stdin: c_int,
    output: c_int,
    failed_step: AtomicI32,
    errno: AtomicI32,
}

/// Each thread's stack for its children's first instants (reused: the thread is suspended
/// while a child runs on it), with an inaccessible page below it.
struct ChildStack {
    base: *mut c_void,
    len: usize,
}

const GUARD: usize = 4096;
const STACK: usize = 64 * 1024;

impl ChildStack {
    fn new() -> io::Result<ChildStack> {
        let len = GUARD + STACK;
        // SAFETY: a fresh anonymous mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the first page of the mapping made above.
        if unsafe { libc::mprotect(base, GUARD, libc::PROT_NONE) } != 0 {
            let e = io::Error::last_os_error();
            // SAFETY: unmapping what was mapped above, not yet shared.
            unsafe { libc::munmap(base, len) };
            return Err(e);
        }
        Ok(ChildStack { base, len })
    }

    /// The top of the stack (stacks grow down on every Linux target we build for), 16-aligned.
    fn top(&self) -> *mut c_void {
        let end = self.base as usize + self.len;
        (end & !15) as *mut c_void
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping is this thread's and no child runs on it (we would be suspended).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

thread_local! {
    static STACK_OF_THIS_THREAD: RefCell<Option<ChildStack>> = const { RefCell::new(None) };
}

/// The child: set up, then exec. Only system calls (see the module's doc).
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `ChildArgs` the parent keeps alive until we exec or exit (it is
    // suspended meanwhile); every pointer in it is valid and NUL- or NULL-terminated.
    unsafe {
        let a = &*(arg as *const ChildArgs);
        let fail = |step: Step| -> ! {
            a.errno.store(*libc::__errno_location(), Ordering::Relaxed);
            a.failed_step.store(step as i32, Ordering::Relaxed);
            libc::_exit(127)
        };
        if libc::setpgid(0, 0) != 0 {
            fail(Step::Group);
        }
        if libc::dup2(a.stdin, 0) < 0 || libc::dup2(a.output, 1) < 0 || libc::dup2(a.output, 2) < 0
        {
            fail(Step::Streams);
        }
        if libc::fchdir(a.cwd) != 0 {
            fail(Step::Cwd);
        }
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGPIPE, &default, std::ptr::null_mut());
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pending);
        libc::sigpending(&mut pending);
        for sig in 1..libc::SIGRTMAX() {
            if libc::sigismember(&pending, sig) == 1 {
                let mut old: libc::sigaction = std::mem::zeroed();
                libc::sigaction(sig, std::ptr::null(), &mut old);
                if old.sa_sigaction != libc::SIG_IGN {
                    libc::sigaction(sig, &default, std::ptr::null_mut());
                }
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(a.program, a.argv, a.envp);
        fail(Step::Exec)
    }
}

/// Starts a process as `spawn` says. An error names the step that failed; a failed `execve`
/// keeps its `errno` kind (`NotFound`, `PermissionDenied`, …).
pub fn spawn(spawn: &Spawn<'_>) -> io::Result<Process> {
    let argv = spawn.argv.pointers();
    let envp = spawn.env.pointers();
    let args = ChildArgs {
        program: spawn.program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: spawn.cwd.as_raw_fd(),
        stdin: spawn.stdin.as_raw_fd(),
        output: spawn.output.as_raw_fd(),
        failed_step: AtomicI32::new(0),
        errno: AtomicI32::new(0),
    };
    let pid = STACK_OF_THIS_THREAD.with(|cell| -> io::Result<c_int> {
        let mut slot = cell.borrow_mut();
        let stack = match &mut *slot {
            Some(stack) => stack.top(),
            None => slot.insert(ChildStack::new()?).top(),
        };
        // SAFETY: every signal but SIGCHLD (which nothing sends the child: it has no children
        // yet) is blocked on this thread while the child shares our memory (restored right
        // after); the child runs `child_main` on this thread's own stack (unused until we
        // resume, CLONE_VFORK) with `args`, which outlives the call.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut before: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::sigdelset(&mut all, libc::SIGCHLD);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut before);
            let pid = libc::clone(
                child_main,
                stack,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                &args as *const ChildArgs as *mut c_void,
            );
            let clone_error = io::Error::last_os_error();
            libc::pthread_sigmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
            if pid < 0 {
                return Err(clone_error);
            }
            Ok(pid)
        }
    })?;
    let step = args.failed_step.load(Ordering::Relaxed);
    if step != 0 {
        let _ = waitid(pid, 0); // it has exited: reap it
        let cause = io::Error::from_raw_os_error(args.errno.load(Ordering::Relaxed));
        let what = match step {
            s if s == Step::Exec as i32 => return Err(cause),
            s if s == Step::Cwd as i32 => "cannot enter the workspace",
            s if s == Step::Streams as i32 => "cannot connect the output",
            _ => "cannot make a process group",
        };
        return Err(io::Error::other(format!("{what}: {cause}")));
    }
    Ok(Process {
        pid,
        watched: None,
        pidfd: None,
        exit: None,
    })
}

/// Whether the open folder `dir` has no entries but `.` and `..` (read from its start).
pub fn dir_is_empty(dir: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: `dir` is open; rewinding it only moves our own offset.
    if unsafe { libc::lseek(dir.as_raw_fd(), 0, libc::SEEK_SET) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // `linux_dirent64`s: inode (8 bytes), offset (8), record length (2), type (1), name.
    let mut buf = [0u64; 512];
    loop {
        // SAFETY: the buffer is valid for its length in bytes and 8-aligned, as the kernel asks.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                std::mem::size_of_val(&buf),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(true);
        }
        // SAFETY: the kernel wrote `n` bytes of whole records into the buffer.
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize) };
        let mut at = 0;
        while at + 19 < bytes.len() {
            let len = u16::from_ne_bytes([bytes[at + 16], bytes[at + 17]]) as usize;
            let name = &bytes[at + 19..(at + len).min(bytes.len())];
            let name = name.split(|b| *b == 0).next().unwrap_or_default();
            if name != b"." && name != b".." {
                return Ok(false);
            }
            if len == 0 {
                break;
            }
            at += len;
        }
    }
}

/// `waitid` on our child `pid`: `Ok(None)` while it runs (with `WNOHANG`).
fn waitid(pid: c_int, flags: c_int) -> io::Result<Option<Exit>> {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter.
        let (r, info) = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let r = libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | flags,
            );
            (r, info)
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // SAFETY: waitid filled in (or left zero) a SIGCHLD siginfo.
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        return Ok(Some(match info.si_code {
            libc::CLD_EXITED => Exit::Code(status),
            _ => Exit::Signal(status),
        }));
    }
}

impl Process {
    /// The process id, which is also its process group's.
    pub fn id(&self) -> i32 {
        self.pid
    }

    /// Waits for the process to end (and reaps it); again after that, returns the same.
    pub async fn wait(&mut self) -> io::Result<Exit> {
        if let Some(exit) = self.try_wait()? {
            return Ok(exit);
        }
        let watched = match &mut self.watched {
            Some(watched) => watched,
            none => {
                // SAFETY: a plain system call; the pid is our unreaped child, so it is still
                // this process.
                let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, self.pid, 0) };
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: `pidfd_open` made a new (close-on-exec) pidfd that nothing else owns.
                let pidfd = self
                    .pidfd
                    .insert(unsafe { OwnedFd::from_raw_fd(fd as c_int) });
                // SAFETY: `pidfd` stays open while `watched` exists: it is dropped first.
                none.insert(unsafe {
                    AsyncFd::register_with_interest(
                        RawPidfd(pidfd.as_raw_fd()),
                        tokio::io::Interest::READABLE,
                    )?
                })
            }
        };
        loop {
            // A pidfd turns readable when its process ends, and registering one that already
            // has reports it at once.
            let mut ready = watched.readable().await?;
            if let Some(exit) = waitid(self.pid, libc::WNOHANG)? {
                self.exit = Some(exit);
                return Ok(exit);
            }
            // Not over after all: wait for the next change (one arriving meanwhile is kept).
            ready.clear_ready();
        }
    }

    fn try_wait(&mut self) -> io::Result<Option<Exit>> {
        if self.exit.is_none() {
            self.exit = waitid(self.pid, libc::WNOHANG)?;
        }
        Ok(self.exit)
    }
}

impl Drop for Process {
    /// A process dropped before it was waited for (its task was aborted) is killed with its
    /// group and reaped if it is already gone; else init reaps it when we exit.
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(self.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = self.try_wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::io::Read;
    use std::os::fd::AsFd;

    fn strings(items: &[&str]) -> CStrings {
        let mut c = CStrings::default();
        for i in items {
            c.push(&[i.as_bytes()]).unwrap();
        }
        c
    }

    fn run(program: &str, argv: &[&str], env: &[&str], cwd: &str) -> io::Result<(Exit, String)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (mut reader, writer) = std::io::pipe()?;
            let null = std::fs::File::open("/dev/null")?;
            let program = CString::new(program).unwrap();
            let cwd = std::fs::File::open(cwd)?;
            let (argv, env) = (strings(argv), strings(env));
            let mut p = spawn(&Spawn {
                program: &program,
                argv: &argv,
                env: &env,
                cwd: cwd.as_fd(),
                stdin: null.as_fd(),
                output: writer.as_fd(),
            })?;
            drop(writer);
            let exit = p.wait().await?;
            let mut out = String::new();
            reader.read_to_string(&mut out)?;
            Ok((exit, out))
        })
    }

    #[test]
    fn a_process_gets_its_arguments_environment_folder_and_group() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().to_str().unwrap();
        let (exit, out) = run(
            "/bin/sh",
            &[
                "sh",
                "-c",
                "echo \"$1 $X $(pwd)\"; echo err >&2; \
                 set -- $(cat /proc/$$/stat); [ \"$5\" = \"$$\" ] && echo leader; exit 7",
                "sh",
                "one",
            ],
            &["X=two", "PATH=/usr/bin:/bin"],
            cwd,
        )
        .unwrap();
        assert_eq!(exit, Exit::Code(7));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], format!("one two {cwd}"));
        assert_eq!(lines[1], "err", "stderr goes to the same pipe");
        assert_eq!(lines[2], "leader", "the process leads its own group");
    }

    #[test]
    fn sigpipe_is_back_to_default_and_the_mask_is_clear() {
        // Rust ignores SIGPIPE in its own process; the child must not inherit that.
        let (exit, out) = run(
            "/bin/sh",
            &["sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status"],
            &[],
            "/",
        )
        .unwrap();
        assert_eq!(exit, Exit::Code(0));
        for line in out.lines() {
            let mask = u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap();
            assert_eq!(mask & (1 << (13 - 1)), 0, "SIGPIPE in {line}");
            if line.starts_with("SigBlk") {
                assert_eq!(mask, 0, "{line}");
            }
        }
    }

    #[test]
    fn a_wait_that_finds_the_process_running_watches_it_to_its_end() {
        let started = std::time::Instant::now();
        let (exit, out) = run(
            "/bin/sh",
            &["sh", "-c", "exec >&- 2>&-; sleep 0.3; exit 3"],
            &[],
            "/",
        )
        .unwrap();
        assert_eq!(exit, Exit::Code(3));
        assert_eq!(out, "");
        assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    }

    #[test]
    fn a_signal_ends_a_process_with_that_signal() {
        let (exit, _) = run("/bin/sh", &["sh", "-c", "kill -TERM $$"], &[], "/").unwrap();
        assert_eq!(exit, Exit::Signal(libc::SIGTERM));
    }

    #[test]
    fn failures_say_which_step_failed() {
        let missing = run("/no/such/program", &["x"], &[], "/").unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        let not_exec = run(plain.to_str().unwrap(), &["x"], &[], "/").unwrap_err();
        assert_eq!(not_exec.kind(), io::ErrorKind::PermissionDenied);
        // The working directory is open but is not a folder.
        let no_dir = run("/bin/true", &["true"], &[], plain.to_str().unwrap()).unwrap_err();
        assert!(
            no_dir.to_string().starts_with("cannot enter the workspace"),
            "{no_dir}"
        );
    }

    #[test]
    fn an_open_folder_is_empty_until_something_is_in_it_and_again_after() {
        let dir = tempfile::tempdir().unwrap();
        let open = std::fs::File::open(dir.path()).unwrap();
        assert!(dir_is_empty(open.as_fd()).unwrap());
        assert!(
            dir_is_empty(open.as_fd()).unwrap(),
            "read again from the start"
        );
        std::fs::write(dir.path().join("f"), "").unwrap();
        assert!(!dir_is_empty(open.as_fd()).unwrap());
        std::fs::remove_file(dir.path().join("f")).unwrap();
        std::fs::create_dir(dir.path().join(".hidden")).unwrap();
        assert!(
            !dir_is_empty(open.as_fd()).unwrap(),
            "a hidden folder counts"
        );
        std::fs::remove_dir(dir.path().join(".hidden")).unwrap();
        // More names than one read returns (4 KiB of records): all are looked at.
        for i in 0..300 {
            std::fs::write(dir.path().join(format!("{i:0>40}")), "").unwrap();
        }
        assert!(!dir_is_empty(open.as_fd()).unwrap());
        for i in 0..300 {
            std::fs::remove_file(dir.path().join(format!("{i:0>40}"))).unwrap();
        }
        assert!(dir_is_empty(open.as_fd()).unwrap());
        let plain = tempfile::NamedTempFile::new().unwrap();
        let not_a_folder = std::fs::File::open(plain.path()).unwrap();
        assert!(dir_is_empty(not_a_folder.as_fd()).is_err());
    }

    #[test]
    fn interior_nul_bytes_are_refused() {
        let mut c = CStrings::default();
        assert!(c.push(&[b"A=", b"x\0y"]).is_err());
        assert!(
            c.starts.is_empty() && c.buf.is_empty(),
            "nothing half-written"
        );
        c.push(&[b"A=", b"xy"]).unwrap();
        assert_eq!(c.buf, b"A=xy\0");
        c.push(&[b"B=", b""]).unwrap();
        c.push(&[b"C=", b"z"]).unwrap();
        let kept = c.filtered(|s| !s.starts_with(b"B="));
        assert_eq!(kept.buf, b"A=xy\0C=z\0");
        assert_eq!(kept.starts, [0, 5]);
        assert_eq!(c.filtered(|_| false).buf, b"");
    }
}
