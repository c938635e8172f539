//! Reading a typed query: its forms (as typed, without its article), the year and sequel
//! number it asks for, a franchise it may name, and how a year difference and the length of a
//! word bound what counts as a match.

use super::*;

/// One way of reading the query: its normalised forms (as typed, and without a leading or
/// trailing article), the year it asks for, if any, and its sequel number, if any.
#[derive(Debug)]
pub(super) struct Reading {
    pub(super) forms: Vec<Normalised>,
    /// The bit-parallel patterns of each form (same order as `forms`).
    pub(super) patterns: Vec<FormPatterns>,
    pub(super) year: Option<u16>,
    /// The query's sequel number and its digits: a movie that carries neither matches loosely.
    pub(super) number: Option<(u8, Vec<char>)>,
    /// The forms are the canonical sequel-number form (`rocky 2` for `rocky two`): at best close.
    pub(super) canonical: bool,
}

impl Reading {
    pub(super) fn new(
        forms: Vec<Normalised>,
        year: Option<u16>,
        number: Option<u8>,
        canonical: bool,
    ) -> Reading {
        let patterns = forms
            .iter()
            .map(|form| FormPatterns {
                whole: Pattern::new(&form.chars),
                words: form.words().map(Pattern::new).collect(),
            })
            .collect();
        Reading {
            forms,
            patterns,
            year,
            number: number.map(|n| (n, n.to_string().chars().collect())),
            canonical,
        }
    }
}

/// The query's stem and sequel number, for a franchise look-up (`die hard`, 3).
#[derive(Debug)]
pub(super) struct FranchiseQuery {
    /// Compact stem, without a leading article.
    pub(super) stem: Vec<char>,
    pub(super) number: u8,
}

/// A query form and each of its words prepared for [`Pattern::distances`] (`None` where longer
/// than 64 characters: those use [`osa_distances`]).
#[derive(Debug)]
pub(super) struct FormPatterns {
    pub(super) whole: Option<Pattern>,
    pub(super) words: Vec<Option<Pattern>>,
}

/// The readings of a query: as typed, and, if it ends with a year, title + year; each also in
/// its canonical sequel-number form when that differs. Also the franchise look-up it asks for.
pub(super) fn read_query(query: &str) -> (Vec<Reading>, Option<FranchiseQuery>) {
    let normalised = normalise(query);
    if normalised.chars.is_empty() {
        return (Vec::new(), None);
    }
    let mut bases = Vec::with_capacity(2);
    let words: Vec<&[char]> = normalised.words().collect();
    let mut year = None;
    if let [.., _, last] = words.as_slice() {
        year = (last.len() == 4 && last.iter().all(char::is_ascii_digit))
            .then(|| last.iter().collect::<String>().parse::<u16>().ok())
            .flatten()
            .filter(|y| QUERY_YEARS.contains(y));
    }
    if year.is_some() {
        let count = normalised.ends.len() - 1;
        let cut = normalised.ends[count - 1];
        let without_year = Normalised {
            chars: normalised.chars[..cut as usize].to_vec(),
            ends: normalised.ends[..count].to_vec(),
            breaks: normalised
                .breaks
                .iter()
                .copied()
                .filter(|&b| (b as usize) < count)
                .collect(),
        };
        bases.push((normalised, None));
        bases.push((without_year, year));
    } else {
        bases.push((normalised, None));
    }
    let mut readings = Vec::with_capacity(4);
    let mut franchise = None;
    for (base, year) in bases {
        let sequel = sequel::read(&base.chars, &base.ends, &base.breaks);
        let number = sequel.as_ref().map(|s| s.number);
        if let Some(sequel) = sequel {
            if franchise.is_none() {
                let stem_words = &sequel.ends[..sequel.stem_words as usize];
                let mut from = 0;
                if stem_words.len() >= 2 && is_article(&sequel.chars[..stem_words[0] as usize]) {
                    from = stem_words[0] as usize;
                }
                franchise = Some(FranchiseQuery {
                    stem: sequel.chars[from..sequel.stem_end as usize].to_vec(),
                    number: sequel.number,
                });
            }
            if sequel.chars != base.chars {
                let form = Normalised {
                    chars: sequel.chars,
                    ends: sequel.ends,
                    breaks: Vec::new(),
                };
                readings.push(Reading::new(query_forms(form), year, number, true));
            }
        }
        readings.push(Reading::new(query_forms(base), year, number, false));
    }
    (readings, franchise)
}

/// A normalised query, plus the same without a leading (`the matrix`) or trailing
/// (`matrix, the`) article.
pub(super) fn query_forms(full: Normalised) -> Vec<Normalised> {
    let count = full.ends.len();
    let mut stripped = None;
    if count >= 2 {
        let first_end = full.ends[0] as usize;
        let last_start = full.ends[count - 2] as usize;
        if is_article(&full.chars[..first_end]) {
            stripped = Some(Normalised {
                chars: full.chars[first_end..].to_vec(),
                ends: full.ends[1..]
                    .iter()
                    .map(|e| e - first_end as u32)
                    .collect(),
                breaks: full
                    .breaks
                    .iter()
                    .filter(|&&b| b > 1)
                    .map(|b| b - 1)
                    .collect(),
            });
        } else if is_article(&full.chars[last_start..]) {
            stripped = Some(Normalised {
                chars: full.chars[..last_start].to_vec(),
                ends: full.ends[..count - 1].to_vec(),
                breaks: full
                    .breaks
                    .iter()
                    .copied()
                    .filter(|&b| (b as usize) < count - 1)
                    .collect(),
            });
        }
    }
    let mut forms = vec![full];
    forms.extend(stripped);
    forms
}

pub(super) fn year_factor(wanted: Option<u16>, actual: Option<u16>) -> f32 {
    match (wanted, actual) {
        (None, _) => 1.0,
        (Some(_), None) => YEAR_UNKNOWN,
        (Some(w), Some(a)) if w == a => YEAR_SAME,
        (Some(w), Some(a)) if w.abs_diff(a) == 1 => YEAR_OFF_BY_ONE,
        _ => YEAR_OTHER,
    }
}

/// Largest edit distance `d` out of `len` for which `factor * (1 - d / len)` still reaches
/// `floor` (with a little slack for rounding).
pub(super) fn max_edits(len: usize, factor: f32, floor: f32) -> u32 {
    ((len as f32) * (1.0 - floor / factor) + 1e-3).max(0.0) as u32
}
