//! File outputs. Every file sink (and dead-letter file) is prepared before any data moves: its
//! parent directories are created and temporary part files are created next to the final path
//! (`.NAME.flow-tmp-PID-N.partW`), which proves the destination writable. A file sink has one
//! part that all workers append to through a [`SharedFile`] (each write is a whole buffer of
//! whole records, under a lock); dead-letter files have one part per worker. On success the
//! parts are appended to part 0 in worker order and part 0 is renamed to the final name (a
//! rename within one directory is atomic). On failure, or if the job is dropped without
//! committing, the parts are removed: no file ever appears under the final name unless the job
//! succeeded.
//!
//! What the final name is:
//! - a regular file (or nothing yet): replaced atomically; an existing file keeps its permission
//!   bits (the part is given them before any data is written to it);
//! - a symlink (chain) to a regular file, or a dangling one: the *target* is replaced
//!   atomically, the symlink stays;
//! - a non-regular file (a character device such as `/dev/null`, a FIFO, a socket, or a symlink
//!   to one, e.g. `/proc/self/fd/1`): it is opened and written in place, never renamed over.
//!   Such an output cannot be atomic: what was written before a failure stays written. Opening
//!   a FIFO waits for a reader, as a shell redirection does. Extra per-worker parts (dead
//!   letters) then live in the system temporary directory and are copied in at commit.
//!
//! Temporary parts are recorded in a process-wide registry while they exist, so that a signal
//! handler ([`remove_live_temporaries`]) can delete them before the process exits. A process
//! killed with SIGKILL cannot clean up; its parts carry its process id, and the next
//! `prepare` of an output in the same directory removes the parts of every dead process
//! ([`remove_stale`]; a process counts as alive while `/proc/PID` exists, and on systems
//! without `/proc` nothing is removed).

use super::ConnectorError;
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// One open output file shared by the workers of a process. Every `write` call is written
/// whole under the lock, so the callers' buffers (whole records) never interleave.
///
/// Write-behind: every [`WRITE_BEHIND_BYTES`] written to a regular file, the writer that
/// crossed the mark asks the kernel to start writing the file's dirty pages to disk
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait for the disk), outside the
/// lock. Without it all of a large output is still dirty when the job ends, and renaming the
/// part over an existing file makes ext4 (`auto_da_alloc`) allocate and queue all of it at
/// that moment: ~0.1-0.2 s of the 0.9 s of J1 at 10M rows, spent after the last row, on one
/// thread. Started while the workers write, the same I/O overlaps the job.
#[derive(Clone, Debug)]
pub struct SharedFile(Arc<SharedInner>);

#[derive(Debug)]
struct SharedInner {
    file: Mutex<File>,
    /// Bytes written since the last write-behind request (`None`: not a regular file, or not
    /// Linux).
    behind: Option<AtomicU64>,
    #[cfg(target_os = "linux")]
    fd: std::os::fd::RawFd,
}

/// Bytes written to a shared output between two write-behind requests.
pub const WRITE_BEHIND_BYTES: u64 = 8 << 20;

impl SharedFile {
    pub fn new(file: File) -> SharedFile {
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        SharedFile(Arc::new(SharedInner {
            behind: (cfg!(target_os = "linux") && regular).then(|| AtomicU64::new(0)),
            #[cfg(target_os = "linux")]
            fd: std::os::fd::AsRawFd::as_raw_fd(&file),
            file: Mutex::new(file),
        }))
    }

    /// Starts writeback of the file's dirty pages once enough bytes were written since the
    /// last time. Advisory: an error (a file system without it) changes nothing.
    fn write_behind(&self, written: usize) {
        let Some(behind) = &self.0.behind else { return };
        let n = behind.fetch_add(written as u64, Ordering::Relaxed) + written as u64;
        if n < WRITE_BEHIND_BYTES {
            return;
        }
        behind.store(0, Ordering::Relaxed);
        #[cfg(target_os = "linux")]
        // SAFETY: the descriptor belongs to the `File` owned by `self.0`, open while `self`
        // lives; the call only reads the file's page cache state.
        unsafe {
            libc::sync_file_range(self.0.fd, 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
}

impl Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        {
            // A worker that panicked while writing fails the job anyway; the file stays usable.
            let mut f = self.0.file.lock().unwrap_or_else(|e| e.into_inner());
            f.write_all(buf)?;
        }
        self.write_behind(buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0
            .file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .flush()
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// Temporary files of this process that exist right now.
static LIVE: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn live() -> MutexGuard<'static, BTreeSet<PathBuf>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes every temporary file of this process and returns how many there were. For the
/// signal handler, just before the process exits: the registry stays locked afterwards, so
/// that no other thread creates or moves a part any more (they block until the exit).
pub fn remove_live_temporaries() -> usize {
    let l = live();
    let n = l.len();
    for p in l.iter() {
        let _ = fs::remove_file(p);
    }
    std::mem::forget(l);
    n
}

const TMP_MARK: &str = ".flow-tmp-";

/// Whether process `pid` is running (conservatively true when it cannot be told).
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc_root = Path::new("/proc");
    if !proc_root.join("self").exists() {
        return true;
    }
    proc_root.join(pid.to_string()).exists()
}

/// Removes the temporary parts of dead processes in `dir` (left by a `kill -9`): files named
/// `.ANY.flow-tmp-PID-N.partW` whose PID is not running. Returns how many were removed.
pub fn remove_stale(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with('.') {
            continue;
        }
        let Some(at) = name.rfind(TMP_MARK) else {
            continue;
        };
        let tail = &name[at + TMP_MARK.len()..];
        let Some(pid) = tail.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let is_part = tail
            .rsplit_once(".part")
            .is_some_and(|(_, w)| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()));
        if is_part
            && !process_alive(pid)
            && e.file_type().is_ok_and(|t| t.is_file())
            && fs::remove_file(e.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Follows a chain of symlinks at `p` (at most 40) to the path that a write would create or
/// replace. Relative link targets are taken relative to the link's directory.
fn follow_links(p: &Path) -> PathBuf {
    let mut cur = p.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => match fs::read_link(&cur) {
                Ok(t) => {
                    cur = match cur.parent() {
                        Some(d) if t.is_relative() => d.join(t),
                        _ => t,
                    };
                }
                Err(_) => break,
            },
            _ => break,
        }
    }
    cur
}

fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[derive(Debug)]
pub struct AtomicOutput {
    /// The path as the job names it (shown in messages).
    pub final_path: PathBuf,
    /// Where the finished file goes: `final_path` with its symlinks followed.
    target: PathBuf,
    pub parts: Vec<PathBuf>,
    /// A non-regular destination, opened for writing in place: part 0 is the destination
    /// itself (`parts[0]` is its path), the other parts are temporary files.
    direct: Option<File>,
    /// The permissions of the file being replaced.
    mode: Option<fs::Permissions>,
    committed: bool,
}

impl AtomicOutput {
    pub fn prepare(final_path: &Path, parts: usize) -> Result<AtomicOutput, ConnectorError> {
        let place = final_path.display().to_string();
        let cannot =
            |e: io::Error| ConnectorError::new(&place, format!("cannot write output: {e}"));
        if final_path.is_dir() {
            return Err(ConnectorError::new(place, "is a directory"));
        }
        let mut out = AtomicOutput {
            final_path: final_path.to_path_buf(),
            target: final_path.to_path_buf(),
            parts: Vec::new(),
            direct: None,
            mode: None,
            committed: false,
        };
        let tag = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let existing = fs::metadata(final_path).ok();
        if existing.as_ref().is_some_and(|m| !m.is_file()) {
            // A device, FIFO or socket (or a symlink to one): write it in place.
            let f = OpenOptions::new()
                .write(true)
                .open(final_path)
                .map_err(cannot)?;
            out.direct = Some(f);
            out.parts.push(final_path.to_path_buf());
            let dir = std::env::temp_dir();
            remove_stale(&dir);
            let name = format!("flow-direct-output{TMP_MARK}");
            for w in 1..parts.max(1) {
                let p = dir.join(format!(".{name}{tag}.part{w}"));
                out.create_part(p).map_err(cannot)?;
            }
            return Ok(out);
        }
        out.target = follow_links(final_path);
        let name = out
            .target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| ConnectorError::new(&place, "not a file path"))?;
        let dir = parent_dir(&out.target);
        fs::create_dir_all(&dir).map_err(|e| {
            ConnectorError::new(
                &place,
                format!("cannot create directory {}: {e}", dir.display()),
            )
        })?;
        remove_stale(&dir);
        for w in 0..parts.max(1) {
            let p = dir.join(format!(".{name}{TMP_MARK}{tag}.part{w}"));
            out.create_part(p).map_err(cannot)?;
        }
        // The replaced file keeps its permission bits: set before any data is written (plus
        // the owner's write bit, so that the workers can open the part), exactly at commit.
        if let (Some(m), Some(first)) = (existing, out.parts.first()) {
            let mut writable = m.permissions();
            writable.set_mode(writable.mode() | 0o200);
            fs::set_permissions(first, writable).map_err(cannot)?;
            out.mode = Some(m.permissions());
        }
        Ok(out)
    }

    fn create_part(&mut self, p: PathBuf) -> io::Result<()> {
        // Created and registered under the lock: the signal handler removes either both or
        // neither.
        let mut l = live();
        OpenOptions::new().write(true).create_new(true).open(&p)?;
        l.insert(p.clone());
        self.parts.push(p);
        Ok(())
    }

    /// Whether this output is written in place (a device or FIFO: not atomic).
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Opens worker `w`'s part for writing.
    pub fn open_part(&self, w: usize) -> io::Result<File> {
        if let (0, Some(f)) = (w, &self.direct) {
            return f.try_clone();
        }
        let p = self
            .parts
            .get(w)
            .ok_or_else(|| io::Error::other(format!("no part file for worker {w}")))?;
        OpenOptions::new().write(true).truncate(true).open(p)
    }

    /// The temporary parts (all parts except a direct destination).
    fn temporaries(&self) -> &[PathBuf] {
        let skip = usize::from(self.direct.is_some()).min(self.parts.len());
        &self.parts[skip..]
    }

    /// Concatenates the parts in order and renames the result into place (or, for a direct
    /// destination, appends the other parts to it).
    pub fn commit(&mut self) -> io::Result<()> {
        if let Some((first, rest)) = self.parts.split_first() {
            // Held while the parts are moved: the signal handler removes either all of them
            // or none (a committed output is complete).
            let mut l = live();
            if !rest.is_empty() || self.direct.is_some() {
                // Not `append(true)`: Linux refuses `copy_file_range` (and `sendfile`) on an
                // O_APPEND file, and `io::copy` then copies through user space (the 130 MB
                // second half of J1's output at 10M rows). Seeking to the end instead lets the
                // kernel copy it (0.09 s).
                let mut out = match &self.direct {
                    Some(f) => f.try_clone()?,
                    None => {
                        let mut f = OpenOptions::new().write(true).open(first)?;
                        f.seek(SeekFrom::End(0))?;
                        f
                    }
                };
                for p in rest {
                    let mut f = File::open(p)?;
                    io::copy(&mut f, &mut out)?;
                }
                out.flush()?;
            }
            // The file being replaced, held open across the rename: the rename then only swaps
            // names, and the old file's pages and blocks are freed when this closes, after the
            // registry is unlocked (0.05-0.1 s for a 260 MB file here), so that outputs
            // committed on several threads free theirs at the same time.
            let mut replaced = None;
            if self.direct.is_none() {
                if let Some(m) = &self.mode {
                    fs::set_permissions(first, m.clone())?;
                }
                replaced = File::open(&self.target).ok();
                fs::rename(first, &self.target)?;
                l.remove(first);
            }
            for p in rest {
                let _ = fs::remove_file(p);
                l.remove(p);
            }
            drop(l);
            drop(replaced);
        }
        self.committed = true;
        Ok(())
    }

    /// Removes the temporary parts.
    pub fn discard(&mut self) {
        let mut l = live();
        for p in self.temporaries() {
            let _ = fs::remove_file(p);
            l.remove(p);
        }
        self.committed = true;
    }
}

impl Drop for AtomicOutput {
    fn drop(&mut self) {
        if !self.committed {
            self.discard();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parts are in the registry from `prepare` until `commit` or `discard`.
    #[test]
    fn parts_are_registered_while_they_exist() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = AtomicOutput::prepare(&dir.path().join("a.csv"), 2).unwrap();
        let mut b = AtomicOutput::prepare(&dir.path().join("b.csv"), 1).unwrap();
        let parts: Vec<PathBuf> = a.parts.iter().chain(&b.parts).cloned().collect();
        assert!(parts.iter().all(|p| live().contains(p) && p.exists()));
        a.commit().unwrap();
        b.discard();
        assert!(parts.iter().all(|p| !live().contains(p) && !p.exists()));
        assert!(dir.path().join("a.csv").exists() && !dir.path().join("b.csv").exists());
    }

    /// Parts of dead processes are stale; those of live ones and other files are not.
    #[test]
    fn stale_parts_are_those_of_dead_processes() {
        let dir = tempfile::tempdir().unwrap();
        // A pid above the kernel's maximum (4194304) is never alive.
        let names = [
            ".x.csv.flow-tmp-4999999-3.part0",
            ".x.csv.flow-tmp-4999999-3.part12",
            &format!(".x.csv.flow-tmp-{}-0.part0", std::process::id()),
            ".x.csv.flow-tmp-4999999-3.partial",
            "x.csv.flow-tmp-4999999-3.part0",
            ".x.csv",
        ];
        for n in &names {
            std::fs::write(dir.path().join(n), "").unwrap();
        }
        assert_eq!(remove_stale(dir.path()), 2);
        for n in &names[2..] {
            assert!(dir.path().join(n).exists(), "{n}");
        }
    }

    /// Workers appending whole buffers to one shared file never interleave inside a buffer.
    #[test]
    fn shared_file_keeps_each_write_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = AtomicOutput::prepare(&dir.path().join("o.csv"), 1).unwrap();
        let file = SharedFile::new(out.open_part(0).unwrap());
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let mut f = file.clone();
                std::thread::spawn(move || {
                    for i in 0..200usize {
                        // One "buffer" of whole records: 1 to 40 lines of one letter.
                        let mut buf = Vec::new();
                        for _ in 0..1 + i % 40 {
                            buf.extend_from_slice(&[b'a' + t; 37]);
                            buf.push(b'\n');
                        }
                        f.write_all(&buf).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        out.commit().unwrap();
        let text = std::fs::read_to_string(dir.path().join("o.csv")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4 * (0..200).map(|i| 1 + i % 40).sum::<usize>());
        for l in lines {
            assert_eq!(l.len(), 37);
            assert!(l.bytes().all(|b| b == l.as_bytes()[0]), "{l}");
        }
    }

    /// Past the write-behind mark (several times, from several threads, with an existing file
    /// under the final name) every byte arrives, and the old file is replaced whole.
    #[test]
    fn write_behind_keeps_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("o.bin");
        std::fs::write(&dest, vec![b'x'; 3 << 20]).unwrap();
        let mut out = AtomicOutput::prepare(&dest, 1).unwrap();
        let file = SharedFile::new(out.open_part(0).unwrap());
        assert!(file.0.behind.is_some() || !cfg!(target_os = "linux"));
        let block = 1usize << 20;
        let threads: Vec<_> = (0..3u8)
            .map(|t| {
                let mut f = file.clone();
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        f.write_all(&vec![b'a' + t; block]).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(file);
        out.commit().unwrap();
        let bytes = std::fs::read(&dest).unwrap();
        assert_eq!(bytes.len() as u64, 30 * block as u64);
        assert!(30 * block as u64 > 3 * WRITE_BEHIND_BYTES);
        for t in 0..3u8 {
            let n = bytes.iter().filter(|&&b| b == b'a' + t).count();
            assert_eq!(n, 10 * block, "{}", (b'a' + t) as char);
        }
        // Each 1 MiB write stays whole.
        for chunk in bytes.chunks(block) {
            assert!(chunk.iter().all(|&b| b == chunk[0]));
        }
    }

    /// A non-regular destination (a character device) is written without write-behind.
    #[test]
    fn write_behind_skips_non_regular_files() {
        let f = OpenOptions::new().write(true).open("/dev/null").unwrap();
        let mut file = SharedFile::new(f);
        assert!(file.0.behind.is_none());
        file.write_all(&vec![0u8; 9 << 20]).unwrap();
    }
}
