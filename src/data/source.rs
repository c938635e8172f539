//! Where a release's files come from: a directory, a `.zip` as downloaded from GroupLens (read
//! entry by entry, streamed, never unpacked to disk) or files held in memory (tests, fuzzing).
//!
//! A GroupLens zip holds one top directory (`ml-1m/ratings.dat`); the directory that holds a
//! ratings file (`ratings.csv`, `ratings.dat` or `u.data`) is taken as the release, whatever its
//! name, and `__MACOSX/` entries are ignored.

use crate::{Error, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// The files that mark a release directory inside a zip.
const RATINGS_FILES: [&str; 3] = ["ratings.csv", "ratings.dat", "u.data"];

/// A release's files, by name (`ratings.csv`).
pub(crate) enum Source {
    /// Files in a directory.
    Dir(PathBuf),
    /// Entries of a zip file: name → (entry index, uncompressed size).
    Zip {
        path: PathBuf,
        prefix: String,
        entries: BTreeMap<String, (usize, u64)>,
    },
    /// Files in memory.
    Memory {
        label: String,
        files: BTreeMap<String, Vec<u8>>,
    },
}

impl Source {
    /// A directory, or a zip file (recognised by its `PK` signature).
    pub(crate) fn open(path: &Path) -> Result<Source> {
        if path.is_dir() {
            return Ok(Source::Dir(path.to_path_buf()));
        }
        let expected = "expected a MovieLens release: a directory or the .zip as downloaded, \
                        holding ratings.csv and movies.csv (ml-latest, ml-20m/25m/32m), \
                        ratings.dat and movies.dat (ml-1m, ml-10m), or u.data and u.item (ml-100k)";
        let mut signature = [0u8; 4];
        let is_zip = File::open(path)
            .and_then(|mut f| f.read_exact(&mut signature))
            .is_ok()
            && &signature[..2] == b"PK";
        if !is_zip {
            return Err(Error::data(
                path.display().to_string(),
                format!("is not a directory or a .zip file ({expected})"),
            ));
        }
        let zip_error = |e: zip::result::ZipError| {
            Error::data(
                path.display().to_string(),
                format!("cannot read the zip file: {e}"),
            )
        };
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(zip_error)?;
        let mut all: Vec<(String, usize, u64)> = Vec::new();
        for index in 0..archive.len() {
            let entry = archive.by_index_raw(index).map_err(zip_error)?;
            if entry.is_dir() {
                continue;
            }
            let Ok(name) = entry.name() else { continue };
            let name = name.replace('\\', "/");
            if name.starts_with("__MACOSX/") {
                continue;
            }
            all.push((name, index, entry.size()));
        }
        // The release is the shallowest directory holding a ratings file (else the top level).
        let prefix = all
            .iter()
            .filter_map(|(name, ..)| {
                let (dir, file) = name.rsplit_once('/').unwrap_or(("", name));
                RATINGS_FILES.contains(&file).then(|| dir.to_string())
            })
            .min_by_key(|dir| (dir.matches('/').count(), dir.len()))
            .unwrap_or_default();
        let entries = all
            .into_iter()
            .filter_map(|(name, index, size)| {
                let (dir, file) = name.rsplit_once('/').unwrap_or(("", &name));
                (dir == prefix).then(|| (file.to_string(), (index, size)))
            })
            .collect();
        Ok(Source::Zip {
            path: path.to_path_buf(),
            prefix,
            entries,
        })
    }

    /// Files held in memory, shown as `label/name` in messages.
    pub(crate) fn memory(label: &str, files: impl IntoIterator<Item = (String, Vec<u8>)>) -> Self {
        Source::Memory {
            label: label.to_string(),
            files: files.into_iter().collect(),
        }
    }

    /// What was read, for the report.
    pub(crate) fn label(&self) -> String {
        match self {
            Source::Dir(dir) => dir.display().to_string(),
            Source::Zip { path, .. } => path.display().to_string(),
            Source::Memory { label, .. } => label.clone(),
        }
    }

    /// Whether the release has file `name`.
    pub(crate) fn has(&self, name: &str) -> bool {
        match self {
            Source::Dir(dir) => dir.join(name).is_file(),
            Source::Zip { entries, .. } => entries.contains_key(name),
            Source::Memory { files, .. } => files.contains_key(name),
        }
    }

    /// The size of file `name` in bytes (0 when unknown).
    pub(crate) fn size(&self, name: &str) -> u64 {
        match self {
            Source::Dir(dir) => std::fs::metadata(dir.join(name))
                .map(|m| m.len())
                .unwrap_or(0),
            Source::Zip { entries, .. } => entries.get(name).map_or(0, |e| e.1),
            Source::Memory { files, .. } => files.get(name).map_or(0, |f| f.len() as u64),
        }
    }

    /// Where file `name` is, as shown in messages (`dir/ratings.csv`, `ml-1m.zip/ml-1m/ratings.dat`).
    pub(crate) fn location(&self, name: &str) -> String {
        match self {
            Source::Dir(dir) => dir.join(name).display().to_string(),
            Source::Zip { path, prefix, .. } if prefix.is_empty() => {
                format!("{}/{name}", path.display())
            }
            Source::Zip { path, prefix, .. } => format!("{}/{prefix}/{name}", path.display()),
            Source::Memory { label, .. } => format!("{label}/{name}"),
        }
    }

    /// Opens file `name` and hands a reader of its bytes to `read`.
    pub(crate) fn read<T>(
        &self,
        name: &str,
        read: impl FnOnce(&mut dyn Read) -> Result<T>,
    ) -> Result<T> {
        match self {
            Source::Dir(dir) => {
                let path = dir.join(name);
                let mut file = File::open(&path).map_err(|e| Error::io(&path, e))?;
                read(&mut file)
            }
            Source::Zip { path, entries, .. } => {
                let fail = |e: zip::result::ZipError| {
                    Error::data(
                        self.location(name),
                        format!("cannot read from the zip: {e}"),
                    )
                };
                let &(index, _) = entries
                    .get(name)
                    .ok_or_else(|| Error::data(self.location(name), "is missing"))?;
                let file = File::open(path).map_err(|e| Error::io(path, e))?;
                let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(fail)?;
                let mut entry = archive.by_index(index).map_err(fail)?;
                read(&mut entry)
            }
            Source::Memory { files, .. } => {
                let bytes = files
                    .get(name)
                    .ok_or_else(|| Error::data(self.location(name), "is missing"))?;
                read(&mut bytes.as_slice())
            }
        }
    }
}
