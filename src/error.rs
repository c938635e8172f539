//! The crate's error type: every failure says what went wrong and where (file, line, field).

use std::path::PathBuf;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in movierec, each variant naming the thing at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An input data file is missing, malformed or inconsistent.
    #[error("{location}: {message}")]
    Data {
        /// `file` or `file:line`.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// A model directory cannot be used.
    #[error("model directory {}: {message}", dir.display())]
    Artifact {
        /// The model directory.
        dir: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A request or command-line argument is invalid. The message names the field.
    #[error("{message}")]
    InvalidArgument {
        /// The argument or JSON field at fault.
        field: &'static str,
        /// What is wrong and what is allowed, naming the field.
        message: String,
    },
    /// A movie title or id did not match anything in the catalog.
    #[error("no movie matches {query:?}{}", suggestions_text(.suggestions))]
    MovieNotFound {
        /// What the user asked for.
        query: String,
        /// Close titles, best first.
        suggestions: Vec<String>,
    },
    /// A MovieLens user id is not in the training data.
    #[error("no user {user_id} in the training data")]
    UserNotFound {
        /// The id asked for.
        user_id: u32,
    },
    /// A nearest-neighbour index cannot be built or read.
    #[error("index: {0}")]
    Index(String),
    /// A movierec server answered a request with an error (its message, as a local run would
    /// have said it).
    #[error("{message}")]
    Remote {
        /// The HTTP status.
        status: u16,
        /// The server's `error.message`.
        message: String,
    },
    /// A download failed or its file did not check out.
    #[error("{url}: {message}")]
    Download {
        /// What was being fetched.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The live recommender's database failed or cannot be used.
    #[error("database {}: {message}", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A run could not be recorded or the run store read.
    #[error(transparent)]
    Tracking(#[from] crate::tracking::Error),
}

fn suggestions_text(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", suggestions.join(", "))
    }
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A data error at `location` (a file, or `file:line`).
    pub fn data(location: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Data {
            location: bounded(location.into()),
            message: bounded(message.into()),
        }
    }

    /// An invalid argument or request field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field,
            message: bounded(message.into()),
        }
    }
}

/// The longest message or location an error keeps, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1000;

/// `text` cut to [`MAX_MESSAGE_BYTES`] (at a character boundary) with its length given: a
/// message quoting its input (a 50 MB header line, a request field) stays small wherever it
/// goes (stderr, the run record, an API answer). Messages quote inputs through shorter cuts of
/// their own (`data::text::show`); this is the net under every one.
pub fn bounded(text: String) -> String {
    if text.len() <= MAX_MESSAGE_BYTES {
        return text;
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (cut; {} bytes in all)", &text[..end], text.len())
}
