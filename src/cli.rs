//! Command-line arguments: every flag is defined here with its help text. Parsing only; the
//! work is done by the library.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Default MovieLens directory (the bundled small release).
pub const DEFAULT_DATA_DIR: &str = "data/ml-latest-small";
/// Default model directory.
pub const DEFAULT_MODEL_DIR: &str = "models/default";

/// Movie recommendations from MovieLens: prepare data, train models, build nearest-neighbour
/// indexes and serve them (JSON API and web page), in one binary.
#[derive(Debug, Parser)]
#[command(name = "movierec", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train every model on a MovieLens release and write a model directory (atomically).
    Train {
        /// MovieLens release: a directory or the .zip as downloaded, of any layout (ml-latest,
        /// ml-32m/25m/20m, ml-10m, ml-1m, ml-100k).
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// How malformed rows are treated.
        #[command(flatten)]
        validation: ValidationArgs,
        /// Model directory to write (replaced atomically if it exists).
        #[arg(long, default_value = DEFAULT_MODEL_DIR)]
        out: PathBuf,
        /// Number of trees of the Annoy-style forest [default: 20].
        #[arg(long)]
        trees: Option<usize>,
        /// Candidates the forest inspects per query [default: 2000, doubled by training until
        /// recall@10 reaches 0.95, up to a quarter of the catalog; a value given is kept].
        #[arg(long)]
        search_k: Option<usize>,
        /// Random seed of the forest and the graph [default: 42].
        #[arg(long)]
        seed: Option<u64>,
        /// HNSW: links per node (M; 2·M on the bottom layer) [default: 16].
        #[arg(long)]
        hnsw_m: Option<usize>,
        /// HNSW: beam width while building [default: 100].
        #[arg(long)]
        ef_construction: Option<usize>,
        /// HNSW: beam width while searching, at least k is used [default: 64, doubled by
        /// training until recall@10 reaches 0.95, up to 512; a value given is kept].
        #[arg(long)]
        ef_search: Option<usize>,
        /// Seconds the settings may be tuned for first, on a validation split of the data (the
        /// tuning `evaluate` runs; its stages in order: fans also liked, more like this, personal
        /// scoring, content, ALS, hybrid, EASE; a stage starts only while the budget lasts).
        #[arg(long, value_name = "SECONDS", default_value_t = movierec::train::DEFAULT_TUNE_BUDGET.as_secs_f64(), value_parser = tune_budget, allow_hyphen_values = true, conflicts_with = "no_tune")]
        tune_budget: f64,
        /// Train with the stored default settings (those chosen on the bundled data), no tuning.
        #[arg(long)]
        no_tune: bool,
        /// Retrain from this model directory, trained earlier on the same movies with fewer
        /// ratings (at most 5% of them added, changed or removed): its settings (no tuning), its
        /// content model reused, the item-kNN lists and co-like counts updated by the ratings
        /// that changed. Trains in full, saying why, when it cannot.
        #[arg(long, value_name = "FROM_DIR")]
        incremental: Option<PathBuf>,
        /// Where the run is recorded.
        #[command(flatten)]
        tracking: TrackingArgs,
    },
    /// Recommend movies similar to a title (matched fuzzily: typos, missing articles, a year), or
    /// for a MovieLens user (--user) or a list of liked movies (--likes).
    Recommend {
        /// The movie title, e.g. "toy story" or "hamlet 1996" (several words are joined).
        #[arg(num_args = 0.., required_unless_present_any = ["user", "likes", "batch"])]
        title: Vec<String>,
        /// Recommend for this MovieLens user of the training data (rated movies excluded).
        #[arg(long, conflicts_with_all = ["title", "likes", "dislikes"])]
        user: Option<u32>,
        /// A movie the person liked (repeat for several); recommends for the list.
        #[arg(long, conflicts_with = "title")]
        likes: Vec<String>,
        /// A movie the person disliked (repeat for several), with --likes.
        #[arg(long, requires = "likes")]
        dislikes: Vec<String>,
        /// Score every movieId listed in FILE (one per line; blank lines and `#` comments are
        /// skipped), on all cores.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["title", "user", "likes"])]
        batch: Option<PathBuf>,
        /// Output of --batch: csv (`queryMovieId,rank,movieId,score`) or jsonl (one object per
        /// query).
        #[arg(long, default_value = "csv", requires = "batch")]
        format: String,
        /// Number of recommendations (1 to 100).
        #[arg(short, long, default_value_t = 10)]
        k: usize,
        /// Model: similar ("more like this": films a person would call similar; the default),
        /// collaborative ("fans also liked": what people who liked it watched next, the
        /// best-evaluated of item_knn, ease, als, svd), content (genres, decade, tags), hybrid,
        /// or one of item_knn, ease, als, svd by name.
        #[arg(long, default_value = "similar")]
        model: String,
        /// Which movies may be returned.
        #[command(flatten)]
        filter: FilterArgs,
        /// Nearest-neighbour index: exact, annoy or hnsw (they search the embedding models
        /// content, als, svd and hybrid; similar, item_knn and ease answer from lists computed
        /// exactly at training time, whatever the index, and report `lists`).
        #[arg(long, default_value = "exact")]
        index: String,
        /// Ask a running movierec server (`http://host:port`) instead of reading a model
        /// directory; the output is the same.
        #[arg(long, value_name = "URL", conflicts_with = "batch")]
        server: Option<String>,
        /// Model directory to read.
        #[arg(long, default_value = DEFAULT_MODEL_DIR)]
        model_dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Serve the JSON API and the web page (trains first if the model directory is missing).
    Serve {
        /// Model directory to serve.
        #[arg(long, default_value = DEFAULT_MODEL_DIR)]
        model_dir: PathBuf,
        /// MovieLens release (directory or .zip) to train on when the model directory is missing.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// How malformed rows are treated when training first.
        #[command(flatten)]
        validation: ValidationArgs,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to listen on.
        #[arg(long, default_value_t = 7860)]
        port: u16,
        /// Let pages of this origin call the API from a browser (CORS; repeat for several, `*`
        /// for any). Off by default: only the server's own page.
        #[arg(long, value_name = "ORIGIN")]
        cors_origin: Vec<String>,
        /// Requests answered at once; more get 503 with `Retry-After: 1`.
        #[arg(long, default_value_t = movierec::server::DEFAULT_MAX_IN_FLIGHT)]
        max_in_flight: usize,
        /// Connections served at once (never more than the open-file limit allows); further ones
        /// wait to be accepted.
        #[arg(long, value_name = "N", default_value_t = movierec::server::listener::DEFAULT_MAX_CONNECTIONS as u32, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        max_connections: u32,
        /// Seconds a connection may take to send a complete request head, counted from its
        /// opening or its previous answer: idle keep-alive connections close after it.
        #[arg(long, value_name = "SECONDS", default_value_t = movierec::server::listener::DEFAULT_IDLE_TIMEOUT.as_secs_f64(), value_parser = connection_timeout)]
        idle_timeout: f64,
        /// Seconds a write of an answer may make no progress (a client that stops reading)
        /// before the connection is closed.
        #[arg(long, value_name = "SECONDS", default_value_t = movierec::server::listener::DEFAULT_WRITE_TIMEOUT.as_secs_f64(), value_parser = connection_timeout)]
        write_timeout: f64,
        /// Where runs are recorded (shown on the Runs tab, `GET /api/runs`); also used when the
        /// server trains first.
        #[command(flatten)]
        tracking: TrackingArgs,
        /// The live database of profiles and ratings.
        #[command(flatten)]
        database: DatabaseArgs,
        /// Writes per second each token may make (a profile's ratings, the admin's writes);
        /// more get 429 with `Retry-After`. 0: no limit.
        #[arg(long, value_name = "N", default_value_t = movierec::server::DEFAULT_WRITE_RATE)]
        write_rate: f64,
        /// New profiles per second, from all clients together (`POST /api/users`). 0: no limit.
        #[arg(long, value_name = "N", default_value_t = movierec::server::DEFAULT_PROFILE_RATE)]
        profile_rate: f64,
        /// Retrain in the background (from a snapshot of the database, swapped in without
        /// downtime) once this many writes reached the database since the last training. 0: off.
        #[arg(long, value_name = "N", default_value_t = 1000)]
        retrain_after: u64,
        /// Also retrain this often while anything changed (`90s`, `30m`, `1h`, `1d`, or
        /// seconds). 0: off.
        #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = duration)]
        retrain_every: Duration,
        /// A model store shared by many servers (a volume every server mounts): serve the
        /// newest model published there, train into it under the database's trainer lease
        /// (one server at a time), and reload when another server publishes. Needs
        /// `--database postgres://…` (or one SQLite file on one machine); `--model-dir` is not
        /// used.
        #[arg(long, value_name = "DIR")]
        model_store: Option<PathBuf>,
        /// How long the trainer's lease lasts without renewal (renewed every third of it while
        /// training): after a trainer dies, another server takes its training over this long
        /// after its last renewal.
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
        trainer_lease: Duration,
    },
    /// Import a site's own movies and ratings into the live database (CSV with a header row,
    /// or JSON Lines for .jsonl files; see docs/DATABASE.md for the columns). All or nothing.
    Import {
        /// Movies: movieId,title[,year][,genres][,imdbId][,tmdbId] (genres separated by |).
        #[arg(long)]
        movies: Option<PathBuf>,
        /// Ratings: userId,movieId,rating[,timestamp] (0.5–5 in half stars).
        #[arg(long)]
        ratings: Option<PathBuf>,
        /// The model directory whose database this is (the default database is next to it).
        #[arg(long, default_value = DEFAULT_MODEL_DIR)]
        model_dir: PathBuf,
        /// The database to import into.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Write the live database out as a MovieLens CSV directory (movies, links, ratings, tags):
    /// what `train --data DIR` reads.
    Export {
        /// The directory to write (replaced atomically if it holds an export).
        #[arg(long)]
        out: PathBuf,
        /// The model directory whose database this is (the default database is next to it).
        #[arg(long, default_value = DEFAULT_MODEL_DIR)]
        model_dir: PathBuf,
        /// The database to export.
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Evaluate the models offline (time-ordered hold-out; see docs/EVALUATION.md).
    Evaluate {
        /// MovieLens release: a directory or the .zip as downloaded, of any layout.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// How malformed rows are treated.
        #[command(flatten)]
        validation: ValidationArgs,
        /// Only these models (comma-separated or repeated: item_knn, ease, als, svd, content,
        /// hybrid, collaborative); popularity is always reported. Default: all.
        #[arg(long, value_delimiter = ',', value_name = "MODEL")]
        models: Vec<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also measure incremental training (`train --incremental`): hold back this share of
        /// the training ratings (the latest; at most 0.05), train every model on the rest, add
        /// them back incrementally and compare each model with its full training.
        #[arg(long, value_name = "SHARE")]
        incremental: Option<f64>,
        /// Where the run is recorded.
        #[command(flatten)]
        tracking: TrackingArgs,
    },
    /// Load a MovieLens release and print what was read: rows per file, skipped rows by reason
    /// with `file:line` examples, and the time taken (the loading step of train and evaluate).
    Load {
        /// MovieLens release: a directory or the .zip as downloaded, of any layout.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// How malformed rows are treated.
        #[command(flatten)]
        validation: ValidationArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the recorded runs of `train` and `evaluate`, newest first.
    Runs {
        /// Only runs of this command: train or evaluate.
        #[arg(long)]
        kind: Option<String>,
        /// At most this many runs.
        #[arg(long)]
        limit: Option<usize>,
        /// Print JSON (one array of run records) instead of a table.
        #[arg(long)]
        json: bool,
        /// The local run store's directory [default: $MOVIEREC_RUNS_DIR, else ./runs].
        #[arg(long, value_name = "DIR")]
        runs_dir: Option<PathBuf>,
    },
    /// Benchmark every index backend and setting on raw vectors (little-endian f32 rows, as
    /// numpy's tofile writes): build seconds, queries per second, recall@10 against exact
    /// inner-product search, memory. For comparing with FAISS and Annoy on the same data.
    BenchIndex {
        /// The vectors to index.
        #[arg(long, value_name = "FILE")]
        base: PathBuf,
        /// The query vectors.
        #[arg(long, value_name = "FILE")]
        queries: PathBuf,
        /// Values per vector.
        #[arg(long, default_value_t = 64)]
        dim: usize,
        /// Neighbours per query.
        #[arg(long, default_value_t = 10)]
        k: usize,
        /// Threads for building and querying (queries run one at a time on each).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Similarity: inner_product (as FAISS IndexFlatIP and Annoy's dot), cosine or l2.
        #[arg(long, default_value = "inner_product")]
        metric: String,
        /// First write the clustered benchmark data set (docs/BENCHMARKS.md) to --base (86,537
        /// rows) and --queries (1,000 rows): unit vectors around 256 Gaussian centres, noise
        /// 0.5, seed 1.
        #[arg(long)]
        generate: bool,
        /// Print JSON lines (backend, params, build_s, qps, recall_at_10, memory_bytes, and
        /// open_s, verify_s on the row that built the index).
        #[arg(long)]
        json: bool,
    },
    /// Check a model directory: every file against the manifest's size and checksum, every
    /// index's structure (exit 1 naming the first problem).
    Verify {
        /// Model directory to check.
        #[arg(long, default_value = DEFAULT_MODEL_DIR)]
        model_dir: PathBuf,
    },
    /// Download a MovieLens release from GroupLens into DIR/NAME: resumable, checked against the
    /// MD5 checksum GroupLens publishes, unpacked atomically.
    ///
    /// Releases: ml-latest-small (100,836 ratings, 1 MB), ml-latest (33.8M ratings and the tag
    /// genome, 335 MB), ml-32m (32M, 239 MB), ml-25m (25M and the genome, 250 MB), ml-20m (20M
    /// and the genome, 190 MB), ml-1m and ml-100k (older .dat / u.data layouts).
    Download {
        /// The release, e.g. ml-latest or ml-25m.
        name: String,
        /// Directory the release directory is created in.
        #[arg(long, default_value = "data")]
        dir: PathBuf,
        /// Where the zips are served (the zip is URL/NAME.zip, its checksum URL/NAME.zip.md5).
        #[arg(
            long,
            value_name = "URL",
            env = "MOVIEREC_DOWNLOAD_BASE",
            default_value = movierec::download::DEFAULT_BASE_URL
        )]
        base_url: String,
    },
    /// Profile a MovieLens release: per file and column the type, count, missing share,
    /// distinct and most frequent values; then the ratings histogram, ratings per user and per
    /// movie (quantiles, long tail), genres, movies per decade, ratings per year and tags.
    Profile {
        /// MovieLens directory.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// Also write the profile as one self-contained HTML page with charts (works offline).
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Write a synthetic MovieLens release for benchmarks: made-up movies, users, ratings
    /// (latent-factor model) and tags in the ml-latest CSV layout, deterministic for a seed.
    /// Scale 1 is ml-latest's size: 86,537 movies, 330,975 users, about 33.9M ratings (about
    /// 900 MB); the scale multiplies movies and users alike. Not real data: use it to measure
    /// speed and memory, never quality.
    Synth {
        /// Directory to write (replaced atomically if it holds a MovieLens release).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Size relative to ml-latest (0 < S <= 10), for movies and users alike.
        #[arg(long, value_name = "S", default_value_t = 1.0)]
        scale: f64,
        /// Seed of every random draw (7 gives the rating matrix of `cargo bench --bench als`).
        #[arg(long, default_value_t = movierec::devtools::synth::DEFAULT_SEED)]
        seed: u64,
        /// How much a user's taste picks the movies they rate (0 to 16): 0 draws by popularity
        /// alone (every benchmark figure so far), 4 keeps a drawn movie 14-86% of the time by
        /// how much the user's factors like it.
        #[arg(long, value_name = "T", default_value_t = 0.0)]
        taste: f64,
    },
    /// Check that a running server answers its health endpoint (exit 0 if it does; for
    /// container health checks).
    Health {
        /// The health URL (plain HTTP).
        #[arg(long, default_value = "http://127.0.0.1:7860/api/health")]
        url: String,
    },
}

/// Where the live database is.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// The live database of profiles, ratings and added movies: `sqlite:PATH` (or just PATH)
    /// [default: state/movierec.db beside the model directory]; `postgres://USER@HOST:PORT/DB`
    /// for a PostgreSQL database many servers share (the password from the URL or
    /// `PGPASSWORD`); `none` serves without one (no profiles).
    #[arg(long, value_name = "sqlite:PATH|postgres://…")]
    pub database: Option<String>,
}

impl DatabaseArgs {
    /// The database for `model_dir`, or `None` for `none`.
    pub fn location(
        &self,
        model_dir: &std::path::Path,
    ) -> anyhow::Result<Option<movierec::database::Location>> {
        Ok(movierec::database::Location::parse(
            self.database.as_deref(),
            model_dir,
        )?)
    }
}

/// How the commands that load a release treat malformed rows.
#[derive(Debug, Args)]
pub struct ValidationArgs {
    /// Fail on the first malformed row (naming file:line) instead of skipping it; without it,
    /// skipped rows are counted by reason in the summary printed after loading.
    #[arg(long)]
    pub strict: bool,
}

impl ValidationArgs {
    /// The library's loading options: a progress bar when stderr is a terminal, the summary on
    /// stderr.
    pub fn load_options(&self) -> movierec::data::LoadOptions {
        movierec::data::LoadOptions {
            strict: self.strict,
            progress: true,
            summary: true,
        }
    }
}

/// Which movies a recommendation may return (all of them by default).
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only movies of at least one of these genres (repeat or comma-separate:
    /// `--genre Comedy,Drama`).
    #[arg(long = "genre", value_name = "GENRE", value_delimiter = ',')]
    pub genres: Vec<String>,
    /// Never movies of these genres.
    #[arg(long = "exclude-genre", value_name = "GENRE", value_delimiter = ',')]
    pub exclude_genres: Vec<String>,
    /// Only movies released in or after this year.
    #[arg(long, value_name = "YEAR")]
    pub year_min: Option<u16>,
    /// Only movies released in or before this year.
    #[arg(long, value_name = "YEAR")]
    pub year_max: Option<u16>,
    /// Only movies with at least this many ratings (default: 5 for movies like a well-known
    /// movie, one with 20 ratings or more, else 0; 0 asks for every movie).
    #[arg(long, value_name = "N")]
    pub min_ratings: Option<u32>,
    /// Never these movies (MovieLens ids; repeat or comma-separate).
    #[arg(long, value_name = "MOVIE_ID", value_delimiter = ',')]
    pub exclude: Vec<u32>,
}

impl FilterArgs {
    /// The library's filter.
    pub fn filter(self) -> movierec::catalog::MovieFilter {
        movierec::catalog::MovieFilter {
            genres: self.genres,
            exclude_genres: self.exclude_genres,
            year_min: self.year_min,
            year_max: self.year_max,
            min_ratings: self.min_ratings,
            exclude: self.exclude,
        }
    }
}

/// Where `train` and `evaluate` record their runs.
#[derive(Debug, Args)]
pub struct TrackingArgs {
    /// The local run store's directory [default: $MOVIEREC_RUNS_DIR, else ./runs].
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    /// Also log the run to this MLflow tracking server [default: $MLFLOW_TRACKING_URI]; if it
    /// cannot be reached the run is still recorded locally, with a warning.
    #[arg(long, value_name = "URI")]
    pub mlflow: Option<String>,
    /// The MLflow experiment [default: $MLFLOW_EXPERIMENT_NAME, else movierec].
    #[arg(long, value_name = "NAME")]
    pub experiment: Option<String>,
}

impl TrackingArgs {
    /// The library's view of these options.
    pub fn tracking(&self) -> movierec::tracking::commands::Tracking {
        movierec::tracking::commands::Tracking {
            runs_dir: self.runs_dir.clone(),
            mlflow_uri: self.mlflow.clone(),
            experiment: self.experiment.clone(),
        }
    }
}

/// `--tune-budget`: a number of seconds, 0 to 86,400.
fn tune_budget(text: &str) -> Result<f64, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.0..=86_400.0).contains(&seconds) {
        return Err(format!("{seconds} is outside 0–86400 seconds"));
    }
    Ok(seconds)
}

/// A connection timeout: 0.1–3600 seconds.
/// A duration: a number with an optional unit `s`, `m`, `h` or `d` (seconds without one).
fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 30m, 1h or 1d"))?;
    let seconds = value * scale;
    if !(0.0..=365.0 * 86_400.0).contains(&seconds) {
        return Err(format!("{text:?} is outside 0 to 365 days"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn connection_timeout(text: &str) -> Result<f64, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.1..=3600.0).contains(&seconds) {
        return Err(format!("{seconds} is outside 0.1–3600 seconds"));
    }
    Ok(seconds)
}
