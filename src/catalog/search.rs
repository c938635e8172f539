//! Fuzzy, typo-tolerant movie title search: "did you mean" lookups and suggestions as you type.
//!
//! [`TitleSearch::build`] indexes each movie's title and aliases (as prepared by
//! [`crate::data::title::clean_title`]); [`TitleSearch::search`] answers a free-text query with
//! the best matching movies, best first, each with how it matched ([`MatchKind`]).
//!
//! # Normalisation
//! Titles, aliases and queries are compared in a normalised form: lower case; Latin diacritics
//! folded by a small built-in table (`Amélie` → `amelie`, `Ærø` → `aero`, `ß` → `ss`; combining
//! accents U+0300–U+036F are dropped, so decomposed input folds too — MovieLens titles are
//! precomposed, so no Unicode normalisation crate is needed); apostrophes removed
//! (`Schindler's` → `schindlers`, except that a leading elided `l'` becomes its own word);
//! `&` read as `and`; every other non-alphanumeric character a word break. Non-Latin letters
//! (CJK, Cyrillic, ...) are kept as they are. Matching then uses the *compact* form, with the
//! word breaks removed (so `toystory`, `toy story` and `Toy  Story!` are the same), and the
//! words themselves for word-level scores. A name beginning with an article (`the`, `a`, `an`,
//! `le`, `la`, `les`, `l'`, `il`, `el`, `los`, `las`, `das`, `der`, `gli`, `het`, `une`, `una`,
//! `uno`, `ein`, `eine`, `det`) is also matched without it; so is a query beginning or ending
//! with one (`matrix, the`). Articles that are also common words (`die`, `i`, `o`, `de`, ...)
//! are never stripped, so `hard` does not equal `Die Hard`. A `:`, `;` or a dash between
//! spaces ends a *part* of a name (`Star Wars: Episode V - The Empire Strikes Back`).
//!
//! # Sequel numbers
//! Titles and queries are read for a sequel or part number by the same rules (module
//! `sequel`): `2`, `II`, `part 2`, `part ii`, `chapter 2`, `episode v`, `vol. 2`, `volume 2`,
//! `two`, `the third`, `x2`; never the first word (`12 Angry Men`, `Seven`, `I, Robot`) nor a
//! number above 99 (`Blade Runner 2049`). A name whose number is written otherwise than in
//! arabic digits is also indexed in that canonical form (`The Godfather: Part II` as `the
//! godfather 2`, `Shrek the Third` as `shrek 3`), and so is the query (`godfather part ii`,
//! `shrek three`). A query number that a movie neither carries nor spells in its name costs
//! [`NUMBER_MISSING_FACTOR`] (0.8), so `terminator 2` finds *Terminator 2: Judgment Day*, not
//! *The Terminator*. When no title carries the number, the franchise does: the movies whose
//! name (or a later part of it, `X2: X-Men United`) begins with the query's words before the
//! number, rated at least a tenth as often as the best-known of them, ordered by year; the
//! one at that position gets [`FRANCHISE_QUALITY`] (0.9): `die hard 3` → *Die Hard: With a
//! Vengeance*, `x-men 2` → *X2: X-Men United*, `indiana jones 3` → *Indiana Jones and the Last
//! Crusade*.
//!
//! # Quality and kind
//! Each movie gets the best quality over its names and over the readings of the query, and
//! the kind of that match ([`MatchKind`]: exact, close or loose):
//!
//! | match | quality | kind |
//! | --- | --- | --- |
//! | normalised query equals the title or an alias, with or without its article | 1.0 | exact |
//! | query equals the first part of the title, of two words or more (`lord of the rings` → *The Lord of the Rings: The Fellowship of the Ring*) | 1.0 | close |
//! | query equals the title with the sequel number written another way (`rocky 2` → *Rocky II*) | 1.0 | close |
//! | query is a prefix of the title (`star wars`, `toy st`) | [`PREFIX_QUALITY`] (0.9) | close when it ends on a whole word, else loose |
//! | the film at the asked position of the franchise (`die hard 3`) | [`FRANCHISE_QUALITY`] (0.9) | close |
//! | typo: `1 - d / max(len)` for the optimal-string-alignment distance `d` (a swap of two neighbouring letters is one edit) between compact forms | e.g. 0.889 for `godfahter` | close from [`CLOSE_TYPO_QUALITY`] (0.8), else loose |
//! | typo in a prefix (queries of ≥ 4 letters): `0.9 × (1 - d / len(query))` against the closest prefix of the title | e.g. 0.847 for `the lord of the rigns` → `The Lord of the Rings: The Two Towers` | as typos |
//! | words: `0.85 ×` the letter-weighted share of the query's words found among the title's words (exactly, as a prefix for the last word being typed, or with ≤ 1 edit per 4 letters) | ≤ 0.85 | close when two or more words are all found, else loose (`barbie` → *Barb Wire*) |
//! | any of these without the query's sequel number (`inception 2` → *Inception*) | × 0.8 | loose |
//!
//! If the query ends with a year in 1870..=2035 (`hamlet 1996`, `hamlet (1990)`), it is also
//! read as title + year: that reading's quality is multiplied by 1.0 when the movie's year
//! matches, 0.95 when it is one off, 0.93 when the movie has no year and 0.9 otherwise — so
//! the film of that year wins over the same title from another year; one year off or no year
//! makes the match at best close, another year loose. The query is always
//! read without a year as well (`Blade Runner 2049` stays an exact match).
//! A match through an alias is multiplied by 0.98, so a movie whose own title matches wins a
//! tie. Qualities are rounded to three decimals, so equal matches tie exactly and then
//! popularity decides (`lord of the rings` → the 2001 film, not the 1978 one). Matches below [`MIN_QUALITY`] (0.7) are dropped: `xqzwv` gives nothing,
//! while one typo in four letters (`amlie`, 0.833) or two in seven still match.
//!
//! # How it is fast
//! Two stages. Candidates come from (a) a character-trigram inverted index over the compact
//! forms, each trigram weighted by its inverse document frequency, keeping the 128 best
//! scoring names, and (b) a sorted array of compact forms, where a binary search finds every
//! name the query is a prefix of, keeping the 64 most popular. Only these candidates are
//! scored precisely. Edit distances against a query (or query word) of up to 64 characters
//! are computed bit-parallel (Myers' algorithm with Hyyrö's transposition term: a few word
//! operations per character of the name, exact); longer queries use a table restricted to a
//! diagonal band and abandoned as soon as the threshold is out of reach. A query with a sequel
//! number written otherwise than in digits is read twice (as typed and canonical), so it costs
//! about twice as much; the franchise look-up is one more binary search. In a release build on
//! the 2-core dev machine (busy): about 11 µs per query on average (slowest ~35 µs) at 9,742
//! titles and 32 µs (slowest ~75 µs) at 86,537 real-word titles (see
//! `timing_at_full_movielens_size`); building takes about 10 ms and 90 ms. Measured again
//! with sequel numbers, under a heavier load (load average 2.4 on the 2 cores, where the
//! previous code measured 17 µs and 65–76 µs): 16–19 µs on average (`shrek three` 47 µs,
//! `godfather part ii` 42 µs, `die hard 3` 30 µs) and 61–75 µs; building 15 ms and 110 ms
//! (names are also read for sequel numbers). Synthetic ml-latest
//! titles (`movierec synth`, built from a few hundred words, so trigram lists are long) are
//! the harder case: 62 µs on average, 99th percentile 170 µs (`cargo bench --bench
//! title_search`, docs/BENCHMARKS.md).

mod distance;
mod normalise;
mod query;
mod sequel;

use distance::*;
use normalise::*;
use query::*;

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// Matches below this quality are not returned.
pub const MIN_QUALITY: f32 = 0.7;
/// Quality of a query that is an exact prefix of a title (suggestions as you type).
pub const PREFIX_QUALITY: f32 = 0.9;
/// Quality of a query all of whose words are found among a title's words.
const WORDS_QUALITY: f32 = 0.85;
/// Factor for a match through an alias rather than the title.
const ALIAS_FACTOR: f32 = 0.98;
/// Factor for a query whose sequel number the movie lacks (`terminator 2` against *The
/// Terminator*, `inception 2` against *Inception*): such a match is at best loose.
const NUMBER_MISSING_FACTOR: f32 = 0.8;
/// Quality of the film a franchise's position names when no title carries the number
/// (`die hard 3` → *Die Hard: With a Vengeance*, the third *Die Hard* film by year).
const FRANCHISE_QUALITY: f32 = 0.9;
/// A typo match (whole title or prefix) is close from this quality on, loose below.
const CLOSE_TYPO_QUALITY: f32 = 0.8;
/// Franchise members rated less than this share of the franchise's best-known film (specials,
/// shorts) do not take a position.
const FRANCHISE_MIN_SHARE: u32 = 10;
/// Franchise look-ups that would scan more names than this are skipped (a stem like `the`).
const FRANCHISE_SCAN: usize = 4096;
/// Year factors: same year, one year off, movie without a year, any other year.
const YEAR_SAME: f32 = 1.0;
const YEAR_OFF_BY_ONE: f32 = 0.95;
const YEAR_UNKNOWN: f32 = 0.93;
const YEAR_OTHER: f32 = 0.9;
/// Names kept from the trigram stage and from the prefix stage (per query form).
const TRIGRAM_CANDIDATES: usize = 128;
const PREFIX_CANDIDATES: usize = 64;
/// Longest compact form considered, in characters, for names and queries alike.
const MAX_CHARS: usize = 200;
/// Years recognised at the end of a query.
const QUERY_YEARS: std::ops::RangeInclusive<u16> = 1870..=2035;
/// Leading articles that a name or query is also matched without (see the module docs): the
/// data's [`ARTICLES`](crate::data::title::ARTICLES) but those that are also ordinary words
/// ([`ALSO_WORDS`](crate::data::title::ALSO_WORDS)), lower case, apostrophes dropped.
fn stripped_articles() -> &'static [Vec<char>] {
    use crate::data::title::{ALSO_WORDS, ARTICLES};
    static LIST: std::sync::OnceLock<Vec<Vec<char>>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        let mut list: Vec<Vec<char>> = ARTICLES
            .iter()
            .filter(|a| !ALSO_WORDS.contains(a))
            .map(|a| {
                a.chars()
                    .filter(|c| !matches!(c, '\'' | '’'))
                    .flat_map(char::to_lowercase)
                    .collect()
            })
            .collect();
        list.sort();
        list.dedup();
        list
    })
}

/// One movie handed to [`TitleSearch::build`].
#[derive(Clone, Copy, Debug)]
pub struct TitleEntry<'a> {
    /// Display title, article in front (`The Matrix`).
    pub title: &'a str,
    /// Alternative titles (`a.k.a.` and original-language titles).
    pub aliases: &'a [String],
    /// Release year, if known.
    pub year: Option<u16>,
    /// Popularity (number of ratings); breaks ties between equally good matches.
    pub popularity: u32,
}

/// How a title was matched, as a person would judge it.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum MatchKind {
    /// A weak match: some of the words, a partial word, a number the film lacks, another year
    /// (`inception 2` → *Inception*, `barbie` → *Barb Wire*). Not to be shown as certain.
    Loose,
    /// What a person would accept: a typo, a whole-word prefix, the title before its subtitle,
    /// the sequel number written another way or found through the franchise (`godfahter`,
    /// `star wars`, `lord of the rings`, `rocky 2`, `die hard 3`).
    Close,
    /// The normalised title or an alias, equal (with the year, if one was given).
    Exact,
}

/// One search result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TitleMatch {
    /// Position of the movie in the entries given to [`TitleSearch::build`].
    pub item: u32,
    /// Match quality in `[MIN_QUALITY, 1]`; 1 is an exact (normalised) title match.
    pub quality: f32,
    /// How it matched.
    pub kind: MatchKind,
}

/// A fuzzy title index over a fixed list of movies. Immutable once built, `Send + Sync`;
/// `TitleSearch::default()` is an empty index.
///
/// Each thread that searches keeps a scratch buffer of 4 bytes per indexed name (titles plus
/// aliases), reused across queries and indexes.
#[derive(Clone, Default)]
pub struct TitleSearch {
    items: Vec<ItemInfo>,
    names: Vec<Name>,
    /// Compact forms of all names, back to back.
    chars: Vec<char>,
    /// Word end offsets (relative to the name's start) of all names, back to back.
    word_ends: Vec<u32>,
    /// Name variants (`2 * name` = full, `2 * name + 1` = without article) sorted by compact form.
    sorted: Vec<u32>,
    /// Popularity of each entry of `sorted`.
    sorted_popularity: Vec<u32>,
    /// Parts of names after the first (`x men united` of `X2: X-Men United`), with and without
    /// a leading article, as (name, offset of the part in the compact form), sorted by text:
    /// franchise members are found by them too.
    parts: Vec<(u32, u32)>,
    /// Trigram id -> its range of `postings`. Ids below [`ASCII_TRIGRAMS`] are computed from
    /// the characters; the others are in `extra_trigrams`.
    trigram_offsets: Vec<u32>,
    /// Names containing each trigram, ascending, back to back.
    postings: Vec<u32>,
    /// Ids of trigrams with other characters than ASCII letters and digits.
    extra_trigrams: HashMap<u64, u32, BuildHasherDefault<KeyHasher>>,
    /// Reused while building.
    buffer: Normalised,
}

impl std::fmt::Debug for TitleSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TitleSearch")
            .field("items", &self.items.len())
            .field("names", &self.names.len())
            .field("trigram_postings", &self.postings.len())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug)]
struct ItemInfo {
    year: Option<u16>,
    popularity: u32,
    /// Bit `n` for each sequel number `n` a name of the item carries.
    numbers: u128,
}

/// A title or an alias of one item, or the canonical sequel-number form of one of them.
#[derive(Clone, Copy, Debug)]
struct Name {
    item: u32,
    alias: bool,
    /// A canonical sequel-number form (`the godfather 2` for `The Godfather: Part II`): a match
    /// through it is at best close.
    numbered: bool,
    /// The sequel number of the name in this form (0 for none), and where it starts.
    number: u8,
    stem_end: u32,
    /// Length of the compact form before the first part break when that first part has two
    /// words or more besides an article (`the lord of the rings` in *The Lord of the Rings:
    /// The Fellowship of the Ring*); 0 otherwise.
    main_len: u32,
    /// The item's popularity, copied here for the candidate stage.
    popularity: u32,
    /// Range of the compact form in `TitleSearch::chars`.
    start: u32,
    len: u32,
    /// Offset of the compact form after a leading article; 0 if there is none.
    core: u32,
    /// Range of the word ends in `TitleSearch::word_ends`.
    words_start: u32,
    words_len: u32,
}

impl TitleSearch {
    /// Indexes the titles and aliases of `entries`; results refer to them by position.
    ///
    /// Names that normalise to nothing (punctuation only) are skipped. Takes a few ms for
    /// 10,000 titles.
    ///
    /// # Panics
    /// If there are more than `u32::MAX` entries.
    pub fn build<'a>(entries: impl IntoIterator<Item = TitleEntry<'a>>) -> TitleSearch {
        let mut search = TitleSearch::default();
        let mut numbered = Vec::new();
        for (position, entry) in entries.into_iter().enumerate() {
            let item = u32::try_from(position).expect("at most u32::MAX titles");
            search.items.push(ItemInfo {
                year: entry.year,
                popularity: entry.popularity,
                numbers: 0,
            });
            let first_name = search.names.len();
            numbered.clear();
            search.add_name(item, entry.title, false, first_name, &mut numbered);
            for alias in entry.aliases {
                search.add_name(item, alias, true, first_name, &mut numbered);
            }
            // After the names as written, so that a name equal to another's canonical form
            // (`Ocean's 11` beside `Ocean's Eleven`) keeps its own, exact standing.
            for (form, spec) in &numbered {
                search.push_name(item, form, *spec, first_name);
            }
        }

        search.buffer = Normalised::default();
        search.build_prefix_array();
        search.build_trigram_index();
        search
    }

    /// Best matches first: ordered by match quality, then popularity (number of ratings), then
    /// item. At most `limit` results, none below [`MIN_QUALITY`]; an empty or whitespace-only
    /// query gives none.
    pub fn search(&self, query: &str, limit: usize) -> Vec<TitleMatch> {
        if limit == 0 || self.names.is_empty() {
            return Vec::new();
        }
        let (readings, franchise) = read_query(query);
        if readings.is_empty() {
            return Vec::new();
        }
        SCRATCH.with(|scratch| {
            let scratch = &mut *scratch.borrow_mut();
            let candidates = self.candidates(&readings, scratch);
            let mut scored: Vec<(u32, f32, MatchKind)> = Vec::with_capacity(candidates.len() + 1);
            for &name_index in &candidates {
                let name = &self.names[name_index as usize];
                let (quality, kind) = self.score_name(name, &readings, &mut scratch.dp);
                let quality = (quality * 1000.0).round() / 1000.0;
                if quality >= MIN_QUALITY {
                    scored.push((name.item, quality, kind));
                }
            }
            if let Some(item) = franchise.and_then(|f| self.franchise_member(&f)) {
                scored.push((item, FRANCHISE_QUALITY, MatchKind::Close));
            }
            // Best name per item.
            scored.sort_unstable_by(|a, b| {
                a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)).then(b.2.cmp(&a.2))
            });
            scored.dedup_by_key(|s| s.0);
            scored.sort_unstable_by(|a, b| {
                b.1.total_cmp(&a.1)
                    .then_with(|| {
                        let pa = self.items[a.0 as usize].popularity;
                        let pb = self.items[b.0 as usize].popularity;
                        pb.cmp(&pa)
                    })
                    .then(a.0.cmp(&b.0))
            });
            scored.truncate(limit);
            scored
                .into_iter()
                .map(|(item, quality, kind)| TitleMatch {
                    item,
                    quality,
                    kind,
                })
                .collect()
        })
    }

    /// Sorts the name variants by compact form, for prefix lookups.
    fn build_prefix_array(&mut self) {
        // Sorting on the first six characters first saves most slice comparisons.
        let mut keyed: Vec<(u128, u32)> = Vec::with_capacity(self.names.len() * 2);
        for (index, name) in self.names.iter().enumerate() {
            let index = index as u32;
            keyed.push((0, 2 * index));
            if name.core > 0 {
                keyed.push((0, 2 * index + 1));
            }
        }
        for entry in &mut keyed {
            entry.0 = self
                .variant(entry.1)
                .iter()
                .chain(std::iter::repeat(&'\0'))
                .take(6)
                .fold(0u128, |key, &c| key << 21 | c as u128);
        }
        keyed.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| self.variant(a.1).cmp(self.variant(b.1)))
        });
        self.sorted = keyed.iter().map(|e| e.1).collect();
        let mut parts = std::mem::take(&mut self.parts);
        parts.sort_unstable_by(|a, b| self.part(*a).cmp(self.part(*b)));
        self.parts = parts;
        self.sorted_popularity = self
            .sorted
            .iter()
            .map(|&v| self.names[(v / 2) as usize].popularity)
            .collect();
    }

    /// Builds the trigram inverted index (counting sort into one postings array).
    fn build_trigram_index(&mut self) {
        let mut keys = Vec::new();
        let mut ids: Vec<u32> = Vec::with_capacity(self.chars.len() + self.names.len());
        let mut bounds: Vec<u32> = Vec::with_capacity(self.names.len() + 1);
        bounds.push(0);
        // stamp[id] == name + 1: the id was already taken for this name.
        let mut stamp = vec![0u32; ASCII_TRIGRAMS as usize];
        for (index, name) in self.names.iter().enumerate() {
            keys.clear();
            let chars = &self.chars[name.start as usize..(name.start + name.len) as usize];
            trigram_keys(chars, 0, &mut keys);
            if name.core > 0 {
                trigram_keys(chars, name.core as usize, &mut keys);
            }
            let mark = index as u32 + 1;
            for &key in &keys {
                let id = ascii_trigram_id(key).unwrap_or_else(|| {
                    let next = ASCII_TRIGRAMS + self.extra_trigrams.len() as u32;
                    *self.extra_trigrams.entry(key).or_insert(next)
                });
                if stamp.len() <= id as usize {
                    stamp.resize(id as usize + 1, 0);
                }
                if stamp[id as usize] != mark {
                    stamp[id as usize] = mark;
                    ids.push(id);
                }
            }
            bounds.push(ids.len() as u32);
        }
        let id_count = ASCII_TRIGRAMS as usize + self.extra_trigrams.len();
        let mut offsets = vec![0u32; id_count + 1];
        for &id in &ids {
            offsets[id as usize + 1] += 1;
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        let mut next = offsets.clone();
        let mut postings = vec![0u32; ids.len()];
        for (name, window) in bounds.windows(2).enumerate() {
            for &id in &ids[window[0] as usize..window[1] as usize] {
                postings[next[id as usize] as usize] = name as u32;
                next[id as usize] += 1;
            }
        }
        self.trigram_offsets = offsets;
        self.postings = postings;
    }

    /// Names containing a trigram.
    fn trigram_postings(&self, key: u64) -> Option<&[u32]> {
        let id = ascii_trigram_id(key).or_else(|| self.extra_trigrams.get(&key).copied())?;
        let from = *self.trigram_offsets.get(id as usize)? as usize;
        let to = *self.trigram_offsets.get(id as usize + 1)? as usize;
        (to > from).then(|| &self.postings[from..to])
    }

    /// Normalises `text` and stores it as a name of `item`, unless it is empty or equal to a
    /// name the item already has (names of the item start at `first_name`). Its sequel number
    /// is noted; a canonical form that differs from it is added to `numbered`, for later.
    fn add_name(
        &mut self,
        item: u32,
        text: &str,
        alias: bool,
        first_name: usize,
        numbered: &mut Vec<(Normalised, NameSpec)>,
    ) {
        let mut normalised = std::mem::take(&mut self.buffer);
        normalise_into(text, &mut normalised);
        let mut spec = NameSpec {
            alias,
            main_len: main_part_len(&normalised),
            ..NameSpec::default()
        };
        if let Some(sequel) = sequel::read(&normalised.chars, &normalised.ends, &normalised.breaks)
        {
            self.items[item as usize].numbers |= 1u128 << sequel.number.min(127);
            let numbered_spec = NameSpec {
                alias,
                numbered: true,
                number: sequel.number,
                stem_end: sequel.stem_end,
                main_len: 0,
            };
            if sequel.chars == normalised.chars {
                spec.number = sequel.number;
                spec.stem_end = sequel.stem_end;
            } else {
                let form = Normalised {
                    chars: sequel.chars,
                    ends: sequel.ends,
                    breaks: Vec::new(),
                };
                numbered.push((form, numbered_spec));
            }
        }
        if self.push_name(item, &normalised, spec, first_name) {
            // The later parts, for franchise look-ups (`X2: X-Men United` is an X-Men film).
            let name = self.names.len() as u32 - 1;
            for &part in &normalised.breaks {
                let part = part as usize;
                if part == 0 || part >= normalised.ends.len() {
                    continue;
                }
                self.parts.push((name, normalised.ends[part - 1]));
                let first_word = normalised.ends[part - 1] as usize..normalised.ends[part] as usize;
                if part + 1 < normalised.ends.len() && is_article(&normalised.chars[first_word]) {
                    self.parts.push((name, normalised.ends[part]));
                }
            }
        }
        self.buffer = normalised;
    }

    /// Stores a name unless it is empty or the item has it already; true if stored.
    fn push_name(
        &mut self,
        item: u32,
        normalised: &Normalised,
        spec: NameSpec,
        first_name: usize,
    ) -> bool {
        if normalised.chars.is_empty() {
            return false;
        }
        let duplicate = self.names[first_name..]
            .iter()
            .any(|n| self.name_chars(n) == normalised.chars.as_slice());
        if duplicate {
            return false;
        }
        let core = article_end(&normalised.chars, &normalised.ends);
        self.names.push(Name {
            item,
            alias: spec.alias,
            numbered: spec.numbered,
            number: spec.number,
            stem_end: spec.stem_end,
            main_len: spec.main_len,
            popularity: self.items[item as usize].popularity,
            start: self.chars.len() as u32,
            len: normalised.chars.len() as u32,
            core: core as u32,
            words_start: self.word_ends.len() as u32,
            words_len: normalised.ends.len() as u32,
        });
        self.chars.extend_from_slice(&normalised.chars);
        self.word_ends.extend_from_slice(&normalised.ends);
        true
    }

    fn name_chars(&self, name: &Name) -> &[char] {
        &self.chars[name.start as usize..(name.start + name.len) as usize]
    }

    fn name_word_ends(&self, name: &Name) -> &[u32] {
        &self.word_ends[name.words_start as usize..(name.words_start + name.words_len) as usize]
    }

    /// Compact form of a name from a part on.
    fn part(&self, (name, offset): (u32, u32)) -> &[char] {
        &self.name_chars(&self.names[name as usize])[offset as usize..]
    }

    /// Whether `offset` is where a word of `name` ends (or the name itself does).
    fn ends_word_at(&self, name: &Name, offset: usize) -> bool {
        offset == name.len as usize || self.name_word_ends(name).contains(&(offset as u32))
    }

    /// Compact form of a name variant from `sorted`.
    fn variant(&self, variant: u32) -> &[char] {
        let name = &self.names[(variant / 2) as usize];
        let chars = self.name_chars(name);
        if variant % 2 == 1 {
            &chars[name.core as usize..]
        } else {
            chars
        }
    }

    /// Names worth scoring precisely: the best by weighted trigram overlap, plus the most
    /// popular ones that some reading of the query is a prefix of. Sorted, no duplicates.
    fn candidates(&self, readings: &[Reading], scratch: &mut Scratch) -> Vec<u32> {
        let mut result = Vec::new();

        // (a) Trigram overlap, rare trigrams weighing more.
        let mut keys = Vec::new();
        for reading in readings {
            for form in &reading.forms {
                trigram_keys(&form.chars, 0, &mut keys);
            }
        }
        keys.sort_unstable();
        keys.dedup();
        let mut lists: Vec<&[u32]> = keys
            .iter()
            .filter_map(|&k| self.trigram_postings(k))
            .collect();
        lists.sort_unstable_by_key(|list| list.len());
        let name_count = self.names.len();
        // Very common trigrams ("the", "ing") say little and cost much: those in more than an
        // eighth of all names are skipped. If all are that common (`the`), the prefix stage
        // alone finds the candidates: a word match (0.85) could not beat its prefix matches
        // (0.9) anyway.
        let common = (name_count / 8).max(64);
        if scratch.acc.len() < name_count {
            scratch.acc.resize(name_count, 0);
        }
        // Normally empty; not if an earlier search on this thread panicked half-way.
        for &name in &scratch.touched {
            if let Some(slot) = scratch.acc.get_mut(name as usize) {
                *slot = 0;
            }
        }
        scratch.touched.clear();
        let mut total_weight = 0u32;
        for list in lists.iter().take_while(|list| list.len() <= common) {
            let weight = (100.0 * ((name_count as f32 + 1.0) / list.len() as f32).ln()).max(1.0);
            let weight = weight as u32;
            total_weight += weight;
            for &name in *list {
                let slot = &mut scratch.acc[name as usize];
                if *slot == 0 {
                    scratch.touched.push(name);
                }
                *slot += weight;
            }
        }
        let floor = total_weight / 5;
        let mut ranked: Vec<(u32, u32, u32)> = Vec::with_capacity(scratch.touched.len());
        for &name in &scratch.touched {
            let slot = &mut scratch.acc[name as usize];
            if *slot >= floor {
                ranked.push((*slot, self.names[name as usize].popularity, name));
            }
            *slot = 0;
        }
        scratch.touched.clear();
        let by_overlap = |a: &(u32, u32, u32), b: &(u32, u32, u32)| {
            b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2))
        };
        if ranked.len() > TRIGRAM_CANDIDATES {
            ranked.select_nth_unstable_by(TRIGRAM_CANDIDATES, by_overlap);
            ranked.truncate(TRIGRAM_CANDIDATES);
        }
        result.extend(ranked.iter().map(|r| r.2));

        // (b) Names that a reading of the query is a prefix of: the most popular ones.
        for reading in readings {
            for form in &reading.forms {
                let q = form.chars.as_slice();
                let std::ops::Range { start: lo, end: hi } = self.prefix_range(q);
                if hi - lo <= PREFIX_CANDIDATES {
                    result.extend(self.sorted[lo..hi].iter().map(|v| v / 2));
                } else {
                    // Keep the top PREFIX_CANDIDATES by popularity in a min-heap.
                    let mut heap = BinaryHeap::with_capacity(PREFIX_CANDIDATES + 1);
                    for position in lo..hi {
                        let popularity = self.sorted_popularity[position];
                        let entry = Reverse((popularity, Reverse(position)));
                        if heap.len() < PREFIX_CANDIDATES {
                            heap.push(entry);
                        } else if heap.peek().is_some_and(|least| entry < *least) {
                            heap.pop();
                            heap.push(entry);
                        }
                    }
                    result.extend(heap.iter().map(|e| self.sorted[(e.0).1 .0] / 2));
                }
            }
        }
        result.sort_unstable();
        result.dedup();
        result
    }

    /// The entries of `sorted` whose variant starts with `q`.
    fn prefix_range(&self, q: &[char]) -> std::ops::Range<usize> {
        let lo = self.sorted.partition_point(|&v| self.variant(v) < q);
        let hi = lo + self.sorted[lo..].partition_point(|&v| self.variant(v).starts_with(q));
        lo..hi
    }

    /// The film at the asked position of the franchise named by the query's stem, when no
    /// title of the franchise carries the number itself (then scoring finds that title).
    ///
    /// The franchise: every movie one of whose names begins with the stem as whole words,
    /// with or without an article (`Die Hard`, `Die Hard 2`, `Die Hard: With a Vengeance`), or
    /// has a later part that does (`X2: X-Men United`, `The Lost World: Jurassic Park`),
    /// rated at least a tenth as often as its best-known film (or carrying its own number after
    /// the stem), ordered by year. If a member
    /// that carries its own number after the same stem is not at that position (`Star Wars:
    /// Episode IV` is the first by year; *The Rocky Horror Picture Show* comes before *Rocky*),
    /// the year order is not the numbering and nothing is guessed.
    fn franchise_member(&self, query: &FranchiseQuery) -> Option<u32> {
        let stem = query.stem.as_slice();
        if stem.len() < 2 {
            return None;
        }
        let variants = self.prefix_range(stem);
        let lo = self.parts.partition_point(|&p| self.part(p) < stem);
        let hi = lo + self.parts[lo..].partition_point(|&p| self.part(p).starts_with(stem));
        if variants.len() + (hi - lo) > FRANCHISE_SCAN {
            return None;
        }
        let mut members: Vec<u32> = Vec::new();
        let mut numbered: Vec<(u32, u8)> = Vec::new();
        for &variant in &self.sorted[variants] {
            let name = &self.names[(variant / 2) as usize];
            let offset = if variant % 2 == 1 { name.core } else { 0 } as usize;
            let end = offset + stem.len();
            // Where the name's own number starts is a boundary too (`alien3` of *Alien³*).
            let numbered_here = name.number > 0 && name.stem_end as usize == end;
            if !numbered_here && !self.ends_word_at(name, end) {
                continue;
            }
            if numbered_here {
                if name.number == query.number {
                    return None;
                }
                numbered.push((name.item, name.number));
            }
            members.push(name.item);
        }
        for &(name_index, offset) in &self.parts[lo..hi] {
            let name = &self.names[name_index as usize];
            if self.ends_word_at(name, offset as usize + stem.len()) {
                members.push(name.item);
            }
        }
        members.sort_unstable();
        members.dedup();
        members.retain(|&item| self.items[item as usize].year.is_some());
        let best_known = members
            .iter()
            .map(|&item| self.items[item as usize].popularity)
            .max()?;
        // A title with its own number is a sequel however rarely rated.
        members.retain(|&item| {
            u64::from(self.items[item as usize].popularity) * u64::from(FRANCHISE_MIN_SHARE)
                >= u64::from(best_known)
                || numbered.iter().any(|&(i, _)| i == item)
        });
        members.sort_by_key(|&item| (self.items[item as usize].year, item));
        let numbered_elsewhere = numbered.iter().any(|&(item, number)| {
            members
                .iter()
                .position(|&m| m == item)
                .is_some_and(|p| p + 1 != usize::from(number))
        });
        if numbered_elsewhere {
            return None;
        }
        members.get(usize::from(query.number) - 1).copied()
    }

    /// Quality of one name for the query and how it matched: best over readings and forms
    /// (see the module docs).
    fn score_name(&self, name: &Name, readings: &[Reading], dp: &mut Vec<u32>) -> (f32, MatchKind) {
        let chars = self.name_chars(name);
        let core_offset = name.core as usize;
        let word_ends = self.name_word_ends(name);
        let info = &self.items[name.item as usize];
        let main = &chars[..name.main_len as usize];
        let mut best = (0.0f32, MatchKind::Loose);
        for reading in readings {
            let mut found = (0.0f32, MatchKind::Loose);
            for (form, pattern) in reading.forms.iter().zip(&reading.patterns) {
                let q = form.chars.as_slice();
                let offsets: &[usize] = if core_offset > 0 {
                    &[0, core_offset]
                } else {
                    &[0]
                };
                for &offset in offsets {
                    let n = &chars[offset..];
                    let quality = string_quality((q, pattern.whole.as_ref()), n, dp);
                    let kind = if quality >= 1.0 {
                        MatchKind::Exact
                    } else if quality == PREFIX_QUALITY && n.starts_with(q) {
                        if self.ends_word_at(name, offset + q.len()) {
                            MatchKind::Close
                        } else {
                            MatchKind::Loose
                        }
                    } else if quality >= CLOSE_TYPO_QUALITY {
                        MatchKind::Close
                    } else {
                        MatchKind::Loose
                    };
                    improve(&mut found, (quality, kind));
                }
                // The title before its subtitle counts as much as a whole title.
                if !main.is_empty() && (q == main || (core_offset > 0 && q == &main[core_offset..]))
                {
                    improve(&mut found, (1.0, MatchKind::Close));
                }
                if found.1 == MatchKind::Exact {
                    break;
                }
            }
            if found.0 < WORDS_QUALITY {
                for (form, pattern) in reading.forms.iter().zip(&reading.patterns) {
                    let quality = word_quality(form, &pattern.words, chars, word_ends, dp);
                    // Every word found, and more than one: close; else loose.
                    let kind = if quality >= WORDS_QUALITY - 1e-4 && form.ends.len() >= 2 {
                        MatchKind::Close
                    } else {
                        MatchKind::Loose
                    };
                    improve(&mut found, (quality, kind));
                }
            }
            let (mut quality, mut kind) = found;
            if reading.canonical || name.numbered {
                kind = kind.min(MatchKind::Close);
            }
            let year = year_factor(reading.year, info.year);
            quality *= year;
            if year < YEAR_SAME {
                kind = kind.min(if year > YEAR_OTHER {
                    MatchKind::Close
                } else {
                    MatchKind::Loose
                });
            }
            if let Some((number, digits)) = &reading.number {
                let carried = info.numbers & (1u128 << (*number).min(127)) != 0;
                if !carried && !chars.windows(digits.len()).any(|w| w == digits.as_slice()) {
                    quality *= NUMBER_MISSING_FACTOR;
                    kind = MatchKind::Loose;
                }
            }
            improve(&mut best, (quality, kind));
        }
        if name.alias {
            best.0 *= ALIAS_FACTOR;
        }
        best
    }
}

/// Keeps the better of two (quality, kind): higher quality, then the closer kind.
fn improve(best: &mut (f32, MatchKind), candidate: (f32, MatchKind)) {
    if candidate.0 > best.0 || (candidate.0 == best.0 && candidate.1 > best.1) {
        *best = candidate;
    }
}

/// Per-thread buffers reused across queries, so `search` takes `&self` and allocates little.
#[derive(Default)]
struct Scratch {
    /// Trigram score per name; all zero between queries.
    acc: Vec<u32>,
    /// Names with a non-zero score in `acc`.
    touched: Vec<u32>,
    /// Rows of the edit-distance table.
    dp: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stripped_articles_are_the_datas_articles_but_the_ordinary_words() {
        let got: Vec<String> = stripped_articles()
            .iter()
            .map(|a| a.iter().collect())
            .collect();
        let mut want = vec![
            "the", "a", "an", "le", "la", "les", "l", "il", "el", "los", "las", "das", "der",
            "gli", "het", "une", "una", "uno", "ein", "eine", "det",
        ];
        want.sort_unstable();
        assert_eq!(got, want);
    }
    use crate::data::title::{clean_title, CleanTitle};
    use std::collections::HashMap as StdHashMap;
    use std::sync::OnceLock;

    fn assert_send_sync<T: Send + Sync>() {}

    /// (item, quality) of a match, to compare with [`at`].
    trait Pair {
        fn pair(&self) -> (u32, f32);
    }
    impl Pair for TitleMatch {
        fn pair(&self) -> (u32, f32) {
            (self.item, self.quality)
        }
    }

    fn at(item: u32, quality: f32) -> (u32, f32) {
        (item, quality)
    }

    #[test]
    fn title_search_is_send_and_sync() {
        assert_send_sync::<TitleSearch>();
    }

    /// A small hand-made catalogue: (title, aliases, year, popularity).
    fn small() -> (Vec<CleanTitle>, Vec<u32>) {
        let raw = [
            ("Matrix, The (1999)", 278),
            ("Matrix Reloaded, The (2003)", 96),
            ("Animatrix, The (2003)", 20),
            ("Hamlet (1996)", 16),
            ("Hamlet (1990)", 5),
            ("Hamlet (2000)", 3),
            ("Hamlet 2 (2008)", 1),
            ("Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)", 120),
            ("Atalante, L' (1934)", 4),
            ("Die Hard (1988)", 145),
            ("Hard Target (1993)", 10),
            ("Dumb & Dumber (Dumb and Dumber) (1994)", 133),
            ("Babylon 5", 2),
            ("Twins (1988)", 7),
            ("Twins (1988)", 7),
        ];
        let titles = raw.iter().map(|(t, _)| clean_title(t)).collect();
        let popularity = raw.iter().map(|(_, p)| *p).collect();
        (titles, popularity)
    }

    fn build(titles: &[CleanTitle], popularity: &[u32]) -> TitleSearch {
        TitleSearch::build(titles.iter().zip(popularity).map(|(t, &p)| TitleEntry {
            title: &t.title,
            aliases: &t.aliases,
            year: t.year,
            popularity: p,
        }))
    }

    #[test]
    fn small_list_exact_article_and_prefix() {
        let (titles, pop) = small();
        let search = build(&titles, &pop);
        let top = |q: &str| search.search(q, 10);
        for q in [
            "matrix",
            "the matrix",
            "Matrix, The",
            "matrix the",
            "THE MATRIX!",
        ] {
            assert_eq!(top(q)[0].pair(), at(0, 1.0), "{q}");
        }
        // The other Matrix film is a prefix match; the Animatrix is not a match at all.
        let matrix = top("matrix");
        assert_eq!(matrix[1].pair(), at(1, PREFIX_QUALITY));
        assert!(matrix.iter().all(|m| m.item != 2));
        assert_eq!(top("animatrix")[0].item, 2);
        // L'Atalante with and without its elided article.
        for q in [
            "atalante",
            "l'atalante",
            "L’Atalante",
            "latalante",
            "l atalante",
        ] {
            assert_eq!(top(q)[0].pair(), at(8, 1.0), "{q}");
        }
        // "Die" is not stripped: "hard" is a prefix of Hard Target, a word of Die Hard.
        let hard = top("hard");
        assert_eq!(hard[0].pair(), at(10, PREFIX_QUALITY));
        assert_eq!(hard[1].pair(), at(9, WORDS_QUALITY));
        // A whole-word prefix is close; one word of a longer title, loose.
        assert_eq!(hard[0].kind, MatchKind::Close);
        assert_eq!(hard[1].kind, MatchKind::Loose);
        assert_eq!(top("matrix")[0].kind, MatchKind::Exact);
        // "&" reads as "and".
        assert_eq!(top("dumb and dumber")[0].pair(), at(11, 1.0));
        assert_eq!(top("dumb & dumber")[0].pair(), at(11, 1.0));
        assert_eq!(top("babylon 5")[0].pair(), at(12, 1.0));
    }

    #[test]
    fn small_list_years() {
        let (titles, pop) = small();
        let search = build(&titles, &pop);
        let top = |q: &str| search.search(q, 10);
        // Without a year the most popular Hamlet wins; all four exact matches score 1.
        let hamlet = top("hamlet");
        let items: Vec<u32> = hamlet.iter().map(|m| m.item).collect();
        assert_eq!(items, [3, 4, 5, 6]);
        assert!(hamlet[..3].iter().all(|m| m.quality == 1.0));
        assert_eq!(hamlet[3].quality, PREFIX_QUALITY);
        // With a year, that year's film.
        assert_eq!(top("hamlet 1990")[0].pair(), at(4, 1.0));
        assert_eq!(top("Hamlet (2000)")[0].pair(), at(5, 1.0));
        let hamlet_1996 = top("hamlet 1996");
        assert_eq!(hamlet_1996[0].pair(), at(3, 1.0));
        assert_eq!(hamlet_1996[1].quality, YEAR_OTHER);
        // One year off is closer than further off.
        let hamlet_1991 = top("hamlet 1991");
        assert_eq!(hamlet_1991[0].pair(), at(4, YEAR_OFF_BY_ONE));
        // A year for a movie without one, and a year that is part of a title.
        assert_eq!(top("babylon 5 1994")[0].pair(), at(12, YEAR_UNKNOWN));
        assert_eq!(top("hamlet 2")[0].pair(), at(6, 1.0));
    }

    #[test]
    fn small_list_aliases_diacritics_and_ties() {
        let (titles, pop) = small();
        let search = build(&titles, &pop);
        let top = |q: &str| search.search(q, 10);
        for q in ["amelie", "Amélie", "AMÉLIE", "ame\u{301}lie"] {
            assert_eq!(top(q)[0].pair(), at(7, 1.0), "{q}");
        }
        // Through the alias, a little below a title match.
        assert_eq!(
            top("le fabuleux destin d'amélie poulain")[0].pair(),
            at(7, ALIAS_FACTOR)
        );
        assert_eq!(top("fabuleux destin")[0].item, 7);
        assert!((top("fabuleux destin")[0].quality - PREFIX_QUALITY * ALIAS_FACTOR).abs() < 1e-3);
        // Equal quality and popularity: lower item first.
        let twins = top("twins");
        assert_eq!(twins.len(), 2);
        assert_eq!((twins[0].item, twins[1].item), (13, 14));
        // limit
        assert_eq!(search.search("hamlet", 2).len(), 2);
        assert!(search.search("hamlet", 0).is_empty());
    }

    #[test]
    fn empty_and_garbage_queries_find_nothing() {
        let (titles, pop) = small();
        let search = build(&titles, &pop);
        for q in [
            "", "   ", "\t\n", "!!!", "(", "()", "'", "xqzwv", "zzzzzzzz", "q",
        ] {
            assert!(search.search(q, 10).is_empty(), "{q:?}");
        }
        let empty = TitleSearch::build(std::iter::empty());
        assert!(empty.search("matrix", 10).is_empty());
    }

    #[test]
    fn names_that_normalise_to_nothing_are_skipped() {
        let aliases = vec!["???".to_string(), "Foo".to_string()];
        let entries = [
            TitleEntry {
                title: "...",
                aliases: &aliases,
                year: None,
                popularity: 1,
            },
            TitleEntry {
                title: "",
                aliases: &[],
                year: Some(2000),
                popularity: 1,
            },
        ];
        let search = TitleSearch::build(entries);
        assert_eq!(
            search
                .search("foo", 5)
                .iter()
                .map(Pair::pair)
                .collect::<Vec<_>>(),
            [at(0, ALIAS_FACTOR)]
        );
        assert!(search.search("...", 5).is_empty());
    }

    #[test]
    fn normalisation() {
        let n = |s: &str| {
            let n = normalise(s);
            let words: Vec<String> = n.words().map(|w| w.iter().collect()).collect();
            words.join(" ")
        };
        assert_eq!(n("  Amélie  "), "amelie");
        assert_eq!(n("Schindler's List"), "schindlers list");
        assert_eq!(n("L'Auberge espagnole"), "l auberge espagnole");
        assert_eq!(n("De l'autre côté"), "de lautre cote");
        assert_eq!(
            n("Star Wars: Episode IV - A New Hope"),
            "star wars episode iv a new hope"
        );
        assert_eq!(n("Ærø Straße"), "aero strasse");
        assert_eq!(n("8½"), "812");
        assert_eq!(n("8 1/2"), "8 1 2");
        assert_eq!(n("M.I.B.³"), "m i b 3");
        assert_eq!(n("Tom & Jerry"), "tom and jerry");
        assert_eq!(n("東京物語"), "東京物語");
        assert_eq!(n("Брат"), "брат");
        assert_eq!(n("İstanbul"), "istanbul");
        assert_eq!(n("?!"), "");
        assert_eq!(normalise(&"a".repeat(1000)).chars.len(), MAX_CHARS);
    }

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
        }
    }

    #[test]
    fn osa_distances_agree_with_strsim() {
        let mut rng = Rng(42);
        let mut dp = Vec::new();
        for _ in 0..3000 {
            let word = |rng: &mut Rng| -> String {
                (0..rng.below(9))
                    .map(|_| b"abcde"[rng.below(5)] as char)
                    .collect()
            };
            let (a, b) = (word(&mut rng), word(&mut rng));
            let ac: Vec<char> = a.chars().collect();
            let bc: Vec<char> = b.chars().collect();
            let exact_full = strsim::osa_distance(&a, &b) as u32;
            let exact_prefix = (0..=b.len())
                .map(|j| strsim::osa_distance(&a, &b[..j]) as u32)
                .min()
                .unwrap();
            for limit in 0..10 {
                let (full, prefix) = osa_distances(&ac, &bc, limit, &mut dp);
                let expect = |exact: u32| if exact <= limit { exact } else { limit + 1 };
                assert_eq!(full.min(limit + 1), expect(exact_full), "{a} {b} {limit}");
                assert!(full == exact_full || full > limit, "{a} {b} {limit}");
                assert_eq!(
                    prefix.min(limit + 1),
                    expect(exact_prefix),
                    "{a} {b} {limit}"
                );
            }
        }
    }

    #[test]
    fn bit_parallel_distances_agree_with_the_table() {
        let mut rng = Rng(43);
        let mut dp = Vec::new();
        for round in 0..20_000 {
            // Small alphabets make many repeats and swaps; some non-ASCII letters; up to 64.
            let alphabet: &[char] = if round % 3 == 0 {
                &['a', 'b', 'é', '東']
            } else {
                &['a', 'b', 'c', 'd', 'e', '1']
            };
            let max = if round % 10 == 0 { 65 } else { 12 };
            let word = |rng: &mut Rng| -> Vec<char> {
                (0..rng.below(max))
                    .map(|_| alphabet[rng.below(alphabet.len())])
                    .collect()
            };
            let (a, b) = (word(&mut rng), word(&mut rng));
            let Some(pattern) = Pattern::new(&a) else {
                assert!(a.is_empty() || a.len() > 64);
                continue;
            };
            let limit = (a.len().max(b.len()) + 1) as u32;
            assert_eq!(
                pattern.distances(&b),
                osa_distances(&a, &b, limit, &mut dp),
                "{a:?} {b:?}"
            );
        }
    }

    #[test]
    fn random_queries_never_panic_and_stay_ordered() {
        let (titles, pop) = small();
        let search = build(&titles, &pop);
        const PIECES: &[&str] = &[
            "the", "matrix", "ham", "let", " ", "  ", ",", "(", ")", "1996", "199", "é", "\u{301}",
            "'", "l'", "&", "東", "x", "a", "2", "!", "amelie", "ı", "İ",
        ];
        let mut rng = Rng(7);
        for _ in 0..5000 {
            let len = rng.below(8);
            let query: String = (0..len).map(|_| PIECES[rng.below(PIECES.len())]).collect();
            let results = search.search(&query, 1 + rng.below(5));
            for pair in results.windows(2) {
                assert!(pair[0].quality >= pair[1].quality, "{query:?}");
            }
            for m in &results {
                assert!((MIN_QUALITY..=1.0).contains(&m.quality), "{query:?}");
                assert!((m.item as usize) < titles.len());
            }
        }
    }

    /// The bundled MovieLens sample: cleaned titles, popularity (number of ratings), ids.
    struct MovieLens {
        titles: Vec<CleanTitle>,
        popularity: Vec<u32>,
        search: TitleSearch,
    }

    fn movielens() -> &'static MovieLens {
        static DATA: OnceLock<MovieLens> = OnceLock::new();
        DATA.get_or_init(|| {
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/ml-latest-small");
            let mut ratings =
                csv::Reader::from_path(format!("{dir}/ratings.csv")).expect("ratings.csv");
            let mut counts: StdHashMap<u32, u32> = StdHashMap::new();
            for record in ratings.records() {
                let record = record.expect("ratings.csv record");
                *counts
                    .entry(record[1].parse().expect("movieId"))
                    .or_default() += 1;
            }
            let mut movies =
                csv::Reader::from_path(format!("{dir}/movies.csv")).expect("movies.csv");
            let mut titles = Vec::new();
            let mut popularity = Vec::new();
            for record in movies.records() {
                let record = record.expect("movies.csv record");
                let id: u32 = record[0].parse().expect("movieId");
                titles.push(clean_title(&record[1]));
                popularity.push(counts.get(&id).copied().unwrap_or(0));
            }
            let search = build(&titles, &popularity);
            MovieLens {
                titles,
                popularity,
                search,
            }
        })
    }

    /// "Title (year)" of the results.
    fn found(query: &str, limit: usize) -> Vec<String> {
        let ml = movielens();
        ml.search
            .search(query, limit)
            .iter()
            .map(|m| {
                let t = &ml.titles[m.item as usize];
                match t.year {
                    Some(y) => format!("{} ({y})", t.title),
                    None => t.title.clone(),
                }
            })
            .collect()
    }

    fn first(query: &str) -> String {
        found(query, 1).into_iter().next().unwrap_or_default()
    }

    #[test]
    fn movielens_case_punctuation_diacritics_whitespace() {
        assert_eq!(first("amelie"), "Amelie (2001)");
        assert_eq!(first("Amélie"), "Amelie (2001)");
        assert_eq!(first("AMELIE!"), "Amelie (2001)");
        assert_eq!(
            first("leon the professional"),
            "Léon: The Professional (1994)"
        );
        assert_eq!(first("  toy    story "), "Toy Story (1995)");
        assert_eq!(first("toystory"), "Toy Story (1995)");
        assert_eq!(first("the god father"), "The Godfather (1972)");
        assert_eq!(first("schindlers list"), "Schindler's List (1993)");
        assert_eq!(first("Schindler’s List"), "Schindler's List (1993)");
        assert_eq!(first("wall-e"), "WALL·E (2008)");
        assert_eq!(first("walle"), "WALL·E (2008)");
    }

    #[test]
    fn movielens_typos() {
        assert_eq!(first("toy stroy"), "Toy Story (1995)");
        assert_eq!(first("godfahter"), "The Godfather (1972)");
        assert_eq!(first("the godfahter"), "The Godfather (1972)");
        assert_eq!(
            first("shawshank redemtion"),
            "The Shawshank Redemption (1994)"
        );
        assert_eq!(first("shawshank"), "The Shawshank Redemption (1994)");
        // A swap, a dropped letter, an extra letter, a wrong letter.
        assert_eq!(first("the matirx"), "The Matrix (1999)");
        assert_eq!(first("godfther"), "The Godfather (1972)");
        assert_eq!(first("godfatther"), "The Godfather (1972)");
        assert_eq!(first("pulp fictoin"), "Pulp Fiction (1994)");
        assert_eq!(first("forest gump"), "Forrest Gump (1994)");
        assert_eq!(
            first("silense of the lambs"),
            "The Silence of the Lambs (1991)"
        );
        assert_eq!(first("amlie"), "Amelie (2001)");
        assert_eq!(first("jurasic park"), "Jurassic Park (1993)");
        assert_eq!(first("terminater 2"), "Terminator 2: Judgment Day (1991)");
    }

    #[test]
    fn movielens_articles() {
        let ml = movielens();
        for q in ["matrix", "the matrix", "matrix, the", "Matrix, The"] {
            let results = ml.search.search(q, 5);
            assert_eq!(first(q), "The Matrix (1999)", "{q}");
            assert_eq!(results[0].quality, 1.0, "{q}");
            // The sequels follow as prefix matches, most-rated first.
            assert_eq!(
                found(q, 3)[1..],
                [
                    "The Matrix Reloaded (2003)",
                    "The Matrix Revolutions (2003)"
                ],
                "{q}"
            );
        }
        assert_eq!(first("godfather"), "The Godfather (1972)");
        assert_eq!(first("das boot"), "Das Boot (1981)");
        assert_eq!(first("boot"), "Das Boot (1981)");
        assert_eq!(first("atalante"), "L'Atalante (1934)");
        assert_eq!(first("vitelloni"), "I Vitelloni (1953)");
    }

    #[test]
    fn movielens_years() {
        let ml = movielens();
        assert_eq!(first("hamlet 1996"), "Hamlet (1996)");
        assert_eq!(first("hamlet (1990)"), "Hamlet (1990)");
        assert_eq!(first("Hamlet (2000)"), "Hamlet (2000)");
        assert_eq!(first("hamlet"), "Hamlet (1996)");
        // All five Hamlets are exact matches before Hamlet 2.
        let hamlets = ml.search.search("hamlet", 10);
        assert!(hamlets[..5].iter().all(|m| m.quality == 1.0));
        assert_eq!(found("hamlet", 6)[5], "Hamlet 2 (2008)");
        let with_year = ml.search.search("hamlet 1990", 10);
        assert_eq!(with_year[0].quality, 1.0);
        assert!(with_year[1].quality < 1.0);
        // A year that is part of the title.
        assert_eq!(first("blade runner 2049"), "Blade Runner 2049 (2017)");
        assert_eq!(first("blade runner"), "Blade Runner (1982)");
        assert_eq!(first("blade runner 1982"), "Blade Runner (1982)");
        assert_eq!(
            first("2001 a space odyssey"),
            "2001: A Space Odyssey (1968)"
        );
        assert_eq!(first("toy story 1995"), "Toy Story (1995)");
        assert_eq!(first("toy story 2"), "Toy Story 2 (1999)");
        assert_eq!(first("godfahter 1972"), "The Godfather (1972)");
    }

    #[test]
    fn movielens_aliases() {
        // The alias ranks just below the film that has it as its title.
        assert_eq!(
            found("the professional", 2),
            ["The Professional (1981)", "Léon: The Professional (1994)"]
        );
        assert_eq!(first("leon"), "Léon: The Professional (1994)");
        assert_eq!(first("auberge espagnole"), "The Spanish Apartment (2002)");
        assert_eq!(
            first("cite des enfants perdus"),
            "The City of Lost Children (1995)"
        );
        assert_eq!(
            first("La Cité des enfants perdus"),
            "The City of Lost Children (1995)"
        );
        assert_eq!(
            first("yao a yao yao dao waipo qiao"),
            "Shanghai Triad (1995)"
        );
        assert_eq!(first("se7en"), "Seven (1995)");
        assert_eq!(first("fabuleux destin d'amelie poulain"), "Amelie (2001)");
        assert_eq!(first("himmel uber berlin"), "Wings of Desire (1987)");
        assert_eq!(first("ringu"), "Ringu (1998)");
    }

    #[test]
    fn movielens_prefixes_as_you_type() {
        let ml = movielens();
        assert_eq!(
            found("toy st", 3),
            [
                "Toy Story (1995)",
                "Toy Story 2 (1999)",
                "Toy Story 3 (2010)"
            ]
        );
        assert_eq!(first("shaws"), "The Shawshank Redemption (1994)");
        assert_eq!(first("pulp f"), "Pulp Fiction (1994)");
        // Every Star Wars film whose title starts with it, most-rated first.
        let star_wars = ml.search.search("star wars", 20);
        let titles = found("star wars", 20);
        let prefixed = titles
            .iter()
            .take_while(|t| t.contains("Star Wars"))
            .count();
        assert!(prefixed >= 10, "{titles:?}");
        assert_eq!(titles[0], "Star Wars: Episode IV - A New Hope (1977)");
        assert_eq!(
            titles[1],
            "Star Wars: Episode V - The Empire Strikes Back (1980)"
        );
        for pair in star_wars[..prefixed].windows(2) {
            let (a, b) = (pair[0].item as usize, pair[1].item as usize);
            assert!(ml.popularity[a] >= ml.popularity[b] || pair[0].quality > pair[1].quality);
        }
        // Films with "Star Wars" later in the title follow.
        assert!(titles.contains(&"Rogue One: A Star Wars Story (2016)".to_string()));
    }

    #[test]
    fn movielens_garbage_and_empty() {
        let ml = movielens();
        assert!(ml.search.search("", 10).is_empty());
        assert!(ml.search.search("   ", 10).is_empty());
        assert!(ml.search.search("xqzwv", 10).is_empty());
        assert!(ml.search.search("qwxzjvk bnmzq", 10).is_empty());
        // Random letter strings rarely match anything.
        let mut rng = Rng(2024);
        let mut with_results = 0;
        for _ in 0..300 {
            let len = 5 + rng.below(6);
            let query: String = (0..len)
                .map(|_| (b'a' + rng.below(26) as u8) as char)
                .collect();
            with_results += usize::from(!ml.search.search(&query, 10).is_empty());
        }
        assert!(with_results <= 15, "{with_results}");
    }

    #[test]
    fn movielens_results_are_ordered() {
        let ml = movielens();
        for q in [
            "the",
            "love",
            "star",
            "hamlet 1996",
            "godfahter",
            "a",
            "toy st",
        ] {
            let results = ml.search.search(q, 50);
            assert!(!results.is_empty(), "{q}");
            for pair in results.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                let (pa, pb) = (
                    ml.popularity[a.item as usize],
                    ml.popularity[b.item as usize],
                );
                let ordered = a.quality > b.quality
                    || (a.quality == b.quality && (pa > pb || (pa == pb && a.item < b.item)));
                assert!(ordered, "{q}: {a:?} {b:?}");
            }
        }
    }

    /// 86,537 titles, the size of the full MovieLens release: the real ones plus made-up ones
    /// drawn from the real titles' words.
    fn synthetic_full_size() -> (Vec<CleanTitle>, Vec<u32>) {
        let ml = movielens();
        let mut titles = ml.titles.clone();
        let mut popularity = ml.popularity.clone();
        let vocabulary: Vec<&str> = ml
            .titles
            .iter()
            .flat_map(|t| t.title.split_whitespace())
            .collect();
        let mut rng = Rng(86_537);
        while titles.len() < 86_537 {
            let words = 1 + rng.below(5);
            let title: Vec<&str> = (0..words)
                .map(|_| vocabulary[rng.below(vocabulary.len())])
                .collect();
            let aliases = if rng.below(10) == 0 {
                vec![vocabulary[rng.below(vocabulary.len())].to_string()]
            } else {
                Vec::new()
            };
            titles.push(CleanTitle {
                title: title.join(" "),
                aliases,
                year: Some(1900 + rng.below(125) as u16),
            });
            popularity.push(if rng.below(2) == 0 {
                0
            } else {
                rng.below(50) as u32
            });
        }
        (titles, popularity)
    }

    #[test]
    fn works_at_full_movielens_size() {
        let (titles, popularity) = synthetic_full_size();
        let search = build(&titles, &popularity);
        let first = |q: &str| {
            let m = search.search(q, 1);
            let t = &titles[m[0].item as usize];
            format!("{} ({})", t.title, t.year.unwrap_or(0))
        };
        assert_eq!(first("godfahter"), "The Godfather (1972)");
        assert_eq!(first("matrix"), "The Matrix (1999)");
        assert_eq!(first("hamlet 1990"), "Hamlet (1990)");
        assert_eq!(first("toy st"), "Toy Story (1995)");
        assert_eq!(
            first("star wars"),
            "Star Wars: Episode IV - A New Hope (1977)"
        );
        assert!(search.search("xqzwv", 10).is_empty());
    }

    /// `cargo test --release -- --ignored --nocapture timing` prints build and query times.
    #[test]
    #[ignore = "timing; run in release with --nocapture"]
    fn timing_at_full_movielens_size() {
        use std::time::Instant;
        const QUERIES: &[&str] = &[
            "toy stroy",
            "godfahter",
            "shawshank redemtion",
            "matrix",
            "the matrix",
            "hamlet 1996",
            "hamlet (1990)",
            "toy st",
            "star wars",
            "amelie",
            "xqzwv",
            "the",
            "a",
            "love",
            "lord of the rings",
            "cite des enfants perdus",
            "blade runner 2049",
            "s",
            "the man who",
            "pulp fictoin",
            "die hard 3",
            "star wars episode v",
            "godfather part ii",
            "x-men 2",
            "shrek three",
        ];
        let ml = movielens();
        let (titles, popularity) = synthetic_full_size();
        for (label, titles, popularity) in [
            ("9,742", &ml.titles, &ml.popularity),
            ("86,537", &titles, &popularity),
        ] {
            let mut builds: Vec<_> = (0..5)
                .map(|_| {
                    let started = Instant::now();
                    std::hint::black_box(build(titles, popularity));
                    started.elapsed()
                })
                .collect();
            builds.sort();
            let search = build(titles, popularity);
            // Medians over rounds, as other processes share the machine.
            let rounds = 101;
            let medians: Vec<_> = QUERIES
                .iter()
                .map(|q| {
                    let mut times: Vec<_> = (0..rounds)
                        .map(|_| {
                            let started = Instant::now();
                            std::hint::black_box(search.search(q, 10));
                            started.elapsed()
                        })
                        .collect();
                    times.sort();
                    times[rounds / 2]
                })
                .collect();
            let mean = medians.iter().sum::<std::time::Duration>() / medians.len() as u32;
            let worst = medians.iter().max().copied().unwrap_or_default();
            println!(
                "{label} titles: build {:?} (median of 5), query median mean {mean:?}, slowest query median {worst:?}",
                builds[2]
            );
            for (q, t) in QUERIES.iter().zip(&medians) {
                println!("  {q:?}: {t:?}");
            }
        }
    }
}
