//! The movie × user rating matrix, aligned with the catalog's internal movie order.

use crate::catalog::Catalog;
use crate::data::Rating;
use crate::storage::section_file::{check_partition, SectionFile, SectionWriter};
use crate::storage::shared_slice::SharedSlice;
use crate::{Error, Result};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU32, Ordering};

/// One movie of a user's history: catalog row, rating, position in the user's history.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HistoryEntry {
    /// Catalog row.
    pub item: u32,
    /// Stars.
    pub rating: f32,
    /// 0 for the user's first rating.
    pub position: u32,
}

/// Ratings as a sparse movie × user matrix (compressed rows: one row per catalog movie).
#[derive(Clone, Debug)]
pub struct RatingMatrix {
    /// Dense user index → MovieLens user id.
    pub user_ids: Vec<u32>,
    /// Row `i` spans `indptr[i]..indptr[i + 1]` of `users` and `values`.
    pub indptr: Vec<usize>,
    /// Dense user index of each entry.
    pub users: Vec<u32>,
    /// Rating of each entry.
    pub values: Vec<f32>,
    /// Position of each entry in its user's history (0 = the user's first rating, by timestamp).
    pub positions: Vec<u32>,
}

impl RatingMatrix {
    /// Builds the matrix from ratings; ratings of movies not in the catalog are ignored. When a
    /// user rated a movie twice, the latest rating counts (the later row, at equal times).
    ///
    /// Counting sorts, not comparison sorts of all ratings: each rating goes to its movie's row
    /// (ids through tables indexed by id, as MovieLens numbers users and movies densely), each
    /// row is sorted by user on its own, and each user's ratings are ranked by time on their
    /// own, rows and users in parallel. At ml-latest's size (33.9M ratings) this is 4× faster
    /// than sorting everything twice ([`RatingMatrix::build_by_sorting`], kept for more than
    /// `u32::MAX` ratings, where it gives the same matrix) and holds no 16-byte sort keys.
    pub fn build(catalog: &Catalog, ratings: &[Rating]) -> RatingMatrix {
        if u32::try_from(ratings.len()).is_err() {
            return Self::build_by_sorting(catalog, ratings);
        }
        // Users: the distinct ids ascending, and each one's index.
        let max_user = ratings.par_iter().map(|r| r.user_id).max().unwrap_or(0);
        let (user_ids, user_table) = if max_user < DENSE_IDS {
            let mut table = vec![u32::MAX; max_user as usize + 1];
            for r in ratings {
                table[r.user_id as usize] = 0;
            }
            let mut ids = Vec::new();
            for (id, slot) in table.iter_mut().enumerate() {
                if *slot == 0 {
                    *slot = ids.len() as u32;
                    ids.push(id as u32);
                }
            }
            (ids, Some(table))
        } else {
            let mut ids: Vec<u32> = ratings.par_iter().map(|r| r.user_id).collect();
            ids.par_sort_unstable();
            ids.dedup();
            (ids, None)
        };
        let item_table = catalog.item_table(DENSE_IDS);
        // Each rating's (movie row, user index); `u32::MAX` rows are not in the catalog.
        let keys: Vec<(u32, u32)> = ratings
            .par_iter()
            .map(|r| {
                let item = match &item_table {
                    Some(t) => t.get(r.movie_id as usize).copied().unwrap_or(u32::MAX),
                    None => catalog.item_of(r.movie_id).unwrap_or(u32::MAX),
                };
                let user = match &user_table {
                    Some(t) => t[r.user_id as usize],
                    None => user_ids.binary_search(&r.user_id).expect("listed") as u32,
                };
                (item, user)
            })
            .collect();
        drop(item_table);
        drop(user_table);
        // Ratings grouped by user, as MovieLens writes them (and `synth`, and `export`): each
        // user's ranks found in place, no second counting sort.
        if ratings.par_windows(2).all(|w| w[0].user_id <= w[1].user_id) {
            return Self::from_user_runs(user_ids, catalog.len(), ratings, keys);
        }
        // The ratings of each row, in file order, then each row by user, the latest first.
        let (start, mut by_row) = bucketed(keys.len(), catalog.len(), |r| keys[r].0);
        // Sorted as packed `(user, rating)` integers: a comparison that read each rating's user
        // and time through `keys` and `ratings` went to a random place of memory twice, and
        // those sorts were a quarter of the matrix's build at ml-latest's size.
        let kept: Vec<usize> = split_by(&mut by_row, &start)
            .into_par_iter()
            .map_init(Vec::new, |packed: &mut Vec<u64>, row| {
                packed.clear();
                packed.extend(
                    row.iter()
                        .map(|&r| (u64::from(keys[r as usize].1) << 32) | u64::from(r)),
                );
                packed.sort_unstable();
                // Of each user's ratings of this movie the latest counts (the last in the file
                // among equally late ones).
                let latest = |r: u32| (ratings[r as usize].timestamp, r);
                let mut kept = 0;
                let mut k = 0;
                while k < packed.len() {
                    let user = packed[k] >> 32;
                    let mut best = packed[k] as u32;
                    k += 1;
                    while k < packed.len() && packed[k] >> 32 == user {
                        if latest(packed[k] as u32) > latest(best) {
                            best = packed[k] as u32;
                        }
                        k += 1;
                    }
                    row[kept] = best;
                    kept += 1;
                }
                kept
            })
            .collect();
        let mut indptr = vec![0usize; catalog.len() + 1];
        for (i, &n) in kept.iter().enumerate() {
            indptr[i + 1] = indptr[i] + n;
        }
        let nnz = indptr[catalog.len()];
        // Gathered row by row on all cores: each read lands at a random place of the ratings.
        let (mut users, mut values, mut times) = (vec![0u32; nnz], vec![0f32; nnz], vec![0; nnz]);
        split_by(&mut users, &indptr)
            .into_par_iter()
            .zip(split_by(&mut values, &indptr))
            .zip(split_by(&mut times, &indptr))
            .enumerate()
            .for_each(|(i, ((users, values), times))| {
                let row = &by_row[start[i]..start[i] + users.len()];
                for (k, &r) in row.iter().enumerate() {
                    let r = r as usize;
                    users[k] = keys[r].1;
                    values[k] = ratings[r].rating;
                    times[k] = ratings[r].timestamp;
                }
            });
        drop((keys, by_row, start));
        // Each rating's rank in its user's time-ordered history: the entries of each user, by
        // time then movie (entries are in movie order, so by entry at equal times).
        let (ustart, mut by_user) = bucketed(nnz, user_ids.len(), |e| users[e]);
        // By `(time, entry)` packed in one integer, for the same reason as the rows.
        split_by(&mut by_user, &ustart)
            .into_par_iter()
            .for_each_init(Vec::new, |packed: &mut Vec<u64>, history| {
                packed.clear();
                packed.extend(
                    history
                        .iter()
                        .map(|&e| (u64::from(times[e as usize]) << 32) | u64::from(e)),
                );
                packed.sort_unstable();
                for (slot, &key) in history.iter_mut().zip(packed.iter()) {
                    *slot = key as u32;
                }
            });
        drop(times);
        // Each entry is written once, by its user's history: all users at once, through
        // relaxed atomic stores (plain stores on x86-64).
        let positions = atomics(nnz, 0);
        (0..user_ids.len()).into_par_iter().for_each(|u| {
            for (rank, &e) in by_user[ustart[u]..ustart[u + 1]].iter().enumerate() {
                positions[e as usize].store(rank as u32, Ordering::Relaxed);
            }
        });
        let positions = plain(positions);
        RatingMatrix {
            user_ids,
            indptr,
            users,
            values,
            positions,
        }
    }

    /// [`RatingMatrix::build`] for ratings grouped by user (user ids never decreasing), given
    /// each rating's `(movie row, user index)`: each user's ratings, one contiguous run, are
    /// ranked by time there (only the latest of a movie rated twice kept), then counted into
    /// the rows. The rows' entries are then in file order, which is user order, each user once,
    /// so they need no sort, and the positions come from the users' runs in place of a second
    /// counting sort by user and a scatter back. At ml-latest's size a third less time than
    /// the general path, which gives the same matrix (a test compares them).
    fn from_user_runs(
        user_ids: Vec<u32>,
        n_items: usize,
        ratings: &[Rating],
        keys: Vec<(u32, u32)>,
    ) -> RatingMatrix {
        let n_users = user_ids.len();
        // User `u`'s ratings are `ustart[u]..ustart[u + 1]`: user indices ascend with the ids.
        let ustart: Vec<usize> = (0..=n_users as u32)
            .into_par_iter()
            .map(|u| keys.partition_point(|k| k.1 < u))
            .collect();
        // Each rating's position in its user's history; `u32::MAX`: not kept (a movie outside
        // the catalog, or an earlier rating of a movie the user rated again).
        let mut rank = vec![u32::MAX; ratings.len()];
        split_by(&mut rank, &ustart)
            .into_par_iter()
            .zip(ustart.par_windows(2))
            .enumerate()
            .for_each_init(
                // Per movie row: the last user (plus one) who rated it, and where in that
                // user's run the rating that counts is.
                || (vec![0u32; n_items], vec![0u32; n_items], Vec::new()),
                |(seen, latest, by_time): &mut (Vec<u32>, Vec<u32>, Vec<u64>),
                 (u, (ranks, span))| {
                    let first = span[0];
                    let stamp = u as u32 + 1;
                    let item = |j: usize| keys[first + j].0;
                    let time = |j: usize| ratings[first + j].timestamp;
                    // Of a movie rated twice the latest counts (the last in the file among
                    // equally late ones).
                    for j in 0..ranks.len() {
                        let row = item(j);
                        let Some(seen) = seen.get_mut(row as usize) else {
                            continue;
                        };
                        let best = &mut latest[row as usize];
                        if *seen != stamp {
                            *seen = stamp;
                            *best = j as u32;
                        } else if time(j) >= time(*best as usize) {
                            *best = j as u32;
                        }
                    }
                    // By time, then movie row (the general path's order: by entry, and a
                    // user's entries are in row order), packed in one integer; already in
                    // order when the file lists each user's ratings by time.
                    by_time.clear();
                    by_time.extend((0..ranks.len()).filter_map(|j| {
                        let row = item(j);
                        (row != u32::MAX && latest[row as usize] == j as u32)
                            .then(|| (u64::from(time(j)) << 32) | u64::from(row))
                    }));
                    by_time.sort_unstable();
                    for (position, &key) in by_time.iter().enumerate() {
                        ranks[latest[key as u32 as usize] as usize] = position as u32;
                    }
                },
            );
        // Counted into the rows, each entry written where it goes: every rating is read in
        // file order and each row fills from its start, so nothing is gathered from a random
        // place afterwards.
        let row_of = |r: usize| {
            if rank[r] == u32::MAX {
                u32::MAX
            } else {
                keys[r].0
            }
        };
        let counted = Counted::new(ratings.len(), n_items, row_of);
        let nnz = counted.total();
        let (users, values, positions) = (atomics(nnz, 0), atomics(nnz, 0), atomics(nnz, 0));
        let indptr = counted.scatter(row_of, |r, at| {
            users[at].store(keys[r].1, Ordering::Relaxed);
            values[at].store(ratings[r].rating.to_bits(), Ordering::Relaxed);
            positions[at].store(rank[r], Ordering::Relaxed);
        });
        let (users, positions) = (plain(users), plain(positions));
        let values: Vec<f32> = plain(values).into_iter().map(f32::from_bits).collect();
        RatingMatrix {
            user_ids,
            indptr,
            users,
            values,
            positions,
        }
    }

    /// [`RatingMatrix::build`] by sorting every rating twice: for more than `u32::MAX` ratings.
    fn build_by_sorting(catalog: &Catalog, ratings: &[Rating]) -> RatingMatrix {
        // The sorts run on all cores: at ml-latest's size (33.8M ratings) they are most of the
        // matrix's build.
        let mut user_ids: Vec<u32> = ratings.par_iter().map(|r| r.user_id).collect();
        user_ids.par_sort_unstable();
        user_ids.dedup();
        let mut triples: Vec<(u32, u32, u32, f32, usize)> = ratings
            .par_iter()
            .enumerate()
            .filter_map(|(at, r)| {
                let item = catalog.item_of(r.movie_id)?;
                let user = user_ids.binary_search(&r.user_id).ok()? as u32;
                Some((item, user, r.timestamp, r.rating, at))
            })
            .collect();
        triples.par_sort_unstable_by_key(|&(item, user, ts, _, at)| {
            use std::cmp::Reverse;
            (item, user, Reverse(ts), Reverse(at))
        });
        triples.dedup_by_key(|&mut (item, user, ..)| (item, user));
        let indptr = offsets(triples.iter().map(|t| t.0), catalog.len());
        // Each rating's rank in its user's time-ordered history.
        let mut order: Vec<usize> = (0..triples.len()).collect();
        order.par_sort_unstable_by_key(|&e| (triples[e].1, triples[e].2, triples[e].0));
        let mut positions = vec![0u32; triples.len()];
        let mut previous_user = u32::MAX;
        let mut position = 0u32;
        for e in order {
            if triples[e].1 != previous_user {
                previous_user = triples[e].1;
                position = 0;
            }
            positions[e] = position;
            position += 1;
        }
        RatingMatrix {
            user_ids,
            indptr,
            users: triples.iter().map(|t| t.1).collect(),
            values: triples.iter().map(|t| t.3).collect(),
            positions,
        }
    }

    /// Each user's movies among `items` rated with a value `keep` accepts, as positions in
    /// `items` (ascending), in compressed rows: user `u`'s are
    /// `positions[starts[u]..starts[u + 1]]`. Returns `(starts, positions)`.
    pub fn items_by_user(
        &self,
        items: &[usize],
        keep: impl Fn(f32) -> bool,
    ) -> (Vec<usize>, Vec<u32>) {
        let entries = |i: usize| self.indptr[i]..self.indptr[i + 1];
        let mut starts = vec![0usize; self.n_users() + 1];
        for &i in items {
            for e in entries(i) {
                if keep(self.values[e]) {
                    starts[self.users[e] as usize + 1] += 1;
                }
            }
        }
        for u in 0..self.n_users() {
            starts[u + 1] += starts[u];
        }
        let mut next = starts.clone();
        let mut positions = vec![0u32; starts[self.n_users()]];
        for (k, &i) in items.iter().enumerate() {
            for e in entries(i) {
                if keep(self.values[e]) {
                    let slot = &mut next[self.users[e] as usize];
                    positions[*slot] = k as u32;
                    *slot += 1;
                }
            }
        }
        (starts, positions)
    }

    /// Where each user's entries would start if the entries were ordered by user: user `u`'s
    /// span `offsets[u]..offsets[u + 1]` (the first half of a transpose).
    pub fn user_offsets(&self) -> Vec<usize> {
        let parts = part_ranges(self.users.len(), self.n_users());
        summed_offsets(
            &part_counts(&parts, self.n_users(), |e| self.users[e]),
            self.n_users(),
        )
    }

    /// Number of movies (rows).
    pub fn n_items(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Number of users (columns).
    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }

    /// Number of stored ratings.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// The `(user, rating)` entries of movie `item`.
    pub fn row(&self, item: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
        let span = self.indptr[item]..self.indptr[item + 1];
        self.users[span.clone()]
            .iter()
            .copied()
            .zip(self.values[span].iter().copied())
    }
}

/// Ids below this are looked up through a table indexed by id (64 MB at most) when building
/// a matrix; larger ones through a search.
pub(crate) const DENSE_IDS: u32 = 1 << 24;

/// Numbers `0..counts.len()` by decreasing count, ties by index: `(old of each new, new of each
/// old)`. ALS and the item-kNN walk number movies (and ALS users) this way, so the rows they
/// read most often sit together in cache.
pub fn most_counted_first(counts: &[usize]) -> (Vec<u32>, Vec<u32>) {
    let mut of_new: Vec<u32> = (0..counts.len() as u32).collect();
    of_new.par_sort_by_key(|&i| (std::cmp::Reverse(counts[i as usize]), i));
    let mut new_of = vec![0u32; counts.len()];
    for (new, &old) in of_new.iter().enumerate() {
        new_of[old as usize] = new as u32;
    }
    (of_new, new_of)
}

/// The offsets of a partition of elements into `parts` parts, given each element's part: part
/// `p` spans `offsets[p]..offsets[p + 1]` (a counting sort's first half). Elements of a part
/// `parts` or beyond (`u32::MAX`: none) are not counted.
pub fn offsets(part_of: impl IntoIterator<Item = u32>, parts: usize) -> Vec<usize> {
    let mut offsets = vec![0usize; parts + 1];
    for p in part_of {
        if let Some(count) = offsets.get_mut(p as usize + 1) {
            *count += 1;
        }
    }
    for p in 0..parts {
        offsets[p + 1] += offsets[p];
    }
    offsets
}

/// A counting sort of the indices `0..n` by bucket (`bucket_of(i)`; `buckets` or beyond, as
/// `u32::MAX`, is none): the buckets' offsets (bucket `b` spans `offsets[b]..offsets[b + 1]`)
/// and the indices in bucket order, ascending within each bucket: what [`offsets`] and a
/// sequential scatter give. On all cores: the indices are cut into one part per thread, each
/// part counted, its place in every bucket found from the counts of the parts before it, and
/// the parts scattered at once through relaxed atomic stores (plain stores on x86-64; every
/// slot is written once). At ml-latest's size the two scatters of the matrix's build, one
/// thread each, were 2–3 s of it: each write lands at a random place.
pub fn bucketed(
    n: usize,
    buckets: usize,
    bucket_of: impl Fn(usize) -> u32 + Sync,
) -> (Vec<usize>, Vec<u32>) {
    let counted = Counted::new(n, buckets, &bucket_of);
    let order = atomics(counted.total(), 0);
    let offsets = counted.scatter(&bucket_of, |i, at| {
        order[at].store(i as u32, Ordering::Relaxed)
    });
    (offsets, plain(order))
}

/// `n` atomics holding `value`: slots that threads fill with relaxed stores (plain stores on
/// x86-64), each slot by one thread. For 0, a zeroed allocation: fresh pages come zeroed from
/// the kernel when first touched, which the callers' parallel scatters do on every core (a
/// sequential fill took 0.1–0.4 s per 135 MB array at ml-latest's size); other values are
/// written on every core.
pub(crate) fn atomics(n: usize, value: u32) -> Vec<AtomicU32> {
    if value == 0 {
        return bytemuck::allocation::zeroed_vec(n);
    }
    (0..n)
        .into_par_iter()
        .with_min_len(1 << 16)
        .map(|_| AtomicU32::new(value))
        .collect()
}

/// The values of filled [`atomics`].
pub(crate) fn plain(slots: Vec<AtomicU32>) -> Vec<u32> {
    slots.into_iter().map(AtomicU32::into_inner).collect()
}

/// The first half of [`bucketed`]: `0..n` cut into parts, each part's count of each bucket.
struct Counted {
    ranges: Vec<std::ops::Range<usize>>,
    counts: Vec<Vec<usize>>,
    offsets: Vec<usize>,
}

impl Counted {
    fn new(n: usize, buckets: usize, bucket_of: impl Fn(usize) -> u32 + Sync) -> Counted {
        let ranges = part_ranges(n, buckets);
        let counts = part_counts(&ranges, buckets, &bucket_of);
        let offsets = summed_offsets(&counts, buckets);
        Counted {
            ranges,
            counts,
            offsets,
        }
    }

    /// How many indices fall in a bucket.
    fn total(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }

    /// The second half: calls `place(i, slot)` for every index in a bucket, on all cores, with
    /// its slot in bucket order (ascending within each bucket); every slot below
    /// [`Counted::total`] once. Returns the buckets' offsets.
    fn scatter(
        self,
        bucket_of: impl Fn(usize) -> u32 + Sync,
        place: impl Fn(usize, usize) + Sync,
    ) -> Vec<usize> {
        let Counted {
            ranges,
            counts,
            offsets,
        } = self;
        let buckets = offsets.len() - 1;
        // Each part's first slot in every bucket: after the bucket's slots of the parts before
        // it.
        let mut cursors = counts;
        let mut before = offsets[..buckets].to_vec();
        for part in cursors.iter_mut() {
            for (cursor, at) in part.iter_mut().zip(before.iter_mut()) {
                let count = *cursor;
                *cursor = *at;
                *at += count;
            }
        }
        ranges
            .into_par_iter()
            .zip(cursors)
            .for_each(|(range, mut cursor)| {
                for i in range {
                    if let Some(at) = cursor.get_mut(bucket_of(i) as usize) {
                        place(i, *at);
                        *at += 1;
                    }
                }
            });
        offsets
    }
}

/// `0..n` cut into one part per thread of the pool, for counting into `buckets` buckets: as
/// many parts as keep their counts within [`PART_COUNTS`] (one part, a sequential count, for
/// a catalog or user base that large).
pub(crate) fn part_ranges(n: usize, buckets: usize) -> Vec<std::ops::Range<usize>> {
    let parts = rayon::current_num_threads()
        .min(PART_COUNTS / buckets.max(1))
        .clamp(1, 64);
    let span = n.div_ceil(parts).max(1);
    (0..n)
        .step_by(span)
        .map(|from| from..(from + span).min(n))
        .collect()
}

/// The buckets' offsets from the parts' counts of [`part_counts`] (as [`offsets`] gives them).
fn summed_offsets(counts: &[Vec<usize>], buckets: usize) -> Vec<usize> {
    let mut offsets = vec![0usize; buckets + 1];
    for b in 0..buckets {
        offsets[b + 1] = offsets[b] + counts.iter().map(|c| c[b]).sum::<usize>();
    }
    offsets
}

/// The counts all parts of [`part_ranges`] may hold at once (32 MB of `usize`): 12 parts for
/// ml-latest's 330,975 users, so a many-core machine does not hold one count per user and
/// thread.
const PART_COUNTS: usize = 1 << 22;

/// For each of `ranges` (on all cores), how many of its indices fall in each bucket; indices
/// of no bucket (`buckets` or beyond) are not counted.
fn part_counts(
    ranges: &[std::ops::Range<usize>],
    buckets: usize,
    bucket_of: impl Fn(usize) -> u32 + Sync,
) -> Vec<Vec<usize>> {
    ranges
        .par_iter()
        .map(|range| {
            let mut counts = vec![0usize; buckets];
            for i in range.clone() {
                if let Some(count) = counts.get_mut(bucket_of(i) as usize) {
                    *count += 1;
                }
            }
            counts
        })
        .collect()
}

/// `data` cut at `bounds` (ascending offsets from 0 to `data.len()`) into its parts.
fn split_by<'a, T>(mut data: &'a mut [T], bounds: &[usize]) -> Vec<&'a mut [T]> {
    let mut parts = Vec::with_capacity(bounds.len().saturating_sub(1));
    for w in bounds.windows(2) {
        let (part, rest) = std::mem::take(&mut data).split_at_mut(w[1] - w[0]);
        parts.push(part);
        data = rest;
    }
    parts
}

/// Every user's ratings, by user: what personalised recommendations start from. Owned after
/// training, memory-mapped in place when served: at ml-latest scale the 33.8M entries are 400 MB,
/// of which a request pages in one user's.
#[derive(Clone, Debug, PartialEq)]
pub struct UserHistories {
    /// MovieLens user ids, ascending.
    pub user_ids: SharedSlice<u32>,
    /// User `u`'s entries span `indptr[u]..indptr[u + 1]`.
    pub indptr: SharedSlice<u64>,
    /// Catalog rows rated.
    pub items: SharedSlice<u32>,
    /// The ratings.
    pub ratings: SharedSlice<f32>,
    /// Each rating's position in its user's history (0 = first).
    pub positions: SharedSlice<u32>,
    /// Movies in the catalog: entries rating a row beyond it are skipped (only a hand-made file
    /// could hold one; the entries are not scanned at open, see [`UserHistories::from_bytes`]).
    pub movies: usize,
}

const USERS_MAGIC: &[u8; 8] = b"MRUSERS1";
const USERS_VERSION: u32 = 2;

impl UserHistories {
    /// Transposes the rating matrix; each user's entries are in history order.
    pub fn from_matrix(matrix: &RatingMatrix) -> UserHistories {
        Self::by_ranks(matrix).unwrap_or_else(|| Self::by_sorting(matrix))
    }

    /// The transpose when the positions are ranks (0, 1, 2… per user, as
    /// [`RatingMatrix::build`] makes them): each rating goes straight to its slot, one pass and
    /// no sort (at ml-latest's size, 0.5 s and no 540 MB of sort keys). `None` otherwise.
    fn by_ranks(matrix: &RatingMatrix) -> Option<UserHistories> {
        let n_users = matrix.n_users();
        let indptr: Vec<u64> = matrix
            .user_offsets()
            .into_iter()
            .map(|o| o as u64)
            .collect();
        const EMPTY: u32 = u32::MAX;
        // Movies on all cores, each slot claimed once through a relaxed atomic (plain
        // instructions on x86-64); a slot claimed twice means the positions are not ranks.
        let items = atomics(matrix.nnz(), EMPTY);
        let ratings = atomics(matrix.nnz(), 0);
        let ranks = (0..matrix.n_items())
            .into_par_iter()
            .with_min_len(256)
            .all(|item| {
                (matrix.indptr[item]..matrix.indptr[item + 1]).all(|e| {
                    let u = matrix.users[e] as usize;
                    let at = indptr[u] + u64::from(matrix.positions[e]);
                    if at >= indptr[u + 1] {
                        return false;
                    }
                    let claimed = items[at as usize]
                        .compare_exchange(EMPTY, item as u32, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok();
                    ratings[at as usize].store(matrix.values[e].to_bits(), Ordering::Relaxed);
                    claimed
                })
            });
        if !ranks {
            return None;
        }
        let items = plain(items);
        let ratings: Vec<f32> = plain(ratings).into_iter().map(f32::from_bits).collect();
        let positions: Vec<u32> = (0..n_users)
            .flat_map(|u| 0..(indptr[u + 1] - indptr[u]) as u32)
            .collect();
        Some(UserHistories {
            user_ids: matrix.user_ids.clone().into(),
            indptr: indptr.into(),
            items: items.into(),
            ratings: ratings.into(),
            positions: positions.into(),
            movies: matrix.n_items(),
        })
    }

    /// The transpose of any matrix: entries sorted by user, position and movie.
    fn by_sorting(matrix: &RatingMatrix) -> UserHistories {
        let mut entries: Vec<(u32, u32, u32, f32)> = Vec::with_capacity(matrix.nnz());
        for item in 0..matrix.n_items() {
            for e in matrix.indptr[item]..matrix.indptr[item + 1] {
                entries.push((
                    matrix.users[e],
                    matrix.positions[e],
                    item as u32,
                    matrix.values[e],
                ));
            }
        }
        entries.par_sort_unstable_by_key(|&(u, p, i, _)| (u, p, i));
        let indptr: Vec<u64> = matrix
            .user_offsets()
            .into_iter()
            .map(|o| o as u64)
            .collect();
        UserHistories {
            user_ids: matrix.user_ids.clone().into(),
            indptr: indptr.into(),
            items: entries.iter().map(|e| e.2).collect::<Vec<_>>().into(),
            ratings: entries.iter().map(|e| e.3).collect::<Vec<_>>().into(),
            positions: entries.iter().map(|e| e.1).collect::<Vec<_>>().into(),
            movies: matrix.n_items(),
        }
    }

    /// The history of MovieLens user `user_id` in order, if they rated anything.
    pub fn history(&self, user_id: u32) -> Option<impl Iterator<Item = HistoryEntry> + '_> {
        let u = self.user_ids.binary_search(&user_id).ok()?;
        let span = self.indptr[u] as usize..self.indptr[u + 1] as usize;
        Some(
            span.filter(|&e| (self.items[e] as usize) < self.movies)
                .map(move |e| HistoryEntry {
                    item: self.items[e],
                    rating: self.ratings[e],
                    position: self.positions[e],
                }),
        )
    }

    /// Encodes the histories as a section file (docs/MODEL_FORMAT.md): magic `MRUSERS1`,
    /// sections `user_ids` (`u32 × users`, ascending), `offsets` (`u64 × (users + 1)`), and
    /// `rows` (`u32`), `ratings` (`f32`) and `positions` (`u32`), each `× entries`.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.sections().finish()
    }

    /// The file [`UserHistories::to_bytes`] gives, to be streamed
    /// (what `artifact::Staging::write_sections` takes).
    pub fn sections(&self) -> SectionWriter<'_> {
        let mut w = SectionWriter::new(USERS_MAGIC, USERS_VERSION);
        w.add("user_ids", &self.user_ids)
            .add("offsets", &self.indptr)
            .add("rows", &self.items)
            .add("ratings", &self.ratings)
            .add("positions", &self.positions);
        w
    }

    /// Opens histories written by [`UserHistories::to_bytes`] for a catalog of `movies` movies,
    /// in place. The user ids and offsets are checked here; the entries are not scanned, which
    /// would page in the whole file (their checksum is verified with the directory's, and
    /// [`UserHistories::history`] skips a row outside the catalog).
    pub fn from_bytes(name: &str, bytes: SharedSlice<u8>, movies: usize) -> Result<UserHistories> {
        let bad = |message: String| Error::data(name, message);
        let file =
            SectionFile::open(bytes, USERS_MAGIC, USERS_VERSION, "user histories").map_err(bad)?;
        let user_ids: SharedSlice<u32> = file.section("user_ids").map_err(bad)?;
        if user_ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(bad(
                "corrupt: user ids are not strictly ascending".to_string()
            ));
        }
        let indptr = file
            .section_of_len::<u64>("offsets", user_ids.len() + 1)
            .map_err(bad)?;
        let items: SharedSlice<u32> = file.section("rows").map_err(bad)?;
        let ratings = file
            .section_of_len::<f32>("ratings", items.len())
            .map_err(bad)?;
        let positions = file
            .section_of_len::<u32>("positions", items.len())
            .map_err(bad)?;
        check_partition(&indptr, items.len()).map_err(bad)?;
        Ok(UserHistories {
            user_ids,
            indptr,
            items,
            ratings,
            positions,
            movies,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalog::numbered_catalog as catalog;

    /// A rating, for tests.
    pub(crate) fn rating(user_id: u32, movie_id: u32, rating: f32, timestamp: u32) -> Rating {
        Rating {
            user_id,
            movie_id,
            rating,
            timestamp,
        }
    }

    #[test]
    fn the_latest_of_duplicate_ratings_counts_and_histories_are_in_time_order() {
        let ratings = [
            rating(7, 2, 1.0, 10),
            rating(7, 1, 4.0, 5),
            rating(7, 2, 5.0, 20), // re-rated later: this one counts
            rating(3, 3, 2.5, 1),
        ];
        let matrix = RatingMatrix::build(&catalog(3), &ratings);
        assert_eq!(matrix.nnz(), 3);
        let users = UserHistories::from_matrix(&matrix);
        let seven: Vec<_> = users.history(7).unwrap().collect();
        let seven: Vec<(u32, f32, u32)> = seven
            .iter()
            .map(|h| (h.item, h.rating, h.position))
            .collect();
        assert_eq!(seven, vec![(0, 4.0, 0), (1, 5.0, 1)]);
        assert!(users.history(99).is_none());
        let bytes = users.to_bytes();
        let open = |bytes: &[u8], movies| {
            UserHistories::from_bytes("u", SharedSlice::copy_aligned(bytes), movies)
        };
        assert_eq!(open(&bytes, 3).unwrap(), users);
        for len in 0..bytes.len() {
            assert!(open(&bytes[..len], 3).is_err(), "{len}");
        }
        // A row outside the catalog is never handed out.
        let small = open(&bytes, 1).unwrap();
        let seven: Vec<u32> = small.history(7).unwrap().map(|h| h.item).collect();
        assert_eq!(seven, vec![0]);
    }

    fn same_matrix(a: &RatingMatrix, b: &RatingMatrix) {
        assert_eq!(a.user_ids, b.user_ids);
        assert_eq!(a.indptr, b.indptr);
        assert_eq!(a.users, b.users);
        assert_eq!(a.values, b.values);
        assert_eq!(a.positions, b.positions);
    }

    #[test]
    fn the_parallel_counting_sort_equals_a_sequential_one_for_any_number_of_threads() {
        let n = 10_007;
        let buckets = 97;
        // Some beyond the buckets (and u32::MAX): left out, as `offsets` leaves them.
        let bucket = |i: usize| match i % 13 {
            0 => u32::MAX,
            1 => buckets as u32 + 3,
            _ => ((i as u32).wrapping_mul(2_654_435_761) >> 7) % buckets as u32,
        };
        let want_offsets = offsets((0..n).map(bucket), buckets);
        let mut want = vec![0u32; want_offsets[buckets]];
        let mut fill = want_offsets.clone();
        for i in 0..n {
            if let Some(at) = fill
                .get_mut(bucket(i) as usize)
                .filter(|_| bucket(i) < buckets as u32)
            {
                want[*at] = i as u32;
                *at += 1;
            }
        }
        for threads in [1, 2, 3, 7] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let (got_offsets, got) = pool.install(|| bucketed(n, buckets, bucket));
            assert_eq!(got_offsets, want_offsets, "{threads} threads");
            assert_eq!(got, want, "{threads} threads");
            // One part per thread, unless their counts would be too many.
            assert_eq!(pool.install(|| part_ranges(n, buckets).len()), threads);
            assert_eq!(pool.install(|| part_ranges(n, PART_COUNTS).len()), 1);
        }
        assert_eq!(bucketed(0, 3, |_| 0), (vec![0; 4], Vec::new()));
    }

    #[test]
    fn counting_into_rows_gives_the_matrix_sorting_gives() {
        let draw = |i: u64, salt: u64, n: u64| (crate::rng::splitmix64(i * 5 + salt) % n) as u32;
        for (users, big_ids) in [(30u64, false), (300, false), (50, true)] {
            // Re-ratings at equal and later times, movies outside the catalog (41 to 45), and
            // user ids past the id table (searched instead).
            let ratings: Vec<Rating> = (0..4_000)
                .map(|i| {
                    let user = draw(i, 0, users) * 7 + 1;
                    rating(
                        if big_ids { u32::MAX - user } else { user },
                        draw(i, 1, 45) + 1,
                        (draw(i, 2, 10) + 1) as f32 / 2.0,
                        draw(i, 3, 60),
                    )
                })
                .collect();
            let counted = RatingMatrix::build(&catalog(40), &ratings);
            let sorted = RatingMatrix::build_by_sorting(&catalog(40), &ratings);
            same_matrix(&counted, &sorted);
            assert!(
                counted.nnz() < ratings.len(),
                "duplicates and strangers dropped"
            );
            assert!(counted.nnz() > 0);
            // Grouped by user (file order kept within each user), as MovieLens writes them:
            // ranked in each user's run.
            let mut grouped = ratings.clone();
            grouped.sort_by_key(|r| r.user_id);
            assert!(!ratings.windows(2).all(|w| w[0].user_id <= w[1].user_id));
            let from_runs = RatingMatrix::build(&catalog(40), &grouped);
            same_matrix(
                &from_runs,
                &RatingMatrix::build_by_sorting(&catalog(40), &grouped),
            );
            same_matrix(&from_runs, &counted);
            // Each user's by movie too (as GroupLens sorts them): most users' runs are then
            // in row order already; those with a movie rated twice are not.
            grouped.sort_by_key(|r| (r.user_id, r.movie_id));
            same_matrix(&RatingMatrix::build(&catalog(40), &grouped), &counted);
        }
        let none = RatingMatrix::build(&catalog(3), &[]);
        same_matrix(&none, &RatingMatrix::build_by_sorting(&catalog(3), &[]));
        assert_eq!(none.indptr, vec![0; 4]);
    }

    #[test]
    fn placing_by_rank_gives_the_sorted_transpose() {
        let draw = |i: u64, salt: u64, n: u64| (crate::rng::splitmix64(i * 4 + salt) % n) as u32;
        let ratings: Vec<Rating> = (0..3_000)
            .map(|i| {
                rating(
                    draw(i, 0, 90) * 3 + 1,
                    draw(i, 1, 40) + 1,
                    (draw(i, 2, 10) + 1) as f32 / 2.0,
                    draw(i, 3, 500), // ties in time too
                )
            })
            .collect();
        let matrix = RatingMatrix::build(&catalog(40), &ratings);
        let placed = UserHistories::by_ranks(&matrix).expect("build's positions are ranks");
        assert_eq!(placed, UserHistories::by_sorting(&matrix));
        // Positions that are not ranks take the sort.
        let mut hand_made = matrix.clone();
        hand_made.positions.iter_mut().for_each(|p| *p *= 2);
        assert!(UserHistories::by_ranks(&hand_made).is_none());
        // Two entries of a user at one position (every slot inside the user's span).
        let mut repeated = matrix.clone();
        repeated.positions.iter_mut().for_each(|p| *p /= 2);
        assert!(UserHistories::by_ranks(&repeated).is_none());
        let sorted = UserHistories::from_matrix(&hand_made);
        assert_eq!(&sorted.items[..], &placed.items[..]);
    }
}
