//! Cleaning raw MovieLens titles into a display title, alternative titles and a release year.
//!
//! MovieLens writes titles as `Matrix, The (1999)` or
//! `City of Lost Children, The (Cité des enfants perdus, La) (1995)`: the release year in
//! parentheses at the end, alternative titles in parentheses before it and a leading article
//! moved behind a comma. [`clean_title`] undoes all three. The rules, in order:
//!
//! 1. **Whitespace.** The raw title is trimmed and every run of whitespace becomes one space
//!    (`Blind Side, The  (2009)` has two).
//! 2. **Year.** If the title ends with a parenthesised group holding a year (`(1995)`,
//!    `( 1995 )`, or a range such as `(2006–2007)`, `(2006-2007)`, `(2015-)`, where the first
//!    year is kept) in 1800..=2100, that group is removed and the year kept — but only if some
//!    title is left (`(1995)` alone stays a title with no year). A title without such a group
//!    (`Babylon 5`) keeps `year: None` and its text unchanged.
//! 3. **Aliases.** Then, from the end, each parenthesised group that is preceded by whitespace
//!    is taken off as an alternative title (`(a.k.a. X)`, `(aka X)` and `(also known as X)`
//!    give `X`; an original-language title is kept as it is). Peeling stops, and the group
//!    stays part of the title, at the first group that
//!    * is not preceded by whitespace (`Frontière(s)`), or has nothing before it
//!      (`(500) Days of Summer` keeps its `(500)`: only trailing groups are ever peeled, so
//!      `You Can (Not) Redo` keeps its `(Not)` too), or has no matching `(`;
//!    * is a descriptor rather than a name: a part/volume/episode/chapter/book/season/disc
//!      number (`Hotel Chevalier (Part 1 of 'The Darjeeling Limited')`), an edition or format
//!      word (`TV`, `Director's Cut`, `Extended Edition`, `3D`, `IMAX`, `Unrated`, ...), or a
//!      continuation starting with a lower-case conjunction
//!      (`Hommage à Zgougou (et salut à Sabine Mamou)`).
//!
//!    Empty groups are dropped, nested parentheses inside a group stay inside the alias, and an
//!    alias equal to the title or to an earlier alias is dropped. Other short groups such as a
//!    broadcaster (`Jim Jefferies: Fully Functional (EPIX)`) cannot be told from a short
//!    original title (`Kolya (Kolja)`, `Them (Ils)`) and are kept as aliases.
//! 4. **Articles.** [`move_article_to_front`] is applied to the title and to every alias:
//!    `Matrix, The` → `The Matrix`, `Auberge espagnole, L'` → `L'Auberge espagnole`,
//!    `Crow, The: Wicked Prayer` → `The Crow: Wicked Prayer`.
//!
//! Nothing here panics, whatever the input.

/// Articles that MovieLens moves behind a comma, in the capitalisation it uses.
///
/// Collected from the titles in `movies.csv` (English, French, Italian, Spanish, German,
/// Swedish/Danish, Dutch, Portuguese forms; `Da` as in `Hip Hop Witch, Da`) plus the remaining
/// forms of the same languages. Matching is case-sensitive, so `, a` or `, die` never match.
/// The one list of articles: title search (`catalog::search`) matches names and queries also
/// without a leading one, except those in [`ALSO_WORDS`].
pub const ARTICLES: &[&str] = &[
    "The", "A", "An", // English
    "Les", "La", "Le", "L'", "L’", "Un", "Une", // French
    "Il", "Lo", "I", "Gli", "Una", "Uno", // Italian
    "El", "Los", "Las", // Spanish
    "Das", "Der", "Die", "Ein", "Eine", // German
    "Den", "Det", "En", "Ett", // Swedish, Danish, Norwegian
    "De", "Het", // Dutch
    "O", "Os", // Portuguese
    "Da", // slang "the" (`Hip Hop Witch, Da`)
];

/// Articles of [`ARTICLES`] that also start titles as ordinary words ("Die Hard", "I, Robot",
/// "O Brother", "De-Lovely", "Lo and Behold", "Un Chien andalou"...): title search never drops
/// them from the start of a query or a name.
pub const ALSO_WORDS: &[&str] = &[
    "Da", "De", "Den", "Die", "En", "Ett", "I", "Lo", "O", "Os", "Un",
];

/// Words after which a trailing `I` is a roman numeral, not the Italian article.
const NUMBERED_WORDS: &[&str] = &[
    "part", "pt", "pt.", "vol", "vol.", "volume", "episode", "chapter", "book", "act", "season",
    "series", "no", "no.", "number", "round", "phase", "level", "disc", "stage", "film", "movie",
];

/// A MovieLens title split into its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanTitle {
    /// The main title, article in front: `The City of Lost Children`.
    pub title: String,
    /// Alternative titles from parenthesised groups, in the order they appear:
    /// `La Cité des enfants perdus`.
    pub aliases: Vec<String>,
    /// Release year, if the raw title ends with one (the first year of a range).
    pub year: Option<u16>,
}

/// Splits a raw MovieLens title into title, aliases and year (see the module docs for the rules).
///
/// `City of Lost Children, The (Cité des enfants perdus, La) (1995)` gives title
/// `The City of Lost Children`, alias `La Cité des enfants perdus` and year 1995.
pub fn clean_title(raw: &str) -> CleanTitle {
    let collapsed = collapse_whitespace(raw);
    let mut rest: &str = &collapsed;

    let mut year = None;
    if let Some((before, inner)) = split_last_group(rest) {
        if let Some(y) = parse_year(inner) {
            let before = before.trim_end();
            if !before.is_empty() {
                year = Some(y);
                rest = before;
            }
        }
    }

    let mut aliases = Vec::new();
    while let Some((before, inner)) = split_last_group(rest) {
        let trimmed = before.trim_end();
        let spaced = trimmed.len() < before.len();
        let inner = inner.trim();
        if trimmed.is_empty() || !spaced || is_descriptor(inner) {
            break;
        }
        let alias = move_article_to_front(strip_aka(inner));
        if !alias.is_empty() {
            aliases.push(alias);
        }
        rest = trimmed;
    }
    aliases.reverse();

    let title = move_article_to_front(rest);
    let mut unique: Vec<String> = Vec::with_capacity(aliases.len());
    for alias in aliases {
        if alias != title && !unique.contains(&alias) {
            unique.push(alias);
        }
    }
    CleanTitle {
        title,
        aliases: unique,
        year,
    }
}

/// The decade a year falls in, as a label: `"1990s"` for 1995.
pub fn decade_label(year: u16) -> String {
    format!("{}s", year / 10 * 10)
}

/// Moves a trailing article to the front: `"Matrix, The"` -> `"The Matrix"`; leaves other titles alone.
///
/// Recognised articles are listed in this module's `ARTICLES` (English, French, Italian,
/// Spanish, German, Scandinavian, Dutch, Portuguese). An elided article takes no space:
/// `"Auberge espagnole, L'"` -> `"L'Auberge espagnole"`. An article closing the part before a
/// subtitle moves too: `"Crow, The: Wicked Prayer"` -> `"The Crow: Wicked Prayer"`. A trailing
/// `I` is taken for the Italian article only after a word ending in a vowel that is not a
/// numbering word (`"Vitelloni, I"` moves; `"Star Wars: Episode, I"` or `"Elizabeth, I"` do
/// not). The result is trimmed and its whitespace collapsed.
pub fn move_article_to_front(s: &str) -> String {
    let s = collapse_whitespace(s);
    if let Some(moved) = move_trailing_article(&s, true) {
        return moved;
    }
    if let Some(colon) = s.find(':') {
        let (head, tail) = s.split_at(colon);
        if let Some(moved) = move_trailing_article(head, false) {
            return format!("{moved}{tail}");
        }
    }
    s
}

/// `"Matrix, The"` -> `Some("The Matrix")`; `None` when `s` does not end with `, <article>`.
fn move_trailing_article(s: &str, allow_italian_i: bool) -> Option<String> {
    let comma = s.rfind(',')?;
    let article = s[comma + 1..].trim();
    let rest = s[..comma].trim_end();
    if rest.is_empty() || !ARTICLES.contains(&article) {
        return None;
    }
    if article == "I" && !(allow_italian_i && italian_i_context(rest)) {
        return None;
    }
    if article.ends_with('\'') || article.ends_with('’') {
        Some(format!("{article}{rest}"))
    } else {
        Some(format!("{article} {rest}"))
    }
}

/// Whether `rest` in `"<rest>, I"` looks like an Italian plural (`Vitelloni`, `Tre volti della
/// paura`) rather than something numbered (`Episode`) or English (`Elizabeth`).
fn italian_i_context(rest: &str) -> bool {
    let Some(last_word) = rest.split_whitespace().last() else {
        return false;
    };
    let lower = last_word.to_lowercase();
    if NUMBERED_WORDS.contains(&lower.as_str()) || is_roman_numeral(&lower) {
        return false;
    }
    lower
        .chars()
        .last()
        .is_some_and(|c| "aeiouàèéìòù".contains(c))
}

/// Lower-case roman numerals up to 39 (`i`, `iv`, `xii`, ...).
fn is_roman_numeral(word: &str) -> bool {
    const UNITS: &[&str] = &["", "i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix"];
    if word.is_empty() {
        return false;
    }
    let tens = word.bytes().take_while(|&b| b == b'x').count();
    tens <= 3 && UNITS.contains(&&word[tens..])
}

/// Trims and turns every run of whitespace into a single space.
fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// If `s` ends with a balanced parenthesised group, returns the text before its `(` and the
/// text inside it. Parentheses nest; `None` when `s` does not end with `)` or the group is
/// unbalanced.
fn split_last_group(s: &str) -> Option<(&str, &str)> {
    if !s.ends_with(')') {
        return None;
    }
    // '(' and ')' are ASCII, so byte positions are char boundaries.
    let mut depth = 0usize;
    for (i, b) in s.bytes().enumerate().rev() {
        match b {
            b')' => depth += 1,
            b'(' => {
                depth -= 1;
                if depth == 0 {
                    return Some((&s[..i], &s[i + 1..s.len() - 1]));
                }
            }
            _ => {}
        }
    }
    None
}

/// `"1995"`, `" 1995 "`, `"2006–2007"`, `"2006 - 2007"`, `"2015-"` -> the first year, if in
/// 1800..=2100.
fn parse_year(inner: &str) -> Option<u16> {
    let inner = inner.trim();
    let digits = inner.get(..4)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: u16 = digits.parse().ok()?;
    if !(1800..=2100).contains(&year) {
        return None;
    }
    let tail = inner[4..].trim();
    if !tail.is_empty() {
        let after_dash = tail
            .strip_prefix('-')
            .or_else(|| tail.strip_prefix('–'))
            .or_else(|| tail.strip_prefix('—'))?
            .trim();
        let valid_end = after_dash.is_empty()
            || (after_dash.len() == 4 && after_dash.bytes().all(|b| b.is_ascii_digit()));
        if !valid_end {
            return None;
        }
    }
    Some(year)
}

/// Strips `a.k.a.`, `a.k.a`, `aka`, `a/k/a` or `also known as` from the front of an alias.
fn strip_aka(inner: &str) -> &str {
    const PREFIXES: &[&str] = &["a.k.a.", "a.k.a", "a/k/a", "aka", "also known as"];
    for prefix in PREFIXES {
        let matches = inner
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix));
        if matches {
            let after = &inner[prefix.len()..];
            // "aka" must be a word of its own: "(Akira)" is not "(a.k.a. ira)".
            if after.is_empty() || after.starts_with(char::is_whitespace) || prefix.ends_with('.') {
                return after.trim();
            }
        }
    }
    inner
}

/// Whether a trailing parenthesised group describes the film (a part number, an edition, a
/// continuation of the title) instead of naming it.
fn is_descriptor(inner: &str) -> bool {
    const EXACT: &[&str] = &[
        "tv",
        "tv movie",
        "tv series",
        "tv mini-series",
        "tv miniseries",
        "mini-series",
        "miniseries",
        "short",
        "documentary",
        "director's cut",
        "directors cut",
        "the director's cut",
        "extended cut",
        "extended edition",
        "extended version",
        "special edition",
        "theatrical cut",
        "final cut",
        "unrated",
        "uncut",
        "uncensored",
        "redux",
        "remastered",
        "restored",
        "re-release",
        "colorized",
        "3d",
        "in 3d",
        "imax",
        "imax 3d",
        "live",
    ];
    const NUMBERED: &[&str] = &[
        "part", "pt.", "vol.", "vol", "volume", "episode", "chapter", "book", "season", "disc",
    ];
    const NUMBER_WORDS: &[&str] = &[
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    const CONJUNCTIONS: &[&str] = &["and", "et", "or", "ou", "und", "&"];

    let lower = inner.to_lowercase();
    if EXACT.contains(&lower.as_str()) {
        return true;
    }
    let mut words = lower.split_whitespace();
    let (Some(first), second) = (words.next(), words.next()) else {
        return false;
    };
    if let Some(second) = second {
        if NUMBERED.contains(&first) {
            let second = second.trim_end_matches(|c: char| !c.is_alphanumeric());
            if second.starts_with(|c: char| c.is_ascii_digit())
                || is_roman_numeral(second)
                || NUMBER_WORDS.contains(&second)
            {
                return true;
            }
        }
        // A lower-case conjunction continues the title; a capitalised one may start an alias.
        let original_first = inner.split_whitespace().next().unwrap_or("");
        if CONJUNCTIONS.contains(&original_first) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(title: &str, aliases: &[&str], year: Option<u16>) -> CleanTitle {
        CleanTitle {
            title: title.to_string(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            year,
        }
    }

    #[test]
    fn plain_title_and_year() {
        assert_eq!(
            clean_title("Toy Story (1995)"),
            clean("Toy Story", &[], Some(1995))
        );
        assert_eq!(
            clean_title("2001: A Space Odyssey (1968)"),
            clean("2001: A Space Odyssey", &[], Some(1968))
        );
        // A year in the title itself stays there.
        assert_eq!(
            clean_title("Blade Runner 2049 (2017)"),
            clean("Blade Runner 2049", &[], Some(2017))
        );
        assert_eq!(
            clean_title("The Godfather Trilogy: 1972-1990 (1992)"),
            clean("The Godfather Trilogy: 1972-1990", &[], Some(1992))
        );
    }

    #[test]
    fn odd_year_forms() {
        // movies.csv has trailing spaces after the year ...
        assert_eq!(
            clean_title("From Dusk Till Dawn 2: Texas Blood Money (1999) "),
            clean("From Dusk Till Dawn 2: Texas Blood Money", &[], Some(1999))
        );
        assert_eq!(
            clean_title("Assembly (Ji jie hao) (2007) "),
            clean("Assembly", &["Ji jie hao"], Some(2007))
        );
        // ... a double space before it ...
        assert_eq!(
            clean_title("Blind Side, The  (2009)"),
            clean("The Blind Side", &[], Some(2009))
        );
        // ... and a range with an en dash.
        assert_eq!(
            clean_title("Death Note: Desu nôto (2006–2007)"),
            clean("Death Note: Desu nôto", &[], Some(2006))
        );
        assert_eq!(clean_title("Cosmos (1980-)").year, Some(1980));
        assert_eq!(clean_title("Cosmos (1980 - 1981)").year, Some(1980));
        assert_eq!(clean_title("Heat ( 1995 )").year, Some(1995));
        // Not years.
        assert_eq!(
            clean_title("Heat (1995-96)"),
            clean("Heat", &["1995-96"], None)
        );
        assert_eq!(clean_title("Heat (0001)"), clean("Heat", &["0001"], None));
    }

    #[test]
    fn titles_without_year_stay_intact() {
        for raw in [
            "Babylon 5",
            "Ready Player One",
            "The OA",
            "Maria Bamford: Old Baby",
            "Generation Iron 2",
        ] {
            assert_eq!(clean_title(raw), clean(raw, &[], None), "{raw}");
        }
    }

    #[test]
    fn trailing_articles_move_to_front() {
        let cases = [
            ("Matrix, The (1999)", "The Matrix"),
            ("Walk in the Clouds, A (1995)", "A Walk in the Clouds"),
            ("Cool, Dry Place, A (1998)", "A Cool, Dry Place"),
            ("American in Paris, An (1951)", "An American in Paris"),
            ("Boot, Das (Boat, The) (1981)", "Das Boot"),
            ("Divo, Il (2008)", "Il Divo"),
            (
                "Baader Meinhof Komplex, Der (2008)",
                "Der Baader Meinhof Komplex",
            ),
            ("Hip Hop Witch, Da (2000)", "Da Hip Hop Witch"),
            ("Atalante, L' (1934)", "L'Atalante"),
            ("Auberge espagnole, L' (2002)", "L'Auberge espagnole"),
            (
                "Vitelloni, I (a.k.a. The Young and the Passionate) (1953)",
                "I Vitelloni",
            ),
            ("Crow, The: Wicked Prayer (2005)", "The Crow: Wicked Prayer"),
            (
                "Lord of the Rings: The Fellowship of the Ring, The (2001)",
                "The Lord of the Rings: The Fellowship of the Ring",
            ),
            ("Godfather: Part II, The (1974)", "The Godfather: Part II"),
        ];
        for (raw, title) in cases {
            assert_eq!(clean_title(raw).title, title, "{raw}");
        }
    }

    #[test]
    fn roman_numeral_i_and_english_words_are_not_articles() {
        assert_eq!(
            move_article_to_front("Star Wars: Episode, I"),
            "Star Wars: Episode, I"
        );
        assert_eq!(move_article_to_front("Elizabeth, I"), "Elizabeth, I");
        assert_eq!(move_article_to_front("Rocky II, I"), "Rocky II, I");
        assert_eq!(move_article_to_front("Honey, I: Again"), "Honey, I: Again");
        assert_eq!(
            move_article_to_front("Honey, I Shrunk the Kids"),
            "Honey, I Shrunk the Kids"
        );
        assert_eq!(move_article_to_front("Hello, the"), "Hello, the");
        assert_eq!(move_article_to_front(", The"), ", The");
        assert_eq!(move_article_to_front("The Matrix"), "The Matrix");
        assert_eq!(
            move_article_to_front("  Bambini ci guardano,  I "),
            "I Bambini ci guardano"
        );
    }

    #[test]
    fn aliases_from_parentheses() {
        assert_eq!(
            clean_title("City of Lost Children, The (Cité des enfants perdus, La) (1995)"),
            clean(
                "The City of Lost Children",
                &["La Cité des enfants perdus"],
                Some(1995)
            )
        );
        assert_eq!(
            clean_title("Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)"),
            clean(
                "Shanghai Triad",
                &["Yao a yao yao dao waipo qiao"],
                Some(1995)
            )
        );
        assert_eq!(
            clean_title("Léon: The Professional (a.k.a. The Professional) (Léon) (1994)"),
            clean(
                "Léon: The Professional",
                &["The Professional", "Léon"],
                Some(1994)
            )
        );
        assert_eq!(
            clean_title("Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)"),
            clean(
                "Amelie",
                &["Le Fabuleux destin d'Amélie Poulain"],
                Some(2001)
            )
        );
        assert_eq!(
            clean_title("Black Sabbath (Tre volti della paura, I) (1963)"),
            clean("Black Sabbath", &["I Tre volti della paura"], Some(1963))
        );
        assert_eq!(
            clean_title("School of Flesh, The (École de la chair, L') (1998)"),
            clean("The School of Flesh", &["L'École de la chair"], Some(1998))
        );
        assert_eq!(
            clean_title("European Vacation (aka National Lampoon's European Vacation) (1985)"),
            clean(
                "European Vacation",
                &["National Lampoon's European Vacation"],
                Some(1985)
            )
        );
        assert_eq!(
            clean_title(
                "Asterix in America (a.k.a Asterix Conquers America) (Astérix et les Indiens) (1994)"
            ),
            clean(
                "Asterix in America",
                &["Asterix Conquers America", "Astérix et les Indiens"],
                Some(1994)
            )
        );
        assert_eq!(
            clean_title("City of the Living Dead (a.k.a. Gates of Hell, The) (Paura nella città dei morti viventi) (1980)"),
            clean(
                "City of the Living Dead",
                &["The Gates of Hell", "Paura nella città dei morti viventi"],
                Some(1980)
            )
        );
        // An article inside an alias, before its subtitle.
        assert_eq!(
            clean_title("Wes Craven's New Nightmare (Nightmare on Elm Street Part 7: Freddy's Finale, A) (1994)")
                .aliases,
            vec!["A Nightmare on Elm Street Part 7: Freddy's Finale"]
        );
        // An alias equal to the title is dropped; a short original title is kept.
        assert_eq!(
            clean_title("Goal! The Dream Begins (Goal!) (2005)").aliases,
            vec!["Goal!"]
        );
        assert_eq!(clean_title("Them (Ils) (2006)").aliases, vec!["Ils"]);
        assert_eq!(
            clean_title("Heat (Heat) (1995)").aliases,
            Vec::<String>::new()
        );
        assert_eq!(
            clean_title("Heat (a.k.a.) () (1995)").aliases,
            Vec::<String>::new()
        );
        // "Akira" is not "a.k.a. ira".
        assert_eq!(clean_title("Foo (Akira) (1995)").aliases, vec!["Akira"]);
    }

    #[test]
    fn parentheses_that_belong_to_the_title() {
        assert_eq!(
            clean_title("(500) Days of Summer (2009)"),
            clean("(500) Days of Summer", &[], Some(2009))
        );
        assert_eq!(
            clean_title("Evangelion: 3.0 You Can (Not) Redo (2012)"),
            clean("Evangelion: 3.0 You Can (Not) Redo", &[], Some(2012))
        );
        assert_eq!(
            clean_title(
                "Evangelion: 1.0 You Are (Not) Alone (Evangerion shin gekijôban: Jo) (2007)"
            ),
            clean(
                "Evangelion: 1.0 You Are (Not) Alone",
                &["Evangerion shin gekijôban: Jo"],
                Some(2007)
            )
        );
        assert_eq!(
            clean_title("Frontière(s) (2007)"),
            clean("Frontière(s)", &[], Some(2007))
        );
        assert_eq!(
            clean_title("Hotel Chevalier (Part 1 of 'The Darjeeling Limited') (2007)"),
            clean(
                "Hotel Chevalier (Part 1 of 'The Darjeeling Limited')",
                &[],
                Some(2007)
            )
        );
        assert_eq!(
            clean_title("Hommage à Zgougou (et salut à Sabine Mamou) (2002)"),
            clean(
                "Hommage à Zgougou (et salut à Sabine Mamou)",
                &[],
                Some(2002)
            )
        );
        assert_eq!(
            clean_title("Me and you (io e te) (2012)"),
            clean("Me and you", &["io e te"], Some(2012))
        );
        assert_eq!(
            clean_title("Alien (Director's Cut) (1979)").title,
            "Alien (Director's Cut)"
        );
        assert_eq!(
            clean_title("Kill Bill (Vol. 1) (2003)").title,
            "Kill Bill (Vol. 1)"
        );
        // The descriptor stops peeling: the alias in front of it stays in the title.
        assert_eq!(
            clean_title("Foo (Bar) (TV) (2000)"),
            clean("Foo (Bar) (TV)", &[], Some(2000))
        );
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(clean_title(""), clean("", &[], None));
        assert_eq!(clean_title("   "), clean("", &[], None));
        assert_eq!(clean_title("(1995)"), clean("(1995)", &[], None));
        assert_eq!(clean_title(" (1995) "), clean("(1995)", &[], None));
        assert_eq!(clean_title("(500) (2009)"), clean("(500)", &[], Some(2009)));
        assert_eq!(
            clean_title("Heat)) (1995)"),
            clean("Heat))", &[], Some(1995))
        );
        assert_eq!(clean_title("Heat (1995"), clean("Heat (1995", &[], None));
        assert_eq!(clean_title("((()"), clean("((()", &[], None));
        assert_eq!(
            clean_title("Heat (Foo (Bar)) (1995)").aliases,
            vec!["Foo (Bar)"]
        );
        assert_eq!(clean_title(", The"), clean(", The", &[], None));
        assert_eq!(clean_title("Été, L’ (1995)").title, "L’Été");
        assert_eq!(
            clean_title("東京物語 (1953)"),
            clean("東京物語", &[], Some(1953))
        );
    }

    #[test]
    fn decade_labels() {
        assert_eq!(decade_label(1995), "1990s");
        assert_eq!(decade_label(1990), "1990s");
        assert_eq!(decade_label(2009), "2000s");
        assert_eq!(decade_label(1874), "1870s");
        assert_eq!(decade_label(0), "0s");
    }

    /// xorshift64*: a tiny deterministic generator so the fuzz test needs no dependency.
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
    fn random_strings_never_panic() {
        const PIECES: &[&str] = &[
            "(",
            ")",
            "(",
            ")",
            " ",
            " ",
            ",",
            ", ",
            "The",
            "L'",
            "L’",
            "I",
            "a.k.a.",
            "aka ",
            "1995",
            "2006–2007",
            "-",
            "–",
            "Part 1",
            "TV",
            "é",
            "ß",
            "東京",
            "\u{301}",
            "\t",
            "x",
            "Matrix",
            ":",
            "'",
            "0",
            "9",
            "  ",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let len = rng.below(12);
            let raw: String = (0..len).map(|_| PIECES[rng.below(PIECES.len())]).collect();
            let cleaned = clean_title(&raw);
            assert_eq!(cleaned.title, cleaned.title.trim(), "{raw:?}");
            assert_eq!(cleaned.title.is_empty(), raw.trim().is_empty(), "{raw:?}");
            for alias in &cleaned.aliases {
                assert!(!alias.is_empty() && alias == alias.trim(), "{raw:?}");
            }
            if let Some(year) = cleaned.year {
                assert!((1800..=2100).contains(&year), "{raw:?}");
            }
            let _ = move_article_to_front(&raw);
        }
    }

    /// Every title of the bundled MovieLens sample.
    fn movielens_titles() -> Vec<String> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/ml-latest-small/movies.csv"
        );
        let mut reader = csv::Reader::from_path(path).expect("movies.csv");
        reader
            .records()
            .map(|r| r.expect("movies.csv record")[1].to_string())
            .collect()
    }

    #[test]
    fn every_movielens_title_cleans() {
        let titles = movielens_titles();
        assert_eq!(titles.len(), 9742);
        let trailing: Vec<String> = ARTICLES.iter().map(|a| format!(", {a}")).collect();
        let mut with_year = 0;
        let mut with_alias = 0;
        let mut kept_parenthesis = Vec::new();
        for raw in &titles {
            let cleaned = clean_title(raw);
            let names = std::iter::once(&cleaned.title).chain(&cleaned.aliases);
            for name in names {
                assert!(!name.is_empty(), "{raw}");
                assert_eq!(name, name.trim(), "{raw}");
                for t in &trailing {
                    // ", I" is left alone after numbering words, which the data never has.
                    assert!(!name.ends_with(t.as_str()), "{raw} -> {name}");
                    assert!(!name.contains(&format!("{t}:")), "{raw} -> {name}");
                }
                assert!(!name.starts_with("a.k.a"), "{raw} -> {name}");
            }
            if cleaned.title.ends_with(')') {
                kept_parenthesis.push(cleaned.title.clone());
            }
            if let Some(year) = cleaned.year {
                assert!((1874..=2030).contains(&year), "{raw}");
                with_year += 1;
            }
            with_alias += usize::from(!cleaned.aliases.is_empty());
            // Cleaning is idempotent on the title part.
            assert_eq!(clean_title(&cleaned.title).title, cleaned.title, "{raw}");
        }
        // 12 titles have no year at all; `(2006–2007)` is a range.
        assert_eq!(with_year, titles.len() - 12);
        assert!((1000..1100).contains(&with_alias), "{with_alias}");
        // Titles that end with a parenthesis after cleaning: the rest became aliases.
        kept_parenthesis.sort();
        assert_eq!(
            kept_parenthesis,
            [
                "Frontière(s)",
                "Hommage à Zgougou (et salut à Sabine Mamou)",
                "Hotel Chevalier (Part 1 of 'The Darjeeling Limited')",
            ]
        );
    }
}
