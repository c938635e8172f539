//! Read-only arrays that are either owned or borrowed from a memory-mapped file, behind one type.
//!
//! A model directory at ml-latest scale holds hundreds of megabytes of vectors and graphs.
//! Serving opens it by mapping its files ([`SharedSlice::map_file`]) and viewing their sections
//! as typed slices ([`SharedSlice::cast`]): nothing is parsed or copied, and the operating system
//! pages in what searches touch. Indexes built in memory hold the same type over a `Vec`
//! ([`SharedSlice::from_vec`]), so every search path is written once, over `&[T]`.
//!
//! Mapped files must not change while mapped. Model directories guarantee it: a directory is
//! written under a temporary name and renamed into place once complete, and is never modified
//! afterwards (retraining writes a new directory).
//!
//! Views need the file's bytes to be little-endian, as every movierec file is; a big-endian build
//! would need byte swapping on load, which is not implemented, so it is refused at compile time.

#[cfg(target_endian = "big")]
compile_error!(
    "movierec's memory-mapped model files are little-endian; big-endian targets are not supported"
);

use std::any::Any;
use std::marker::PhantomData;
use std::ops::{Deref, Range};
use std::path::Path;
use std::sync::Arc;

/// Plain data that may be viewed from any properly aligned bytes (`u8`, `u32`, `f32`, …).
pub use bytemuck::Pod;

/// A cheaply cloneable, read-only `[T]`: owned (a `Vec` moved in) or a view into a mapped file.
pub struct SharedSlice<T: Pod> {
    /// Keeps the memory behind `ptr` alive and unchanged: an `Arc`'d `Vec` or memory map.
    owner: Arc<dyn Any + Send + Sync>,
    ptr: *const T,
    len: usize,
    _marker: PhantomData<T>,
}

// SAFETY: the memory behind `ptr` is immutable and kept alive by `owner`, which is itself
// `Send + Sync`; `T: Pod` has no interior mutability.
unsafe impl<T: Pod> Send for SharedSlice<T> {}
// SAFETY: as above: shared references to immutable plain data.
unsafe impl<T: Pod> Sync for SharedSlice<T> {}

impl<T: Pod + Send + Sync> SharedSlice<T> {
    /// Takes ownership of `values`.
    pub fn from_vec(values: Vec<T>) -> SharedSlice<T> {
        let owner = Arc::new(values);
        let (ptr, len) = (owner.as_ptr(), owner.len());
        SharedSlice {
            owner,
            ptr,
            len,
            _marker: PhantomData,
        }
    }
}

impl<T: Pod> SharedSlice<T> {
    /// The sub-slice `range` of this one, sharing its storage.
    ///
    /// # Panics
    /// If `range` is out of bounds (a caller bug: file offsets are checked before slicing).
    pub fn slice(&self, range: Range<usize>) -> SharedSlice<T> {
        let _ = &self[range.clone()];
        SharedSlice {
            owner: Arc::clone(&self.owner),
            // SAFETY: `range` was bounds-checked just above.
            ptr: unsafe { self.ptr.add(range.start) },
            len: range.len(),
            _marker: PhantomData,
        }
    }
}

/// Opens `path` for reading if it is a regular file. It is opened without blocking (a FIFO's open
/// would wait for a writer, forever) and anything but a regular file (a FIFO, a device, a
/// directory) is refused with `InvalidInput`, "not a regular file".
pub fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// Reads the whole of `path`, a regular file (see [`open_regular`]).
pub fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

impl SharedSlice<u8> {
    /// Maps the file at `path` read-only (an empty file gives an empty slice: zero-length maps
    /// are not allowed).
    pub fn map_file(path: &Path) -> std::io::Result<SharedSlice<u8>> {
        let file = open_regular(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(SharedSlice::from_vec(Vec::new()));
        }
        // SAFETY: model files are never modified once published (see the module doc).
        let map = unsafe { memmap2::Mmap::map(&file)? };
        // Searches read scattered rows, graph nodes and list entries: without this hint the
        // kernel reads ahead around every fault, and a server that touched a few hundred rows
        // would hold most of each file resident. (Only a hint: refusing it changes nothing.)
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Random);
        let owner = Arc::new(map);
        let (ptr, len) = (owner.as_ptr(), owner.len());
        Ok(SharedSlice {
            owner,
            ptr,
            len,
            _marker: PhantomData,
        })
    }

    /// Tells the kernel this slice's file mapping is about to be read once, front to back, so
    /// it reads ahead instead of faulting in page by page (the mappings default to random
    /// access, see [`SharedSlice::map_file`]); does nothing for owned memory.
    pub fn advise_sequential(&self) {
        #[cfg(unix)]
        if let Some(map) = (*self.owner).downcast_ref::<memmap2::Mmap>() {
            // Only a hint: refusing it changes nothing.
            let _ = map.advise(memmap2::Advice::Sequential);
        }
    }

    /// Lets the kernel drop the pages of this slice's file mapping from the process (they stay
    /// in the page cache and are read again on the next access); does nothing for owned memory.
    /// Opening a model checks every index structure, which touches whole graphs and forests:
    /// releasing them afterwards keeps a server's resident memory to what requests use.
    pub fn release_resident(&self) {
        #[cfg(unix)]
        if let Some(map) = (*self.owner).downcast_ref::<memmap2::Mmap>() {
            // SAFETY: a read-only shared mapping of a file that never changes while mapped (see
            // the module doc): a dropped page reads back as the same bytes, so no view changes.
            let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }

    /// Copies `bytes` into storage aligned for any [`Pod`] view (8 bytes), as a mapped file is.
    pub fn copy_aligned(bytes: &[u8]) -> SharedSlice<u8> {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        let owner = Arc::new(words);
        let ptr = owner.as_ptr().cast::<u8>();
        SharedSlice {
            owner,
            ptr,
            len: bytes.len(),
            _marker: PhantomData,
        }
    }

    /// Views `range` of these bytes as `[T]`, sharing the storage; `None` if the range is out of
    /// bounds, not a whole number of `T`, or not aligned for `T`.
    pub fn cast<T: Pod>(&self, range: Range<usize>) -> Option<SharedSlice<T>> {
        let bytes = self.get(range.clone())?;
        let values: &[T] = bytemuck::try_cast_slice(bytes).ok()?;
        Some(SharedSlice {
            owner: Arc::clone(&self.owner),
            ptr: values.as_ptr(),
            len: values.len(),
            _marker: PhantomData,
        })
    }
}

impl<T: Pod> Deref for SharedSlice<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr..ptr + len` lies inside memory `owner` keeps alive and unchanged, and is
        // aligned for `T` (checked by `cast`, given by `Vec` otherwise).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl<T: Pod> Clone for SharedSlice<T> {
    fn clone(&self) -> Self {
        SharedSlice {
            owner: Arc::clone(&self.owner),
            ptr: self.ptr,
            len: self.len,
            _marker: PhantomData,
        }
    }
}

impl<T: Pod + Send + Sync> From<Vec<T>> for SharedSlice<T> {
    fn from(values: Vec<T>) -> Self {
        SharedSlice::from_vec(values)
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for SharedSlice<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl<T: Pod + PartialEq> PartialEq for SharedSlice<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_share_storage_and_check_bounds_and_alignment() {
        let words: Vec<u32> = vec![1, 2, 3, 4];
        let bytes = SharedSlice::copy_aligned(bytemuck::cast_slice(&words));
        let all = bytes.cast::<u32>(0..16).unwrap();
        assert_eq!(&*all, &[1, 2, 3, 4]);
        assert_eq!(&*all.slice(1..3), &[2, 3]);
        assert_eq!(&*bytes.cast::<u32>(4..12).unwrap(), &[2, 3]);
        assert!(bytes.cast::<u32>(1..5).is_none(), "misaligned");
        assert!(bytes.cast::<u32>(0..6).is_none(), "not whole values");
        assert!(bytes.cast::<u32>(8..20).is_none(), "out of bounds");
        drop(bytes);
        assert_eq!(all[3], 4, "a view keeps its storage alive");
    }

    #[test]
    fn mapped_files_read_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, bytemuck::cast_slice::<f32, u8>(&[1.5, -2.0])).unwrap();
        let mapped = SharedSlice::map_file(&path).unwrap();
        assert_eq!(&*mapped.cast::<f32>(0..8).unwrap(), &[1.5, -2.0]);
        std::fs::write(&path, b"").unwrap();
        assert!(SharedSlice::map_file(&path).unwrap().is_empty());
    }

    /// The `Rss` of this process's mapping that starts at `start` (`/proc/self/smaps`), in kB.
    #[cfg(target_os = "linux")]
    fn mapping_rss_kib(start: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut lines = smaps.lines();
        while let Some(line) = lines.next() {
            let range = line.split_whitespace().next().unwrap_or_default();
            let Some((from, _)) = range.split_once('-') else {
                continue;
            };
            if usize::from_str_radix(from, 16) != Ok(start) {
                continue;
            }
            for field in lines.by_ref() {
                if let Some(kib) = field.strip_prefix("Rss:") {
                    return kib.trim().trim_end_matches("kB").trim().parse().unwrap();
                }
            }
        }
        panic!("no mapping starts at {start:#x}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn released_pages_leave_the_process_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let words: Vec<u32> = (0..1u32 << 20)
            .map(|i| i.wrapping_mul(2_654_435_761))
            .collect();
        std::fs::write(&path, bytemuck::cast_slice::<u32, u8>(&words)).unwrap();
        let mapped = SharedSlice::map_file(&path).unwrap();
        let start = mapped.ptr as usize;
        let view = mapped.cast::<u32>(0..mapped.len()).unwrap();
        assert_eq!(&*view, &words[..], "read whole: every page is touched");
        let touched = mapping_rss_kib(start);
        assert!(
            touched >= 4096 - 64,
            "{touched} kB resident of 4096 after reading"
        );
        mapped.release_resident();
        let released = mapping_rss_kib(start);
        assert!(released <= 64, "{released} kB still resident after release");
        assert_eq!(&*view, &words[..], "the same bytes after the release");
        // Owned memory is left alone.
        let owned = SharedSlice::copy_aligned(&[1, 2, 3]);
        owned.release_resident();
        assert_eq!(&*owned, &[1, 2, 3]);
    }
}
