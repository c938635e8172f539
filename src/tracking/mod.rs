//! Experiment tracking: every `movierec train` and `movierec evaluate` run is recorded with its
//! parameters, metrics, dataset fingerprint, code version, duration and host.
//!
//! A run is built as a [`RunRecord`] while the command works ([`RunRecord::start`], then
//! [`param`](RunRecord::param), [`metric`](RunRecord::metric), [`tag`](RunRecord::tag) and
//! finally [`finish`](RunRecord::finish)), then handed to [`record`], which
//!
//! 1. logs it to an MLflow tracking server when one is configured ([`MlflowClient`], the REST
//!    API 2.0 over blocking HTTP). A failure to reach MLflow is a *warning*, not a lost run;
//! 2. appends it to the local [`RunStore`] (`runs.jsonl` in a directory chosen by the caller).
//!    A failure there *is* an error.
//!
//! # Why a JSON Lines file and not SQLite
//!
//! The store only ever appends one small record per run and lists a few thousand at most, so a
//! database buys nothing here, while `rusqlite` with `bundled` would add a C build of SQLite to
//! every clean build and a binary file that cannot be read with `jq`, `grep` or a text editor,
//! nor repaired by hand. An append-only text file of whole lines, each written with a
//! single `write_all` under an exclusive advisory lock (`flock`), is safe against concurrent
//! runs, and its one failure mode, a line torn by a crash, is detected and skipped on reading
//! (see [`store`]).

pub mod commands;
pub mod mlflow;
pub mod store;

pub use mlflow::MlflowClient;
pub use store::{Listing, RunFilter, RunStore, SkippedLine};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Instant;

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while recording a run, each variant naming the thing at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file of the run store failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The run store cannot be used, or a record cannot be stored.
    #[error("{location}: {message}")]
    Store {
        /// The store's directory or file, or `file:line`.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// An MLflow tracking server could not be reached or refused a request.
    #[error("MLflow {endpoint}: {}{message}", error_code.as_ref().map(|c| format!("{c}: ")).unwrap_or_default())]
    Mlflow {
        /// The full URL of the request (credentials removed).
        endpoint: String,
        /// The HTTP status, when the server answered.
        status: Option<u16>,
        /// MLflow's `error_code` (e.g. `RESOURCE_DOES_NOT_EXIST`), when it sent one.
        error_code: Option<String>,
        /// MLflow's `message`, or what went wrong on the way.
        message: String,
    },
    /// A setting (tracking URI, experiment name, …) is invalid; the message names it.
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A run-store error at `location` (a directory, a file, or `file:line`).
    pub fn store(location: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Store {
            location: location.into(),
            message: message.into(),
        }
    }

    /// MLflow's `error_code`, if this is an error answered by an MLflow server.
    pub fn mlflow_error_code(&self) -> Option<&str> {
        match self {
            Error::Mlflow { error_code, .. } => error_code.as_deref(),
            _ => None,
        }
    }
}

/// Which command a run was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// `movierec train`.
    Train,
    /// `movierec evaluate`.
    Evaluate,
}

impl RunKind {
    /// The name used in records and on the command line: `train` or `evaluate`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Train => "train",
            RunKind::Evaluate => "evaluate",
        }
    }
}

impl fmt::Display for RunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "train" => Ok(RunKind::Train),
            "evaluate" => Ok(RunKind::Evaluate),
            other => Err(Error::Config(format!(
                "unknown run kind {other:?}: expected \"train\" or \"evaluate\""
            ))),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// The command completed.
    Finished,
    /// The command stopped on an error.
    Failed,
}

impl RunStatus {
    /// The name used in records: `finished` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The data set a run read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = RunDataset)]
pub struct DatasetInfo {
    /// The data path as given to the command.
    pub path: String,
    /// A fingerprint of its contents (computed by the caller).
    pub fingerprint: String,
}

/// Where a run was also logged in MLflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MlflowRun {
    /// The tracking server's URI, without credentials.
    pub tracking_uri: String,
    /// The MLflow experiment id.
    pub experiment_id: String,
    /// The MLflow run id.
    pub run_id: String,
}

/// One recorded run: one line of `runs.jsonl`.
///
/// Build it with [`RunRecord::start`] when the command starts, add parameters, metrics and tags
/// as they become known (with the chaining methods, or through the public maps), and
/// [`finish`](RunRecord::finish) it before handing it to [`record`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunRecord {
    /// Unique id: 32 lowercase hex digits, the first 16 the start time in nanoseconds (so ids
    /// sort by start time), the last 16 random.
    pub id: String,
    /// Which command ran.
    pub kind: RunKind,
    /// When it started, RFC 3339 in UTC with milliseconds, e.g. `2026-05-01T12:00:00.123Z`.
    pub started_at: String,
    /// Wall-clock duration in seconds.
    pub duration_seconds: f64,
    /// How it ended. [`RunRecord::start`] sets `failed` until [`RunRecord::finish`] says
    /// otherwise, so a record stored from an error path never claims success.
    pub status: RunStatus,
    /// The machine it ran on.
    pub host: String,
    /// The program's version, as given by the caller (e.g. `0.1.0 (git abc1234)`).
    pub code_version: String,
    /// The data set it read.
    pub dataset: DatasetInfo,
    /// Parameters (hyperparameters, options), by name.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Metrics, by name. Non-finite values are stored as the strings `"NaN"`, `"Infinity"` and
    /// `"-Infinity"` (JSON has no such numbers).
    #[serde(default, with = "metric_map")]
    #[schema(schema_with = metric_map::schema)]
    pub metrics: BTreeMap<String, f64>,
    /// Free-form tags, by name.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Set when the run was also logged to MLflow.
    #[serde(default)]
    pub mlflow: Option<MlflowRun>,
    /// Monotonic start, for the duration; not stored, and ignored by `==`.
    #[serde(skip)]
    clock: StartClock,
}

/// When a run started, by the monotonic clock; every value equals every other, so that records
/// compare by their stored fields only.
#[derive(Debug, Clone, Copy, Default)]
struct StartClock(Option<Instant>);

impl PartialEq for StartClock {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl RunRecord {
    /// A new run of `kind`, starting now on this host, with status `failed` until
    /// [`finish`](RunRecord::finish)ed.
    pub fn start(
        kind: RunKind,
        code_version: impl Into<String>,
        dataset_path: impl Into<String>,
        fingerprint: impl Into<String>,
    ) -> Self {
        RunRecord {
            id: new_run_id(),
            kind,
            started_at: crate::clock::now_rfc3339(),
            duration_seconds: 0.0,
            status: RunStatus::Failed,
            host: hostname(),
            code_version: code_version.into(),
            dataset: DatasetInfo {
                path: dataset_path.into(),
                fingerprint: fingerprint.into(),
            },
            params: BTreeMap::new(),
            metrics: BTreeMap::new(),
            tags: BTreeMap::new(),
            mlflow: None,
            clock: StartClock(Some(Instant::now())),
        }
    }

    /// Adds (or replaces) parameter `key`.
    pub fn param(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.params.insert(key.into(), value.to_string());
        self
    }

    /// Adds (or replaces) metric `key`.
    pub fn metric(mut self, key: impl Into<String>, value: f64) -> Self {
        self.metrics.insert(key.into(), value);
        self
    }

    /// Adds (or replaces) tag `key`.
    pub fn tag(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.tags.insert(key.into(), value.to_string());
        self
    }

    /// Sets the final status and the duration since [`start`](RunRecord::start). On a record
    /// read back from a store (which has no start instant) the stored duration is kept.
    pub fn finish(mut self, status: RunStatus) -> Self {
        self.status = status;
        if let Some(clock) = self.clock.0 {
            self.duration_seconds = clock.elapsed().as_secs_f64();
        }
        self
    }

    /// The start time as milliseconds since the Unix epoch, if `started_at` parses as RFC 3339.
    pub fn started_at_unix_ms(&self) -> Option<i64> {
        let t = time::OffsetDateTime::parse(
            &self.started_at,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()?;
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
    }
}

/// Records a finished run: logs it to MLflow first when `mlflow` is given, filling
/// `record.mlflow`, then appends it to `store`, and returns the record as stored.
///
/// A failure to log to MLflow is reported through `warn` (one message naming the tracking URI
/// and the cause) and the run is still stored locally. Failing to append to the store is an
/// error.
pub fn record(
    store: &RunStore,
    mlflow: Option<&MlflowClient>,
    mut record: RunRecord,
    warn: &mut dyn FnMut(String),
) -> Result<RunRecord> {
    if let Some(client) = mlflow {
        match client.log_run(&record) {
            Ok(run) => record.mlflow = Some(run),
            Err(e) => warn(format!(
                "run {} was not logged to MLflow at {} ({e}); it is recorded locally only",
                record.id,
                client.tracking_uri()
            )),
        }
    }
    store.append(&record)?;
    Ok(record)
}

/// A new run id: 16 hex digits of nanoseconds since the epoch, then 16 hex digits hashed from
/// per-process random keys, the process id and a counter.
pub fn new_run_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};

    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // RandomState is seeded from the OS's random source once per thread.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(nanos);
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{nanos:016x}{:016x}", hasher.finish())
}

/// This machine's name: `$HOSTNAME`, else the kernel's host name, else `/etc/hostname`, else
/// `unknown`.
pub fn hostname() -> String {
    let env = std::env::var("HOSTNAME").ok();
    let files = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .into_iter()
        .filter_map(|path| std::fs::read_to_string(path).ok());
    env.into_iter()
        .chain(files)
        .map(|name| name.trim().to_string())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// (De)serialises metric maps so that non-finite values survive JSON.
mod metric_map {
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    /// The OpenAPI schema of the map as stored: each value a number, or the name of a
    /// non-finite one.
    pub(super) fn schema() -> utoipa::openapi::Object {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        let value = OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["NaN", "Infinity", "-Infinity"])),
            );
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(utoipa::openapi::Schema::OneOf(value.build())))
            .build()
    }

    struct Value(f64);

    impl Serialize for Value {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match non_finite_name(self.0) {
                Some(name) => s.serialize_str(name),
                None => s.serialize_f64(self.0),
            }
        }
    }

    /// The proto3 JSON spelling of a non-finite value (MLflow accepts it too).
    pub(crate) fn non_finite_name(v: f64) -> Option<&'static str> {
        if v.is_nan() {
            Some("NaN")
        } else if v == f64::INFINITY {
            Some("Infinity")
        } else if v == f64::NEG_INFINITY {
            Some("-Infinity")
        } else {
            None
        }
    }

    pub fn serialize<S: Serializer>(map: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(map.len()))?;
        for (key, value) in map {
            out.serialize_entry(key, &Value(*value))?;
        }
        out.end()
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        let raw = BTreeMap::<String, Raw>::deserialize(d)?;
        raw.into_iter()
            .map(|(key, value)| {
                let value = match value {
                    Raw::Number(v) => v,
                    Raw::Text(text) => match text.as_str() {
                        "NaN" => f64::NAN,
                        "Infinity" => f64::INFINITY,
                        "-Infinity" => f64::NEG_INFINITY,
                        _ => {
                            return Err(serde::de::Error::custom(format!(
                                "metric {key:?} has value {text:?}, expected a number"
                            )))
                        }
                    },
                };
                Ok((key, value))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_digits_and_unique() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_run_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids
            .iter()
            .all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())));
    }

    #[test]
    fn builder_sets_fields_and_status() {
        let run = RunRecord::start(RunKind::Train, "0.1.0", "data/ml", "abc");
        assert_eq!(run.status, RunStatus::Failed);
        let run = run
            .param("dim", 64)
            .metric("ndcg@10", 0.5)
            .tag("note", "x")
            .finish(RunStatus::Finished);
        assert_eq!(run.status, RunStatus::Finished);
        assert_eq!(run.params["dim"], "64");
        assert!(run.duration_seconds >= 0.0);
        assert!(run.started_at.ends_with('Z'), "{}", run.started_at);
        assert!(run.started_at_unix_ms().is_some());
        assert!(!run.host.is_empty());
    }

    #[test]
    fn non_finite_metrics_round_trip_through_json() {
        let run = RunRecord::start(RunKind::Evaluate, "v", "d", "f")
            .metric("nan", f64::NAN)
            .metric("inf", f64::INFINITY)
            .metric("ninf", f64::NEG_INFINITY)
            .metric("x", 1.5);
        let json = serde_json::to_string(&run).unwrap();
        assert!(json.contains(r#""nan":"NaN""#), "{json}");
        let back: RunRecord = serde_json::from_str(&json).unwrap();
        let finite = |mut r: RunRecord| {
            r.metrics.retain(|_, v| v.is_finite());
            r
        };
        assert_eq!(finite(back.clone()), finite(run.clone()));
        assert!(back.metrics["nan"].is_nan());
        assert_eq!(back.metrics["inf"], f64::INFINITY);
        assert_eq!(back.metrics["ninf"], f64::NEG_INFINITY);
        assert_eq!(back.metrics["x"], 1.5);
        let bad = json.replace(r#""NaN""#, r#""lots""#);
        let err = serde_json::from_str::<RunRecord>(&bad).unwrap_err();
        assert!(err.to_string().contains("\"nan\""), "{err}");
    }

    #[test]
    fn kind_parses_and_displays() {
        assert_eq!("train".parse::<RunKind>().unwrap(), RunKind::Train);
        assert_eq!(RunKind::Evaluate.to_string(), "evaluate");
        assert!("fit".parse::<RunKind>().is_err());
    }
}
