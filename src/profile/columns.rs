//! Column profiles: ids counted in dense arrays or hashed, sorted numeric columns with their
//! quantiles, decimal and text columns with their most frequent values.

use super::*;

/// Movie id -> position in `movies.csv`.
pub(super) enum IdIndex {
    /// `slots[id]` = position + 1 (0: not a movie).
    Dense(Vec<u32>),
    Sparse(HashMap<u32, u32>),
}

impl IdIndex {
    pub(super) fn new(ids: &[u32]) -> IdIndex {
        let max = ids.iter().copied().max().unwrap_or(0);
        if u64::from(max) < DENSE_ID_LIMIT {
            let mut slots = vec![0u32; max as usize + 1];
            for (i, &id) in ids.iter().enumerate() {
                slots[id as usize] = i as u32 + 1;
            }
            IdIndex::Dense(slots)
        } else {
            IdIndex::Sparse(
                ids.iter()
                    .enumerate()
                    .map(|(i, &id)| (id, i as u32))
                    .collect(),
            )
        }
    }

    pub(super) fn get(&self, id: u32) -> Option<usize> {
        match self {
            IdIndex::Dense(slots) => slots
                .get(id as usize)
                .and_then(|&s| s.checked_sub(1))
                .map(|s| s as usize),
            IdIndex::Sparse(map) => map.get(&id).map(|&s| s as usize),
        }
    }
}

/// Distinct ids (ascending) and how often each occurs.
pub(super) struct IdCounts {
    pub(super) ids: Vec<u32>,
    pub(super) counts: Vec<u32>,
}

/// Counts the ids `id(0..n)`: in per-thread dense arrays when they are small (MovieLens ids
/// are), else by sorting.
pub(super) fn count_ids(n: usize, id: impl Fn(usize) -> u32 + Sync) -> IdCounts {
    let max = (0..n).into_par_iter().map(&id).max().unwrap_or(0);
    if u64::from(max) < DENSE_ID_LIMIT {
        let chunk = n.div_ceil(4 * rayon::current_num_threads()).max(1 << 16);
        let dense = (0..n.div_ceil(chunk))
            .into_par_iter()
            .map(|c| {
                let mut counts = vec![0u32; max as usize + 1];
                for i in c * chunk..((c + 1) * chunk).min(n) {
                    counts[id(i) as usize] += 1;
                }
                counts
            })
            .reduce_with(|mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            })
            .unwrap_or_default();
        let (ids, counts) = dense
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| (i as u32, c))
            .unzip();
        IdCounts { ids, counts }
    } else {
        let mut all: Vec<u32> = (0..n).into_par_iter().map(&id).collect();
        all.par_sort_unstable();
        let mut result = IdCounts {
            ids: Vec::new(),
            counts: Vec::new(),
        };
        for run in all.chunk_by(|a, b| a == b) {
            result.ids.push(run[0]);
            result.counts.push(run.len() as u32);
        }
        result
    }
}

/// The most frequent `(value, count)` pairs, most frequent first, ties by value order.
pub(super) fn top_by_count<T: Clone + Ord>(
    items: impl Iterator<Item = (T, u64)>,
    k: usize,
) -> Vec<(T, u64)> {
    // A min-heap of the k best so far, by (count, reversed value).
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut heap: BinaryHeap<Reverse<(u64, Reverse<T>)>> = BinaryHeap::with_capacity(k + 1);
    for (value, count) in items {
        let entry = Reverse((count, Reverse(value)));
        if heap.len() < k {
            heap.push(entry);
        } else if heap.peek().is_some_and(|least| entry < *least) {
            heap.pop();
            heap.push(entry);
        }
    }
    let mut top: Vec<(T, u64)> = heap
        .into_iter()
        .map(|Reverse((count, Reverse(value)))| (value, count))
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top
}

/// An id column from its counts.
pub(super) fn id_column(name: &str, counts: &IdCounts, rows: u64) -> ColumnProfile {
    let sum: f64 = counts
        .ids
        .iter()
        .zip(&counts.counts)
        .map(|(&id, &c)| f64::from(id) * f64::from(c))
        .sum();
    let distinct = counts.ids.len() as u64;
    let top = if distinct == rows {
        Vec::new()
    } else {
        top_by_count(
            counts
                .ids
                .iter()
                .zip(&counts.counts)
                .map(|(&id, &c)| (id, u64::from(c))),
            TOP_VALUES,
        )
        .into_iter()
        .map(|(id, c)| (id.to_string(), c))
        .collect()
    };
    ColumnProfile {
        name: name.into(),
        kind: ColumnKind::Integer,
        count: rows,
        missing: 0,
        distinct,
        min: counts.ids.first().map(u32::to_string),
        max: counts.ids.last().map(u32::to_string),
        mean: (rows > 0).then(|| sum / rows as f64),
        top,
    }
}

/// An integer or timestamp column from its sorted present values.
pub(super) fn sorted_column(
    name: &str,
    kind: ColumnKind,
    sorted: &[i64],
    missing: u64,
) -> ColumnProfile {
    let format = |v: i64| match kind {
        ColumnKind::Timestamp => format_timestamp(v),
        _ => v.to_string(),
    };
    // Frequent timestamps are told apart to the second.
    let format_top = |v: i64| match kind {
        ColumnKind::Timestamp => format_time_of_day(v),
        _ => v.to_string(),
    };
    let distinct = if sorted.is_empty() {
        0
    } else {
        1 + sorted.windows(2).filter(|w| w[0] != w[1]).count() as u64
    };
    let top = if distinct == sorted.len() as u64 {
        Vec::new()
    } else {
        top_by_count(
            sorted
                .chunk_by(|a, b| a == b)
                .map(|run| (run[0], run.len() as u64)),
            TOP_VALUES,
        )
        .into_iter()
        .map(|(v, c)| (format_top(v), c))
        .collect()
    };
    let sum: f64 = sorted.par_iter().map(|&v| v as f64).sum();
    ColumnProfile {
        name: name.into(),
        kind,
        count: sorted.len() as u64,
        missing,
        distinct,
        min: sorted.first().map(|&v| format(v)),
        max: sorted.last().map(|&v| format(v)),
        mean: (!sorted.is_empty() && kind != ColumnKind::Timestamp)
            .then(|| sum / sorted.len() as f64),
        top,
    }
}

/// The timestamps sorted: by a radix sort on 32 bits when they all fit (1970 to 2106, as
/// MovieLens's do: three passes of 11 bits, far quicker than comparing), else by comparison.
pub(super) fn sorted_timestamps(times: impl Iterator<Item = i64>, n: usize) -> Vec<i64> {
    let mut keys: Vec<u32> = Vec::with_capacity(n);
    let mut wide: Vec<i64> = Vec::new();
    for t in times {
        match u32::try_from(t) {
            Ok(k) if wide.is_empty() => keys.push(k),
            _ => {
                if wide.is_empty() {
                    wide = keys.iter().map(|&k| i64::from(k)).collect();
                    keys = Vec::new();
                }
                wide.push(t);
            }
        }
    }
    if !wide.is_empty() {
        wide.par_sort_unstable();
        return wide;
    }
    radix_sort(&mut keys);
    keys.into_iter().map(i64::from).collect()
}

/// Least-significant-digit radix sort, 11 bits a pass.
pub(super) fn radix_sort(keys: &mut Vec<u32>) {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    let mut other = vec![0u32; keys.len()];
    // The three digits' histograms in one read.
    let mut histograms = vec![[0usize; BUCKETS + 1]; 3];
    for &k in keys.iter() {
        for (pass, histogram) in histograms.iter_mut().enumerate() {
            histogram[((k >> (pass as u32 * BITS)) as usize & (BUCKETS - 1)) + 1] += 1;
        }
    }
    for (pass, offsets) in histograms.iter_mut().enumerate() {
        let shift = pass as u32 * BITS;
        if offsets.contains(&keys.len()) {
            continue; // Every key has the same digit here: nothing moves.
        }
        for b in 1..=BUCKETS {
            offsets[b] += offsets[b - 1];
        }
        for &k in keys.iter() {
            let slot = &mut offsets[(k >> shift) as usize & (BUCKETS - 1)];
            other[*slot] = k;
            *slot += 1;
        }
        std::mem::swap(keys, &mut other);
    }
}

/// An integer column from unsorted values (`None` = missing).
pub(super) fn integer_column(
    name: &str,
    values: impl Iterator<Item = Option<i64>>,
) -> ColumnProfile {
    let mut present = Vec::new();
    let mut missing = 0u64;
    for v in values {
        match v {
            Some(v) => present.push(v),
            None => missing += 1,
        }
    }
    present.par_sort_unstable();
    sorted_column(name, ColumnKind::Integer, &present, missing)
}

/// A decimal column (no missing values possible in MovieLens's typed data).
pub(super) fn decimal_column(name: &str, values: &[f32]) -> ColumnProfile {
    let mut sorted: Vec<f32> = values.to_vec();
    sorted.par_sort_unstable_by(f32::total_cmp);
    let distinct = if sorted.is_empty() {
        0
    } else {
        1 + sorted.windows(2).filter(|w| w[0] != w[1]).count() as u64
    };
    let top = top_by_count(
        sorted
            .chunk_by(|a, b| a == b)
            .map(|run| (OrderedF32(run[0]), run.len() as u64)),
        TOP_VALUES,
    );
    let sum: f64 = sorted.par_iter().map(|&v| f64::from(v)).sum();
    ColumnProfile {
        name: name.into(),
        kind: ColumnKind::Decimal,
        count: sorted.len() as u64,
        missing: 0,
        distinct,
        min: sorted.first().map(|v| format_decimal(*v)),
        max: sorted.last().map(|v| format_decimal(*v)),
        mean: (!sorted.is_empty()).then(|| sum / sorted.len() as f64),
        top: if distinct == sorted.len() as u64 {
            Vec::new()
        } else {
            top.into_iter()
                .map(|(v, c)| (format_decimal(v.0), c))
                .collect()
        },
    }
}

/// `f32` ordered by `total_cmp`, for [`top_by_count`].
#[derive(Clone, Copy, PartialEq)]
pub(super) struct OrderedF32(pub(super) f32);
impl Eq for OrderedF32 {}
impl PartialOrd for OrderedF32 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrderedF32 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A text column (`None` or blank = missing).
pub(super) fn text_column<'a>(
    name: &str,
    values: impl Iterator<Item = Option<&'a str>>,
) -> ColumnProfile {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    let (mut count, mut missing) = (0u64, 0u64);
    for v in values {
        match v.filter(|s| !s.trim().is_empty()) {
            Some(s) => {
                count += 1;
                *counts.entry(s).or_default() += 1;
            }
            None => missing += 1,
        }
    }
    let distinct = counts.len() as u64;
    ColumnProfile {
        name: name.into(),
        kind: ColumnKind::Text,
        count,
        missing,
        distinct,
        min: None,
        max: None,
        mean: None,
        top: if distinct == count {
            Vec::new()
        } else {
            top_by_count(counts.into_iter(), TOP_VALUES)
                .into_iter()
                .map(|(s, c)| (s.to_string(), c))
                .collect()
        },
    }
}
