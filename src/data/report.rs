//! What loading found ([`LoadReport`]): rows read and kept per file, and every problem counted by
//! [`Reason`] with its first examples as `file:line: what`. Nothing is dropped without being
//! counted here; in strict mode the first problem is an error instead.

use super::Layout;
use crate::{Error, Result};
use serde::Serialize;
use std::fmt;

/// How many examples of each reason are kept.
pub const EXAMPLES: usize = 3;

/// Why a row was skipped (or, for the reasons that [keep the row](Reason::keeps_row), repaired,
/// merged or noted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The row has more or fewer fields than the file's format.
    FieldCount,
    /// A number field cannot be read (`four`, `-1` for an id, an empty id).
    BadNumber,
    /// A rating outside the release's scale (0.5–5, or 1–5 for ml-1m and ml-100k).
    RatingRange,
    /// A rating between the release's steps (not a multiple of 0.5; not whole in ml-1m/ml-100k).
    RatingStep,
    /// A rating, tag, link or genome score of a movie that is not in the movies file.
    UnknownMovie,
    /// The same user rated the same movie again: the latest (by timestamp, then line) is kept.
    DuplicateRating,
    /// A movie id listed twice in the movies or links file: the first is kept.
    DuplicateMovie,
    /// A genome tag id listed twice, or a (movie, tag) genome score given twice: the first tag
    /// name and the latest score are kept.
    DuplicateGenome,
    /// A genome score of a tag id that is not in `genome-tags.csv`.
    UnknownGenomeTag,
    /// A genome relevance outside 0–1.
    RelevanceRange,
    /// A movie whose genome lacks some tags: its genome is left out (counted once per movie).
    IncompleteGenome,
    /// A genre flag of `u.item` that is neither 0 nor 1, or a malformed `u.genre` line.
    BadGenre,
    /// A line longer than any row of the format could be.
    LongLine,
    /// Text that is not valid UTF-8 in a UTF-8 release: read as Latin-1 and the row kept.
    NotUtf8,
    /// One film listed under two (or more) ids, with the same title and year: merged into one
    /// entry under the id with most ratings (counted once per id folded in).
    MergedMovie,
    /// The same title and year under two ids whose links name two different films (two TMDb
    /// ids): kept as two movies (counted once per id kept apart).
    SameTitleKeptApart,
    /// A genre beyond the most common `data::genres::MAX_GENRES`: dropped from its movie, which
    /// stays (counted once per movie and genre).
    RareGenre,
}

impl Reason {
    /// Every reason, in report order.
    pub const ALL: [Reason; 17] = [
        Reason::FieldCount,
        Reason::BadNumber,
        Reason::RatingRange,
        Reason::RatingStep,
        Reason::UnknownMovie,
        Reason::DuplicateRating,
        Reason::DuplicateMovie,
        Reason::DuplicateGenome,
        Reason::UnknownGenomeTag,
        Reason::RelevanceRange,
        Reason::IncompleteGenome,
        Reason::BadGenre,
        Reason::LongLine,
        Reason::NotUtf8,
        Reason::MergedMovie,
        Reason::SameTitleKeptApart,
        Reason::RareGenre,
    ];

    /// A short description for the summary.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::FieldCount => "wrong number of fields",
            Reason::BadNumber => "unparsable number",
            Reason::RatingRange => "rating outside the scale",
            Reason::RatingStep => "rating between the scale's steps",
            Reason::UnknownMovie => "movie not in the movies file",
            Reason::DuplicateRating => "duplicate user–movie rating (the latest kept)",
            Reason::DuplicateMovie => "movie id listed twice (the first kept)",
            Reason::DuplicateGenome => "genome entry given twice",
            Reason::UnknownGenomeTag => "genome tag id not in genome-tags.csv",
            Reason::RelevanceRange => "genome relevance outside 0–1",
            Reason::IncompleteGenome => "movie without a score for every genome tag (left out)",
            Reason::BadGenre => "malformed genre",
            Reason::LongLine => "line too long",
            Reason::NotUtf8 => "text not valid UTF-8 (read as Latin-1, row kept)",
            Reason::MergedMovie => "same title and year listed under two ids (merged)",
            Reason::SameTitleKeptApart => {
                "same title and year under two ids, kept apart (their links name two films)"
            }
            Reason::RareGenre => "genre beyond the most common 100 (dropped, movie kept)",
        }
    }

    /// Whether rows with this problem are still used.
    pub fn keeps_row(self) -> bool {
        matches!(
            self,
            Reason::NotUtf8 | Reason::MergedMovie | Reason::SameTitleKeptApart | Reason::RareGenre
        )
    }

    pub(crate) fn index(self) -> usize {
        Reason::ALL.iter().position(|&r| r == self).unwrap_or(0)
    }
}

/// Problems of one reason in one file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Issue {
    /// The file's name (`ratings.csv`).
    pub file: String,
    /// What is wrong.
    pub reason: Reason,
    /// How many rows (or, for [`Reason::IncompleteGenome`], movies).
    pub count: u64,
    /// The first few, as `path:line: what`.
    pub examples: Vec<String>,
}

/// Rows of one file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FileSummary {
    /// The file's name (`ratings.csv`).
    pub file: String,
    /// Data rows read (blank lines and the header not counted).
    pub rows: u64,
    /// Rows used.
    pub kept: u64,
    /// Wall time of reading and checking the file.
    pub seconds: f64,
}

/// What loading a release found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadReport {
    /// The directory or zip file read.
    pub source: String,
    /// The layout detected.
    pub layout: Layout,
    /// Every file read, in reading order.
    pub files: Vec<FileSummary>,
    /// Problems found, by file and reason, in the order first met.
    pub issues: Vec<Issue>,
    /// Wall time of loading.
    pub seconds: f64,
}

impl LoadReport {
    pub(crate) fn new(source: String, layout: Layout) -> LoadReport {
        LoadReport {
            source,
            layout,
            files: Vec::new(),
            issues: Vec::new(),
            seconds: 0.0,
        }
    }

    /// Rows read but not used (problems that keep the row, such as text decoded as Latin-1, are
    /// not counted).
    pub fn skipped_rows(&self) -> u64 {
        self.issues
            .iter()
            .filter(|i| !i.reason.keeps_row())
            .map(|i| i.count)
            .sum()
    }

    /// The issue of `reason` in `file`, if any.
    pub fn issue(&self, file: &str, reason: Reason) -> Option<&Issue> {
        self.issues
            .iter()
            .find(|i| i.file == file && i.reason == reason)
    }

    /// Counts `count` findings that are not malformed rows (so not an error in strict mode
    /// either), keeping `example` (`file:line: what`) while there are fewer than [`EXAMPLES`].
    pub(crate) fn note(&mut self, file: &str, reason: Reason, count: u64, example: String) {
        let issue = self.issue_mut(file, reason);
        issue.count += count;
        if issue.examples.len() < EXAMPLES {
            issue.examples.push(crate::error::bounded(example));
        }
    }

    fn issue_mut(&mut self, file: &str, reason: Reason) -> &mut Issue {
        let at = match self
            .issues
            .iter()
            .position(|i| i.file == file && i.reason == reason)
        {
            Some(at) => at,
            None => {
                self.issues.push(Issue {
                    file: file.to_string(),
                    reason,
                    count: 0,
                    examples: Vec::new(),
                });
                self.issues.len() - 1
            }
        };
        &mut self.issues[at]
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "loaded {} ({}) in {:.2} s",
            self.source,
            self.layout.describe(),
            self.seconds
        )?;
        let width = self.files.iter().map(|s| s.file.len()).max().unwrap_or(0);
        for s in &self.files {
            let skipped = s.rows - s.kept.min(s.rows);
            write!(
                f,
                "  {:<width$}  {:>12} rows",
                s.file,
                thousands(s.rows),
                width = width
            )?;
            if skipped > 0 {
                write!(f, ", {} skipped", thousands(skipped))?;
            }
            writeln!(f, " in {:.2} s", s.seconds)?;
        }
        if self.issues.is_empty() {
            return write!(f, "  no problems found");
        }
        let skipped = self.skipped_rows();
        write!(
            f,
            "  {} row{} skipped",
            thousands(skipped),
            if skipped == 1 { "" } else { "s" }
        )?;
        for issue in &self.issues {
            write!(
                f,
                "\n  {}: {} × {}",
                issue.file,
                thousands(issue.count),
                issue.reason.describe()
            )?;
            for example in &issue.examples {
                write!(f, "\n    {example}")?;
            }
        }
        Ok(())
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A file being read: its name in the report and its location in messages.
#[derive(Clone, Debug)]
pub(crate) struct FileRef {
    /// `ratings.csv`.
    pub name: String,
    /// `data/ml-latest/ratings.csv`, or `ml-1m.zip/ml-1m/ratings.dat`.
    pub location: String,
}

impl FileRef {
    /// `location:line`.
    pub(crate) fn at(&self, line: u64) -> String {
        format!("{}:{line}", self.location)
    }
}

/// Problems met in part of a file, to be merged in file order (the parallel parser's pieces).
#[derive(Debug, Default)]
pub(crate) struct Tally {
    counts: [u64; Reason::ALL.len()],
    /// `(line, reason, what)` of the first [`EXAMPLES`] problems of each reason, in line order.
    examples: Vec<(u64, Reason, String)>,
}

impl Tally {
    /// Counts a problem at `line`; the message is built only when it will be kept.
    pub(crate) fn add(&mut self, line: u64, reason: Reason, what: impl FnOnce() -> String) {
        let count = &mut self.counts[reason.index()];
        *count += 1;
        if *count as usize <= EXAMPLES {
            self.examples.push((line, reason, what()));
        }
    }

    /// Shifts every line by `offset` (a piece's lines are counted from its start).
    pub(crate) fn offset_lines(&mut self, offset: u64) {
        for example in &mut self.examples {
            example.0 += offset;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }
}

/// Records problems into a report, or, in strict mode, turns the first into an error.
pub(crate) struct Checker<'r> {
    pub(crate) report: &'r mut LoadReport,
    pub(crate) strict: bool,
}

impl Checker<'_> {
    /// One problem at `file:line`.
    pub(crate) fn problem(
        &mut self,
        file: &FileRef,
        line: u64,
        reason: Reason,
        what: impl Into<String>,
    ) -> Result<()> {
        let what = what.into();
        if self.strict {
            return Err(Error::data(file.at(line), what));
        }
        let issue = self.report.issue_mut(&file.name, reason);
        issue.count += 1;
        if issue.examples.len() < EXAMPLES {
            issue
                .examples
                .push(crate::error::bounded(format!("{}: {what}", file.at(line))));
        }
        Ok(())
    }

    /// A problem that concerns a file as a whole or a movie rather than one line.
    pub(crate) fn problem_in_file(
        &mut self,
        file: &FileRef,
        reason: Reason,
        what: impl Into<String>,
    ) -> Result<()> {
        let what = what.into();
        if self.strict {
            return Err(Error::data(file.location.clone(), what));
        }
        let issue = self.report.issue_mut(&file.name, reason);
        issue.count += 1;
        if issue.examples.len() < EXAMPLES {
            issue
                .examples
                .push(crate::error::bounded(format!("{}: {what}", file.location)));
        }
        Ok(())
    }

    /// Merges the problems of a part of `file`, whose lines are already absolute.
    pub(crate) fn merge(&mut self, file: &FileRef, tally: Tally) -> Result<()> {
        if tally.is_empty() {
            return Ok(());
        }
        if self.strict {
            if let Some((line, _, what)) = tally.examples.into_iter().min_by_key(|e| e.0) {
                return Err(Error::data(file.at(line), what));
            }
            return Ok(());
        }
        for reason in Reason::ALL {
            let count = tally.counts[reason.index()];
            if count == 0 {
                continue;
            }
            let issue = self.report.issue_mut(&file.name, reason);
            issue.count += count;
            for (line, _, what) in tally.examples.iter().filter(|e| e.1 == reason) {
                if issue.examples.len() < EXAMPLES {
                    issue
                        .examples
                        .push(crate::error::bounded(format!("{}: {what}", file.at(*line))));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(33_832_162), "33,832,162");
    }

    #[test]
    fn merged_tallies_keep_the_first_examples_in_file_order_and_strict_names_the_first_line() {
        let file = FileRef {
            name: "ratings.csv".into(),
            location: "d/ratings.csv".into(),
        };
        let mut pieces = Vec::new();
        for base in [0u64, 100] {
            let mut tally = Tally::default();
            for line in [5u64, 7, 9, 11] {
                tally.add(line, Reason::BadNumber, || format!("bad {line}"));
            }
            tally.add(6, Reason::RatingRange, || "range".into());
            tally.offset_lines(base);
            pieces.push(tally);
        }
        let mut report = LoadReport::new("d".into(), Layout::Csv);
        let mut check = Checker {
            report: &mut report,
            strict: false,
        };
        for tally in pieces {
            check.merge(&file, tally).unwrap();
        }
        let bad = report.issue("ratings.csv", Reason::BadNumber).unwrap();
        assert_eq!(bad.count, 8);
        assert_eq!(
            bad.examples,
            vec![
                "d/ratings.csv:5: bad 5",
                "d/ratings.csv:7: bad 7",
                "d/ratings.csv:9: bad 9"
            ]
        );
        assert_eq!(report.skipped_rows(), 10);

        let mut tally = Tally::default();
        tally.add(9, Reason::BadNumber, || "later".into());
        tally.add(4, Reason::RatingStep, || "first".into());
        let mut report = LoadReport::new("d".into(), Layout::Csv);
        let mut strict = Checker {
            report: &mut report,
            strict: true,
        };
        let err = strict.merge(&file, tally).unwrap_err().to_string();
        assert_eq!(err, "d/ratings.csv:4: first");
    }
}
