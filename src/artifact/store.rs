//! Atomic save and checked load of a model directory.

use super::{FileEntry, Manifest, FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE};
use crate::storage::shared_slice::SharedSlice;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The files of a model directory besides the manifest: `(file name, contents)`.
pub type ModelFiles = Vec<(String, Vec<u8>)>;

/// An opened model directory: its manifest and every file it lists, memory-mapped.
#[derive(Debug)]
pub struct SavedModel {
    /// The manifest.
    pub manifest: Manifest,
    /// File name → contents (mapped), each of the size the manifest says.
    pub files: BTreeMap<String, SharedSlice<u8>>,
}

impl SavedModel {
    /// The contents of `name`, or an error naming the directory if the manifest lacks it.
    pub fn file(&self, dir: &Path, name: &str) -> Result<SharedSlice<u8>> {
        self.files
            .get(name)
            .cloned()
            .ok_or_else(|| artifact_error(dir, format!("the manifest does not list {name}")))
    }

    /// Hashes every file (in parallel) against the manifest's checksums: reads the whole
    /// directory, which [`load`] does not. The files are read through a buffer rather than
    /// through their mappings, so verifying does not make the whole directory resident in this
    /// process (at ml-latest scale, over a gigabyte that serving mostly never touches).
    ///
    /// Largest file first (else the largest, listed last, is read alone at the end), after
    /// asking the kernel to start reading all of them: on a cold or half-evicted page cache the
    /// check waits on the disk, which answers faster with many reads in flight than with two.
    pub fn verify(&self, dir: &Path) -> Result<()> {
        use rayon::prelude::*;
        let mut names: Vec<&String> = self.files.keys().collect();
        names.sort_by_key(|name| std::cmp::Reverse(self.files[*name].len()));
        let cannot_read = |name: &str, e: std::io::Error| {
            artifact_error(dir, format!("{name} cannot be read to verify it: {e}"))
        };
        let opened = names
            .into_iter()
            .map(|name| match File::open(dir.join(name)) {
                Ok(file) => Ok((name, file)),
                Err(e) => Err(cannot_read(name, e)),
            })
            .collect::<Result<Vec<_>>>()?;
        #[cfg(target_os = "linux")]
        for (_, file) in &opened {
            // Advice only: a failure just leaves the reads below to fetch the pages.
            let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::WillNeed);
        }
        opened.into_par_iter().try_for_each(|(name, file)| {
            let entry = &self.manifest.files[name];
            let found = checksum_of_file(file).map_err(|e| cannot_read(name, e))?;
            if found == entry.xxh3 {
                Ok(())
            } else {
                Err(artifact_error(
                    dir,
                    format!(
                        "{name} is corrupt: its XXH3 checksum is {found}, the manifest says {}",
                        entry.xxh3
                    ),
                ))
            }
        })
    }
}

/// The manifest's checksum of `file`'s contents, read in 1 MiB blocks.
fn checksum_of_file(mut file: File) -> std::io::Result<String> {
    use std::io::Read;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut block = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut block)?;
        if n == 0 {
            break;
        }
        hasher.update(&block[..n]);
    }
    Ok(format!("{:016x}", hasher.digest()))
}

fn artifact_error(dir: &Path, message: impl Into<String>) -> Error {
    Error::Artifact {
        dir: dir.to_path_buf(),
        message: message.into(),
    }
}

/// Environment variable that makes `save` stop (sleeping) just before the final rename. Used by
/// the test that kills a training mid-way; never set it otherwise.
pub const PAUSE_BEFORE_PUBLISH_ENV: &str = "MOVIEREC_TEST_PAUSE_BEFORE_PUBLISH";

fn sibling(dir: &Path, tag: &str) -> Result<(PathBuf, String)> {
    let name = dir
        .file_name()
        .ok_or_else(|| artifact_error(dir, "the output path has no directory name"))?
        .to_string_lossy()
        .into_owned();
    let parent = dir.parent().unwrap_or(Path::new("."));
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let prefix = format!(".{name}.{tag}-");
    Ok((parent.to_path_buf(), prefix))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(|e| Error::io(path, e))?;
    file.write_all(bytes).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}

fn sync_dir(dir: &Path) {
    // Best effort: directory fsync is not supported everywhere.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `files` and `manifest` (its `files` table is filled in here) as the model directory
/// `dir`, atomically: see [`Staging`], which this is a shorthand for.
pub fn save(dir: &Path, manifest: Manifest, files: ModelFiles) -> Result<()> {
    let staging = Staging::begin(dir)?;
    for (name, bytes) in files {
        staging.write(&name, &bytes)?;
    }
    staging.publish(manifest)
}

/// A model directory being written. Everything goes to a temporary sibling directory
/// (`.NAME.tmp-PID-N`), which [`Staging::publish`] renames to the destination once the manifest
/// is written: a crash or Ctrl-C mid-way never leaves a half model where `serve` looks, and an
/// existing model directory there is replaced only then. Dropped without publishing (an error,
/// a panic), it removes its temporary directory.
///
/// Files are written as soon as they are made ([`Staging::write`], [`Staging::write_sections`])
/// rather than held until the end: at ml-latest's size a model directory is 1.1 GB, which
/// saving all at once added to the training's peak memory.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    tmp: PathBuf,
    files: std::sync::Mutex<BTreeMap<String, FileEntry>>,
    published: bool,
}

impl Staging {
    /// Checks that `dir` may be written (missing, empty, or a model directory to replace),
    /// cleans up after trainings that died, and creates the temporary directory.
    pub fn begin(dir: &Path) -> Result<Staging> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let (parent, tmp_prefix) = sibling(dir, "tmp")?;
        fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        if dir.exists() && !dir.join(MANIFEST_FILE).is_file() && !is_empty_dir(dir) {
            return Err(artifact_error(
                dir,
                "exists and is not a movierec model directory; refusing to replace it",
            ));
        }
        remove_stale_temporaries(dir)?;
        // The process id tells a later run whether this one died; the sequence number keeps
        // two trainings of one process (a server's retraining, tests) apart.
        let sequence = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = parent.join(format!("{tmp_prefix}{}-{sequence}", std::process::id()));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(Staging {
            dir: dir.to_path_buf(),
            tmp,
            files: Default::default(),
            published: false,
        })
    }

    /// Writes file `name` (replacing one written before under that name).
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.write_with(name, &mut |out| out.write_all(bytes))
    }

    /// Writes the section file `sections` as file `name`, streamed: its contents are not
    /// assembled in memory.
    pub fn write_sections(
        &self,
        name: &str,
        sections: &crate::storage::section_file::SectionWriter<'_>,
    ) -> Result<()> {
        self.write_with(name, &mut |out| sections.write_to(out).map(drop))
    }

    fn write_with(
        &self,
        name: &str,
        fill: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        let path = self.tmp.join(name);
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut out = Hashing {
            inner: std::io::BufWriter::with_capacity(1 << 20, file),
            hasher: xxhash_rust::xxh3::Xxh3::new(),
            bytes: 0,
        };
        fill(&mut out).map_err(|e| Error::io(&path, e))?;
        let Hashing {
            inner,
            hasher,
            bytes,
        } = out;
        // Flushed to the kernel now, to disk only when publishing: meanwhile the kernel writes
        // it back in the background, so the training does not wait on the disk file by file.
        inner
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        let entry = FileEntry {
            bytes,
            xxh3: format!("{:016x}", hasher.digest()),
        };
        self.files
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(name.to_string(), entry);
        Ok(())
    }

    /// Writes `manifest` with the table of every file written, and renames the directory into
    /// place (the model directory that was there goes only now).
    pub fn publish(mut self, mut manifest: Manifest) -> Result<()> {
        manifest.files = std::mem::take(
            &mut *self
                .files
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        // Every file on disk before the manifest that vouches for it.
        for name in manifest.files.keys() {
            let path = self.tmp.join(name);
            File::open(&path)
                .and_then(|file| file.sync_all())
                .map_err(|e| Error::io(&path, e))?;
        }
        let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
        write_synced(&self.tmp.join(MANIFEST_FILE), &json)?;
        sync_dir(&self.tmp);

        if let Ok(seconds) = std::env::var(PAUSE_BEFORE_PUBLISH_ENV) {
            eprintln!("movierec: paused before publishing {}", self.tmp.display());
            std::thread::sleep(std::time::Duration::from_secs(
                seconds.parse().unwrap_or(60),
            ));
        }

        let (dir, tmp) = (self.dir.clone(), self.tmp.clone());
        let (parent, old_prefix) = sibling(&dir, "old")?;
        let old = parent.join(format!("{old_prefix}{}", std::process::id()));
        let replacing = dir.exists();
        if replacing {
            fs::rename(&dir, &old).map_err(|e| Error::io(&dir, e))?;
        }
        if let Err(e) = fs::rename(&tmp, &dir) {
            // Put the previous model back rather than leave nothing at `dir`.
            if replacing {
                let _ = fs::rename(&old, &dir);
            }
            return Err(Error::io(&dir, e));
        }
        self.published = true;
        sync_dir(&parent);
        if replacing {
            fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// A writer that hashes and counts what goes through it: a file's manifest entry, computed
/// while it is written rather than by reading it back.
struct Hashing<W> {
    inner: W,
    hasher: xxhash_rust::xxh3::Xxh3,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        false
    }
}

/// Cleans up after trainings that died: removes temporary directories left beside `dir` by
/// processes that no longer run, and puts back a previous model whose replacement was cut off
/// between its two renames.
pub fn remove_stale_temporaries(dir: &Path) -> Result<()> {
    let (parent, tmp_prefix) = sibling(dir, "tmp")?;
    let (_, old_prefix) = sibling(dir, "old")?;
    let Ok(entries) = fs::read_dir(&parent) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        for (prefix, is_old) in [(&tmp_prefix, false), (&old_prefix, true)] {
            let Some(pid) = name.strip_prefix(prefix.as_str()) else {
                continue;
            };
            // `PID` (older builds, and the `old` directories) or `PID-N`.
            let pid = pid.split('-').next().unwrap_or_default();
            let Ok(pid) = pid.parse::<u32>() else {
                continue;
            };
            if process_alive(pid) {
                continue;
            }
            let path = entry.path();
            if is_old && !dir.exists() {
                fs::rename(&path, dir).map_err(|e| Error::io(&path, e))?;
            } else {
                fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
    }
    Ok(())
}

/// Puts back, at a missing `dir`, the previous model a dead training had moved aside just
/// before it was killed (`.NAME.old-PID`, PID no longer running). Best effort: anything that
/// fails leaves `dir` missing, which the caller reports.
fn restore_interrupted(dir: &Path) {
    let (Ok((parent, old_prefix)), false) = (sibling(dir, "old"), dir.exists()) else {
        return;
    };
    let Ok(entries) = fs::read_dir(&parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let dead = name
            .strip_prefix(old_prefix.as_str())
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| !process_alive(pid));
        if dead && entry.path().join(MANIFEST_FILE).is_file() {
            if fs::rename(entry.path(), dir).is_ok() {
                tracing::warn!(
                    "{}: restored the previous model, left aside by a training that was killed",
                    dir.display()
                );
                sync_dir(&parent);
            }
            return;
        }
    }
}

/// The data set path recorded by a movierec model directory of an *older* format version than
/// this build reads, if `dir` is one (`None` for anything else: current, newer, unreadable or
/// not a model directory). `serve` retrains such a directory from the same data instead of
/// refusing it.
pub fn outdated_dataset(dir: &Path) -> Option<String> {
    let bytes = crate::storage::shared_slice::read_regular(&dir.join(MANIFEST_FILE)).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    if value.get("format").and_then(|v| v.as_str()) != Some(FORMAT_NAME) {
        return None;
    }
    let version = value.get("format_version")?.as_u64()?;
    if version >= u64::from(FORMAT_VERSION) {
        return None;
    }
    Some(value.get("dataset")?.get("path")?.as_str()?.to_string())
}

/// Opens the model directory `dir`: reads and checks its manifest and maps every file it lists,
/// checking each one's size (a truncated or missing file is refused here). The contents are not
/// hashed: [`SavedModel::verify`] does that.
pub fn load(dir: &Path) -> Result<SavedModel> {
    if !dir.exists() {
        // A training killed between its two renames left the previous model beside `dir`.
        restore_interrupted(dir);
    }
    if dir.exists() && !dir.is_dir() {
        return Err(artifact_error(
            dir,
            "is a file, not a model directory (a directory written by `movierec train --out DIR`)",
        ));
    }
    if !dir.is_dir() {
        return Err(artifact_error(
            dir,
            "does not exist (train one with `movierec train --out DIR`)",
        ));
    }
    let manifest_path = dir.join(MANIFEST_FILE);
    let bytes = match crate::storage::shared_slice::read_regular(&manifest_path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(artifact_error(
            dir,
            "has no manifest.json: not a movierec model directory, or its training did not finish",
        )),
        Err(e) => return Err(Error::io(manifest_path, e)),
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| artifact_error(dir, format!("manifest.json is not valid JSON: {e}")))?;
    let format = value.get("format").and_then(|v| v.as_str());
    if format != Some(FORMAT_NAME) {
        return Err(artifact_error(
            dir,
            format!(
                "manifest.json has format {:?}, expected {FORMAT_NAME:?}",
                format.unwrap_or("(missing)")
            ),
        ));
    }
    let version = value.get("format_version").and_then(|v| v.as_u64());
    if version != Some(u64::from(FORMAT_VERSION)) {
        return Err(artifact_error(
            dir,
            format!(
                "format version {} is not supported by this movierec (it reads version \
                 {FORMAT_VERSION}); retrain with `movierec train`",
                version.map_or("(missing)".to_string(), |v| v.to_string())
            ),
        ));
    }
    let manifest: Manifest = serde_json::from_value(value)
        .map_err(|e| artifact_error(dir, format!("manifest.json is malformed: {e}")))?;
    let mut files = BTreeMap::new();
    for (name, entry) in &manifest.files {
        if name.contains('/') || name.contains('\\') || name.starts_with('.') {
            return Err(artifact_error(
                dir,
                format!("manifest lists a file outside the directory: {name:?}"),
            ));
        }
        let path = dir.join(name);
        let bytes = SharedSlice::map_file(&path)
            .map_err(|e| artifact_error(dir, format!("cannot read {name}: {e}")))?;
        if bytes.len() as u64 != entry.bytes {
            return Err(artifact_error(
                dir,
                format!(
                    "{name} is corrupt: expected {} bytes, found {}",
                    entry.bytes,
                    bytes.len()
                ),
            ));
        }
        files.insert(name.clone(), bytes);
    }
    Ok(SavedModel { manifest, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_written_as_they_come_and_a_dropped_staging_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model");
        let first = Staging::begin(&out).unwrap();
        // A second training of the same directory in this process stages apart.
        let second = Staging::begin(&out).unwrap();
        assert_ne!(first.tmp, second.tmp);
        first.write("a.bin", b"one").unwrap();
        let mut w = crate::storage::section_file::SectionWriter::new(b"MRTEST01", 1);
        let values = [1u32, 2, 3];
        w.add("values", &values);
        first.write_sections("b.bin", &w).unwrap();
        // Written again (the tuning chose other settings): the last contents count.
        first.write("a.bin", b"three").unwrap();
        assert_eq!(fs::read(first.tmp.join("a.bin")).unwrap(), b"three");
        assert_eq!(fs::read(first.tmp.join("b.bin")).unwrap(), w.finish());
        let files = first.files.lock().unwrap().clone();
        assert_eq!(files["a.bin"].bytes, 5);
        assert_eq!(
            files["a.bin"].xxh3,
            format!("{:016x}", xxhash_rust::xxh3::xxh3_64(b"three"))
        );
        assert_eq!(
            files["b.bin"].xxh3,
            format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&w.finish()))
        );
        drop((first, second));
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert!(left.is_empty(), "{left:?}");
        assert!(!out.exists());
    }
}
