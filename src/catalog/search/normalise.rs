//! Normalising titles and queries for matching: case and accents folded, punctuation dropped,
//! words and their ends recorded, leading and trailing articles found, and the trigram keys the
//! candidate index is built from.

use super::*;

/// Hasher for trigram keys, which are already well spread integers.
#[derive(Default)]
pub(super) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, key: u64) {
        self.0 = (self.0 ^ key).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 ^= self.0 >> 29;
    }
}

/// A normalised string: compact characters, the end offset of each word, and where a new part
/// of it begins (after `:`, `;` or a dash between spaces: `Star Wars: Episode V - The Empire
/// Strikes Back` has three parts).
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Normalised {
    pub(super) chars: Vec<char>,
    pub(super) ends: Vec<u32>,
    /// Index of each word that begins a new part (never 0).
    pub(super) breaks: Vec<u32>,
}

impl Normalised {
    pub(super) fn words(&self) -> impl Iterator<Item = &[char]> {
        words(&self.chars, &self.ends)
    }
}

/// The words of a compact form given its word ends.
pub(super) fn words<'s>(chars: &'s [char], ends: &'s [u32]) -> impl Iterator<Item = &'s [char]> {
    let mut start = 0usize;
    ends.iter().map(move |&end| {
        let word = &chars[start..end as usize];
        start = end as usize;
        word
    })
}

/// Lower-cases, folds diacritics and splits into words (see the module docs).
pub(super) fn normalise(text: &str) -> Normalised {
    let mut out = Normalised::default();
    normalise_into(text, &mut out);
    out
}

/// [`normalise`] into a reused buffer.
pub(super) fn normalise_into(text: &str, out: &mut Normalised) {
    out.chars.clear();
    out.ends.clear();
    out.breaks.clear();
    let mut after_space = false;
    for c in text.chars() {
        let part_break = matches!(c, ':' | ';' | '–' | '—') || (c == '-' && after_space);
        after_space = c.is_whitespace();
        if part_break {
            end_word(out);
            let next = out.ends.len() as u32;
            if next > 0 && out.breaks.last() != Some(&next) {
                out.breaks.push(next);
            }
            continue;
        }
        if c.is_ascii() {
            push_normalised(out, c.to_ascii_lowercase());
        } else {
            for c in c.to_lowercase() {
                push_normalised(out, c);
            }
        }
        if out.chars.len() >= MAX_CHARS {
            break;
        }
    }
    end_word(out);
}

/// Appends one lower-case character to a normalised string.
pub(super) fn push_normalised(out: &mut Normalised, c: char) {
    if c.is_ascii_alphanumeric() {
        out.chars.push(c);
    } else if matches!(c, '\'' | '’' | '‘' | '`' | '´' | 'ʼ' | 'ʻ') {
        // "l'auberge" -> "l" "auberge", so the article can be stripped; else joined.
        if out.ends.is_empty() && out.chars == ['l'] {
            end_word(out);
        }
    } else if c == '&' {
        end_word(out);
        out.chars.extend(['a', 'n', 'd']);
        end_word(out);
    } else if ('\u{300}'..='\u{36f}').contains(&c) {
        // Combining accent: dropped.
    } else if let Some(folded) = fold(c) {
        out.chars.extend(folded.chars());
    } else if c.is_alphanumeric() {
        out.chars.push(c);
    } else {
        end_word(out);
    }
}

/// Ends the current word, if it has any characters.
pub(super) fn end_word(out: &mut Normalised) {
    let start = out.ends.last().copied().unwrap_or(0) as usize;
    if out.chars.len() > start {
        out.ends.push(out.chars.len() as u32);
    }
}

/// Latin letters with diacritics (Latin-1 Supplement, Latin Extended-A and a few more) and
/// a few digit-like signs, in lower case, to their plain ASCII spelling.
pub(super) fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' | 'ǎ' | 'ª' => "a",
        'æ' | 'ǽ' => "ae",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' | 'ǐ' => "i",
        'ĳ' => "ij",
        'ĵ' => "j",
        'ķ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' | 'ŉ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' | 'ǒ' | 'º' => "o",
        'œ' => "oe",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => "s",
        'ß' => "ss",
        'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' | 'ǔ' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        'þ' => "th",
        '¹' => "1",
        '²' => "2",
        '³' => "3",
        '½' => "12",
        '¼' => "14",
        '¾' => "34",
        _ => return None,
    })
}

/// How a name is stored besides its text.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct NameSpec {
    pub(super) alias: bool,
    pub(super) numbered: bool,
    pub(super) number: u8,
    pub(super) stem_end: u32,
    pub(super) main_len: u32,
}

/// See [`Name::main_len`].
pub(super) fn main_part_len(name: &Normalised) -> u32 {
    let Some(&part) = name.breaks.first() else {
        return 0;
    };
    let part = part as usize;
    if part == 0 || part >= name.ends.len() {
        return 0;
    }
    let article = usize::from(is_article(&name.chars[..name.ends[0] as usize]));
    if part - article >= 2 {
        name.ends[part - 1]
    } else {
        0
    }
}

/// Offset where a name's compact form continues after a leading article, or 0.
pub(super) fn article_end(chars: &[char], ends: &[u32]) -> usize {
    if ends.len() < 2 {
        return 0;
    }
    let first = &chars[..ends[0] as usize];
    if stripped_articles().iter().any(|a| a.as_slice() == first) {
        ends[0] as usize
    } else {
        0
    }
}

/// Whether a word is one of the articles a search strips ([`stripped_articles`]).
pub(super) fn is_article(word: &[char]) -> bool {
    stripped_articles().iter().any(|a| a.as_slice() == word)
}

/// Symbols with a fixed trigram id: the start marker `'\0'`, digits and ASCII letters.
pub(super) const TRIGRAM_SYMBOLS: u32 = 37;
/// Number of trigrams of [`TRIGRAM_SYMBOLS`].
pub(super) const ASCII_TRIGRAMS: u32 = TRIGRAM_SYMBOLS * TRIGRAM_SYMBOLS * TRIGRAM_SYMBOLS;

/// The fixed id of a trigram key made only of [`TRIGRAM_SYMBOLS`].
pub(super) fn ascii_trigram_id(key: u64) -> Option<u32> {
    let symbol = |code: u64| match char::from_u32(code as u32)? {
        '\0' => Some(0),
        c @ '0'..='9' => Some(1 + c as u32 - '0' as u32),
        c @ 'a'..='z' => Some(11 + c as u32 - 'a' as u32),
        _ => None,
    };
    let mask = (1u64 << 21) - 1;
    let a = symbol(key >> 42)?;
    let b = symbol((key >> 21) & mask)?;
    let c = symbol(key & mask)?;
    Some((a * TRIGRAM_SYMBOLS + b) * TRIGRAM_SYMBOLS + c)
}

/// Trigram keys of `chars[start..]`'s beginning (marked with `'\0'`) and of all of `chars`.
/// Only the beginning trigram is taken when `start > 0` (the rest is already there).
pub(super) fn trigram_keys(chars: &[char], start: usize, keys: &mut Vec<u64>) {
    let key = |a: char, b: char, c: char| (a as u64) << 42 | (b as u64) << 21 | c as u64;
    let tail = &chars[start..];
    if let Some(&first) = tail.first() {
        keys.push(key('\0', first, tail.get(1).copied().unwrap_or('\0')));
    }
    if start == 0 {
        keys.extend(chars.windows(3).map(|w| key(w[0], w[1], w[2])));
    }
}
