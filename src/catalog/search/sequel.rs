//! Sequel and part numbers: the one number a title or query carries in a sequel position, and
//! the same text with that number written one way (`the godfather part ii` → `the godfather 2`,
//! `star wars episode v a new hope` → `star wars 5 a new hope`, `shrek the third` → `shrek 3`).
//!
//! Titles and queries are read by the same rules, so a title and the same words typed agree:
//! - a number after a marker word (`part`, `pt`, `chapter`, `episode`, `ep`, `vol`, `volume`):
//!   arabic, roman, a number word or an ordinal; the marker is dropped;
//! - an arabic number 1–99, or a roman numeral of two or more letters up to XXXIX, anywhere but
//!   first (`die hard 2`, `police academy 2 their first assignment`, `rocky ii`);
//! - at the end of the title or of a part of it (before `:` or ` - `): a one-letter roman
//!   numeral, a number word up to `twenty`, or an ordinal (`rocky v`, `oceans eleven`,
//!   `shrek the third`, where `the` is dropped too);
//! - digits glued to the end of a word are read apart (`x2` → `x 2`, `Alien³` → `alien 3`).
//!
//! The first word (after a leading article) is never the number, so `12 Angry Men`, `Seven`,
//! `I, Robot`, `2001: A Space Odyssey` and `The 39 Steps` carry none; numbers above 99
//! (`Blade Runner 2049`, years) are names, not sequel numbers.

use super::is_article;

/// The sequel number of a normalised text and its canonical form.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Sequel {
    /// The number, 1–99.
    pub number: u8,
    /// The canonical compact form: the number in arabic digits, marker words dropped.
    pub chars: Vec<char>,
    /// Word ends of `chars`.
    pub ends: Vec<u32>,
    /// Where the number starts in `chars`: what comes before is the stem (`the godfather`).
    pub stem_end: u32,
    /// Number of words of the stem.
    pub stem_words: u32,
}

/// Words that announce a number (`Part II`, `Episode V`, `Vol. 2`).
const MARKERS: &[&str] = &["part", "pt", "chapter", "episode", "ep", "vol", "volume"];
const NUMBER_WORDS: &[&str] = &[
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];
const ORDINAL_WORDS: &[&str] = &[
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
    "twentieth",
];
const ROMAN_ONES: &[&str] = &["", "i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix"];
const ROMAN_TENS: &[&str] = &["", "x", "xx", "xxx"];

struct Token<'a> {
    text: &'a [char],
    /// Last word of the text or of a part of it.
    ends_part: bool,
}

/// Reads the sequel number of a normalised text (`ends`: word ends; `breaks`: indices of the
/// words that begin a new part, after `:` or ` - `). `None` when it carries none.
pub(super) fn read(chars: &[char], ends: &[u32], breaks: &[u32]) -> Option<Sequel> {
    let mut tokens: Vec<Token> = Vec::with_capacity(ends.len() + 1);
    let mut start = 0usize;
    for (index, &end) in ends.iter().enumerate() {
        let word = &chars[start..end as usize];
        start = end as usize;
        let ends_part = index + 1 == ends.len() || breaks.contains(&(index as u32 + 1));
        match glued_digits(word) {
            Some(split) => {
                tokens.push(Token {
                    text: &word[..split],
                    ends_part: false,
                });
                tokens.push(Token {
                    text: &word[split..],
                    ends_part,
                });
            }
            None => tokens.push(Token {
                text: word,
                ends_part,
            }),
        }
    }
    // The stem keeps at least one word besides a leading article.
    let first = usize::from(tokens.len() > 1 && is_article(tokens[0].text));
    for i in first + 1..tokens.len() {
        let token = &tokens[i];
        let text = token.text;
        let after_marker = i >= first + 2 && is_one_of(tokens[i - 1].text, MARKERS);
        let value = after_marker
            .then(|| any_number(text))
            .flatten()
            .or_else(|| arabic(text))
            .or_else(|| roman(text).filter(|_| text.len() >= 2))
            .or_else(|| {
                token
                    .ends_part
                    .then(|| {
                        roman(text)
                            .or_else(|| number_word(text))
                            .or_else(|| ordinal(text))
                    })
                    .flatten()
            });
        let Some(number) = value else {
            continue;
        };
        let drop_before = after_marker
            || (ordinal(text).is_some() && i >= first + 2 && tokens[i - 1].text == ['t', 'h', 'e']);
        let stem = &tokens[..i - usize::from(drop_before)];
        let mut sequel = Sequel {
            number,
            chars: Vec::with_capacity(chars.len()),
            ends: Vec::with_capacity(tokens.len()),
            stem_end: 0,
            stem_words: stem.len() as u32,
        };
        let push = |sequel: &mut Sequel, word: &mut dyn Iterator<Item = char>| {
            sequel.chars.extend(word);
            sequel.ends.push(sequel.chars.len() as u32);
        };
        for t in stem {
            push(&mut sequel, &mut t.text.iter().copied());
        }
        sequel.stem_end = sequel.chars.len() as u32;
        push(&mut sequel, &mut number.to_string().chars());
        for t in &tokens[i + 1..] {
            push(&mut sequel, &mut t.text.iter().copied());
        }
        return Some(sequel);
    }
    None
}

fn is_one_of(word: &[char], list: &[&str]) -> bool {
    list.iter().any(|w| w.chars().eq(word.iter().copied()))
}

fn position_in(word: &[char], list: &[&str]) -> Option<u8> {
    list.iter()
        .position(|w| w.chars().eq(word.iter().copied()))
        .map(|p| p as u8 + 1)
}

/// `Some(n)` for an arabic number 1–99 of one or two digits.
fn arabic(word: &[char]) -> Option<u8> {
    if word.is_empty() || word.len() > 2 || !word.iter().all(char::is_ascii_digit) {
        return None;
    }
    let value = word.iter().fold(0u8, |n, &d| n * 10 + (d as u8 - b'0'));
    (value > 0).then_some(value)
}

/// A roman numeral in canonical form, 1–39.
fn roman(word: &[char]) -> Option<u8> {
    if word.is_empty() || word.len() > 7 {
        return None;
    }
    for (tens, t) in ROMAN_TENS.iter().enumerate() {
        let Some(rest) = strip(word, t) else {
            continue;
        };
        if let Some(ones) = ROMAN_ONES
            .iter()
            .position(|o| o.chars().eq(rest.iter().copied()))
        {
            let value = (10 * tens + ones) as u8;
            if value > 0 {
                return Some(value);
            }
        }
    }
    None
}

fn strip<'w>(word: &'w [char], prefix: &str) -> Option<&'w [char]> {
    let n = prefix.chars().count();
    (word.len() >= n && prefix.chars().eq(word[..n].iter().copied())).then(|| &word[n..])
}

fn number_word(word: &[char]) -> Option<u8> {
    position_in(word, NUMBER_WORDS)
}

/// `third`, `3rd`, `13th`.
fn ordinal(word: &[char]) -> Option<u8> {
    if let Some(value) = position_in(word, ORDINAL_WORDS) {
        return Some(value);
    }
    let digits = word.iter().take_while(|c| c.is_ascii_digit()).count();
    let suffix = &word[digits..];
    if digits > 0 && is_one_of(suffix, &["st", "nd", "rd", "th"]) {
        return arabic(&word[..digits]);
    }
    None
}

fn any_number(word: &[char]) -> Option<u8> {
    arabic(word)
        .or_else(|| roman(word))
        .or_else(|| number_word(word))
        .or_else(|| ordinal(word))
}

/// Where one or two digits (1–99) glued to the end of a word of letters begin (`x2`, `alien3`).
fn glued_digits(word: &[char]) -> Option<usize> {
    let digits = word.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    let split = word.len().checked_sub(digits)?;
    if !(1..=2).contains(&digits) || split == 0 || arabic(&word[split..]).is_none() {
        return None;
    }
    word[..split]
        .iter()
        .all(|c| c.is_alphabetic())
        .then_some(split)
}

#[cfg(test)]
mod tests {
    use super::super::normalise;
    use super::*;

    /// The canonical form and number of a text, `-` when it carries none.
    fn canonical(text: &str) -> String {
        let n = normalise(text);
        match read(&n.chars, &n.ends, &n.breaks) {
            Some(s) => {
                let mut words = Vec::new();
                let mut start = 0;
                for &end in &s.ends {
                    words.push(s.chars[start..end as usize].iter().collect::<String>());
                    start = end as usize;
                }
                let stem: String = s.chars[..s.stem_end as usize].iter().collect();
                format!("{} [{}] {stem}", words.join(" "), s.number)
            }
            None => "-".to_string(),
        }
    }

    #[test]
    fn sequel_numbers_in_every_form() {
        for (text, expected) in [
            ("Die Hard 2", "die hard 2 [2] diehard"),
            ("Rocky II", "rocky 2 [2] rocky"),
            ("Rocky V", "rocky 5 [5] rocky"),
            ("The Godfather: Part II", "the godfather 2 [2] thegodfather"),
            ("godfather part ii", "godfather 2 [2] godfather"),
            (
                "Star Wars: Episode V - The Empire Strikes Back",
                "star wars 5 the empire strikes back [5] starwars",
            ),
            ("star wars episode 5", "star wars 5 [5] starwars"),
            ("Kill Bill: Vol. 2", "kill bill 2 [2] killbill"),
            ("kill bill volume two", "kill bill 2 [2] killbill"),
            ("Shrek the Third", "shrek 3 [3] shrek"),
            ("shrek three", "shrek 3 [3] shrek"),
            ("Ocean's Eleven", "oceans 11 [11] oceans"),
            (
                "Terminator 2: Judgment Day",
                "terminator 2 judgment day [2] terminator",
            ),
            ("X2: X-Men United", "x 2 x men united [2] x"),
            ("Alien³", "alien 3 [3] alien"),
            ("Friday the 13th", "friday 13 [13] friday"),
            ("Malcolm X", "malcolm 10 [10] malcolm"),
            ("Apollo 13", "apollo 13 [13] apollo"),
            (
                "Harry Potter and the Deathly Hallows: Part 1",
                "harry potter and the deathly hallows 1 [1] harrypotterandthedeathlyhallows",
            ),
        ] {
            assert_eq!(canonical(text), expected, "{text}");
        }
    }

    #[test]
    fn numbers_that_are_part_of_the_name_are_not_sequel_numbers() {
        for text in [
            "12 Angry Men",
            "2001: A Space Odyssey",
            "Blade Runner 2049",
            "Se7en",
            "Seven",
            "I, Robot",
            "The 39 Steps",
            "The Third Man",
            "The Sixth Sense",
            "X-Men: First Class",
            "Star Trek: First Contact",
            "The Lord of the Rings: The Two Towers",
            "Rocky",
            "Alien",
            "Aliens",
            "V for Vendetta",
            "Dr. Strangelove or: How I Learned to Stop Worrying",
            "Hamlet 1996",
            "Part of Me",
        ] {
            assert_eq!(canonical(text), "-", "{text}");
        }
    }
}
