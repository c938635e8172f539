//! Publishing files and directories all at once: each is written beside its destination under a
//! hidden temporary name (`.NAME.tmp-PID`) and renamed into place when complete, so a reader
//! (or a killed writer) never sees half of it. Used by `synth`, `download` and `profile --html`;
//! the model directory has its own, manifest-aware writer (`artifact/`).

use crate::{Error, Result};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A directory being written: fill [`StagedDir::path`], then [`StagedDir::publish`]. Dropped
/// without publishing, it is removed.
#[derive(Debug)]
pub struct StagedDir {
    tmp: PathBuf,
    dest: PathBuf,
    published: bool,
}

impl StagedDir {
    /// Starts writing the directory `dest` (its parent is created if needed). Fails if `dest`
    /// exists and `replaceable(dest)` says it may not be replaced.
    pub fn new(dest: &Path, replaceable: impl Fn(&Path) -> bool) -> Result<StagedDir> {
        if dest.exists() && !(is_empty_dir(dest) || replaceable(dest)) {
            return Err(Error::invalid(
                "out",
                format!(
                    "{} exists and is not what this command writes; refusing to replace it",
                    dest.display()
                ),
            ));
        }
        let tmp = sibling(dest, "tmp")?;
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(StagedDir {
            tmp,
            dest: dest.to_path_buf(),
            published: false,
        })
    }

    /// The temporary directory to write into.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Renames the temporary directory to the destination, replacing what was there (the old
    /// directory is moved aside first and removed afterwards).
    pub fn publish(mut self) -> Result<()> {
        sync(&self.tmp);
        let old = sibling(&self.dest, "old")?;
        let replacing = self.dest.exists();
        if replacing {
            fs::rename(&self.dest, &old).map_err(|e| Error::io(&self.dest, e))?;
        }
        fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
        self.published = true;
        if let Some(parent) = self.dest.parent() {
            sync(parent);
        }
        if replacing {
            fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        }
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Writes `bytes` to `path` atomically (temporary sibling, flushed to disk, renamed).
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = sibling(path, "tmp")?;
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    if let Some(parent) = path.parent() {
        sync(parent);
    }
    Ok(())
}

/// `.NAME.TAG-PID` beside `path`.
fn sibling(path: &Path, tag: &str) -> Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        Error::invalid(
            "out",
            format!("{} has no file or directory name", path.display()),
        )
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    Ok(parent.join(format!(
        ".{}.{tag}-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

/// Flushes a file or directory to disk; best effort (directories cannot be synced everywhere).
fn sync(path: &Path) {
    if let Ok(f) = File::open(path) {
        let _ = f.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_dir_appears_only_when_published() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("out");
        let staged = StagedDir::new(&dest, |_| false).unwrap();
        fs::write(staged.path().join("a.csv"), "x").unwrap();
        assert!(!dest.exists());
        staged.publish().unwrap();
        assert_eq!(fs::read_to_string(dest.join("a.csv")).unwrap(), "x");
        // Only the destination is left.
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
    }

    #[test]
    fn staged_dir_replaces_only_what_it_may() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("out");
        fs::create_dir(&dest).unwrap();
        fs::write(dest.join("mine.txt"), "keep").unwrap();
        let refused = StagedDir::new(&dest, |d| d.join("movies.csv").exists());
        assert!(refused.unwrap_err().to_string().contains("refusing"));
        fs::write(dest.join("movies.csv"), "old").unwrap();
        let staged = StagedDir::new(&dest, |d| d.join("movies.csv").exists()).unwrap();
        fs::write(staged.path().join("movies.csv"), "new").unwrap();
        staged.publish().unwrap();
        assert_eq!(fs::read_to_string(dest.join("movies.csv")).unwrap(), "new");
        assert!(!dest.join("mine.txt").exists());
    }

    #[test]
    fn dropped_staged_dir_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let staged = StagedDir::new(&root.path().join("out"), |_| false).unwrap();
        fs::write(staged.path().join("a"), "x").unwrap();
        drop(staged);
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }

    #[test]
    fn write_file_replaces_atomically() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("report.html");
        write_file(&path, b"one").unwrap();
        write_file(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
    }
}
