//! How close a query is to a name: whole-string and per-word quality from optimal string
//! alignment (edit) distances, computed bit-parallel over the query's patterns.

use super::*;

/// Whole-string quality of compact query `q` against compact name `n`: exact, prefix, typo or
/// typo in a prefix. Below [`MIN_QUALITY`] it may return 0.
pub(super) fn string_quality(
    (q, pattern): (&[char], Option<&Pattern>),
    n: &[char],
    dp: &mut Vec<u32>,
) -> f32 {
    let (lq, ln) = (q.len(), n.len());
    if lq == 0 || ln == 0 {
        return 0.0;
    }
    if q == n {
        return 1.0;
    }
    if n.starts_with(q) {
        return PREFIX_QUALITY;
    }
    let longest = lq.max(ln);
    let full_edits = max_edits(longest, 1.0, MIN_QUALITY);
    let full_possible = lq.abs_diff(ln) <= full_edits as usize;
    let prefix_possible = lq >= 4 && ln > lq;
    let prefix_edits = if prefix_possible {
        max_edits(lq, PREFIX_QUALITY, MIN_QUALITY)
    } else {
        0
    };
    if !full_possible && (!prefix_possible || prefix_edits == 0) {
        return 0.0;
    }
    let limit = if full_possible {
        full_edits.max(prefix_edits)
    } else {
        prefix_edits
    };
    let cols = ln.min(lq + limit as usize);
    let (full, prefix) = match pattern {
        Some(pattern) => pattern.distances(&n[..cols]),
        None => osa_distances(q, &n[..cols], limit, dp),
    };
    let mut quality = 0.0f32;
    if full_possible && cols == ln && full <= full_edits {
        quality = 1.0 - full as f32 / longest as f32;
    }
    if prefix_possible && prefix <= prefix_edits {
        quality = quality.max(PREFIX_QUALITY * (1.0 - prefix as f32 / lq as f32));
    }
    quality
}

/// Word-level quality: the letter-weighted share of the query's words found among the name's
/// words (exactly; as a prefix for the last query word; or with at most one edit per four
/// letters), times [`WORDS_QUALITY`]. Gives up (returns 0) as soon as [`MIN_QUALITY`] is out
/// of reach.
pub(super) fn word_quality(
    query: &Normalised,
    patterns: &[Option<Pattern>],
    chars: &[char],
    ends: &[u32],
    dp: &mut Vec<u32>,
) -> f32 {
    let total = query.chars.len() as f32;
    if total == 0.0 {
        return 0.0;
    }
    let needed = MIN_QUALITY / WORDS_QUALITY * total - 1e-3;
    let query_words = query.ends.len();
    let mut covered = 0.0f32;
    let mut remaining = total;
    for (i, qw) in query.words().enumerate() {
        let last = i + 1 == query_words;
        let lq = qw.len();
        let edits = (lq / 4) as u32;
        let mut best = 0.0f32;
        for nw in words(chars, ends) {
            let ln = nw.len();
            if qw == nw || (last && nw.starts_with(qw)) {
                best = 1.0;
                break;
            }
            if edits == 0 || ln + (edits as usize) < lq || (!last && ln > lq + edits as usize) {
                continue;
            }
            let cols = ln.min(lq + edits as usize);
            let (full, prefix) = match &patterns[i] {
                Some(pattern) => pattern.distances(&nw[..cols]),
                None => osa_distances(qw, &nw[..cols], edits, dp),
            };
            if cols == ln && full <= edits {
                best = best.max(1.0 - full as f32 / lq.max(ln) as f32);
            }
            if last && prefix <= edits {
                best = best.max(1.0 - prefix as f32 / lq as f32);
            }
        }
        covered += best * lq as f32;
        remaining -= lq as f32;
        if covered + remaining < needed {
            return 0.0;
        }
    }
    WORDS_QUALITY * covered / total
}

/// A query string of at most 64 characters prepared for bit-parallel edit distances: for each
/// character, the set of positions where it occurs, one bit each.
#[derive(Clone, Debug)]
pub(super) struct Pattern {
    pub(super) len: u32,
    /// Masks of `0`–`9` then `a`–`z` (what compact forms are mostly made of).
    pub(super) alphanumeric: [u64; 36],
    /// Masks of any other character.
    pub(super) other: Vec<(char, u64)>,
}

impl Pattern {
    /// `None` for an empty string or one longer than 64 characters.
    pub(super) fn new(chars: &[char]) -> Option<Pattern> {
        if chars.is_empty() || chars.len() > 64 {
            return None;
        }
        let mut pattern = Pattern {
            len: chars.len() as u32,
            alphanumeric: [0; 36],
            other: Vec::new(),
        };
        for (i, &c) in chars.iter().enumerate() {
            let bit = 1u64 << i;
            match alphanumeric_slot(c) {
                Some(slot) => pattern.alphanumeric[slot] |= bit,
                None => match pattern.other.iter_mut().find(|(o, _)| *o == c) {
                    Some((_, mask)) => *mask |= bit,
                    None => pattern.other.push((c, bit)),
                },
            }
        }
        Some(pattern)
    }

    pub(super) fn mask(&self, c: char) -> u64 {
        match alphanumeric_slot(c) {
            Some(slot) => self.alphanumeric[slot],
            None => self
                .other
                .iter()
                .find(|(o, _)| *o == c)
                .map_or(0, |(_, mask)| *mask),
        }
    }

    /// What [`osa_distances`] computes, exactly and without a limit: the optimal-string-
    /// alignment distance between the pattern and `text`, and the smallest between the pattern
    /// and any prefix of `text`. Myers' bit-vector algorithm with Hyyrö's (2003) transposition
    /// term: one pass over `text`, a few word operations per character.
    pub(super) fn distances(&self, text: &[char]) -> (u32, u32) {
        let mut vp = !0u64;
        let mut vn = 0u64;
        let mut d0 = 0u64;
        let mut previous = 0u64;
        let last = 1u64 << (self.len - 1);
        // Row `len` of the table: distance to the empty prefix first.
        let mut distance = self.len;
        let mut best = distance;
        for &c in text {
            let pm = self.mask(c);
            let transposed = ((!d0 & pm) << 1) & previous;
            d0 = ((pm & vp).wrapping_add(vp) ^ vp) | pm | vn | transposed;
            let hp = vn | !(d0 | vp);
            let hn = d0 & vp;
            if hp & last != 0 {
                distance += 1;
            } else if hn & last != 0 {
                distance -= 1;
            }
            let hp = (hp << 1) | 1;
            let hn = hn << 1;
            vp = hn | !(d0 | hp);
            vn = hp & d0;
            previous = pm;
            best = best.min(distance);
        }
        (distance, best)
    }
}

/// Index of an ASCII digit or lower-case letter in [`Pattern::alphanumeric`].
pub(super) fn alphanumeric_slot(c: char) -> Option<usize> {
    match c {
        '0'..='9' => Some(c as usize - '0' as usize),
        'a'..='z' => Some(10 + c as usize - 'a' as usize),
        _ => None,
    }
}

/// Optimal-string-alignment distance (Levenshtein plus swaps of neighbouring characters)
/// between `a` and `b`, and the smallest distance between `a` and any prefix of `b`; each
/// exact when at most `limit`, otherwise some value above `limit`. Only the diagonal band
/// `|i - j| <= limit` is computed, and it stops as soon as a whole row exceeds `limit`.
pub(super) fn osa_distances(a: &[char], b: &[char], limit: u32, dp: &mut Vec<u32>) -> (u32, u32) {
    let over = limit + 1;
    let cols = b.len() + 1;
    let k = limit as usize;
    dp.clear();
    dp.resize(3 * cols, over);
    let (mut two_up, rest) = dp.split_at_mut(cols);
    let (mut up, mut row) = rest.split_at_mut(cols);
    for (j, cell) in up.iter_mut().enumerate().take(k + 1) {
        *cell = j as u32;
    }
    for i in 1..=a.len() {
        let lo = i.saturating_sub(k).max(1);
        let hi = (i + k).min(cols - 1);
        // The cell left of the band: row[0] = i inside the band, else out of reach. It may
        // hold a value from three rows ago, so it is always written.
        row[lo - 1] = if lo == 1 { (i as u32).min(over) } else { over };
        let mut row_min = row[lo - 1];
        for j in lo..=hi {
            let cost = u32::from(a[i - 1] != b[j - 1]);
            let mut d = (up[j] + 1).min(row[j - 1] + 1).min(up[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(two_up[j - 2] + 1);
            }
            let d = d.min(over);
            row[j] = d;
            row_min = row_min.min(d);
        }
        // The cell right of the band is read by the next row; nothing ever writes it but
        // the initialisation, except when the band was wider earlier (it never is).
        if hi + 1 < cols {
            row[hi + 1] = over;
        }
        if row_min > limit {
            return (over, over);
        }
        std::mem::swap(&mut two_up, &mut up);
        std::mem::swap(&mut up, &mut row);
    }
    // After the last swap, `up` holds the last row.
    let full = up[cols - 1];
    let lo = a.len().saturating_sub(k);
    let hi = (a.len() + k).min(cols - 1);
    let prefix = up[lo..=hi].iter().copied().min().unwrap_or(over);
    (full.min(over), prefix.min(over))
}
