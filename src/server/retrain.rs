//! Retraining in the background: when `--retrain-after` new writes have reached the database,
//! or every `--retrain-every` while anything changed, the server exports a snapshot of the
//! database (one read transaction), trains on it into the served model directory (replaced
//! atomically) and swaps the new model in with the zero-downtime reload ([`super::reload`]).
//!
//! With a model store shared by many servers (`--model-store`, [`super::cluster`]), the training
//! runs under the database's trainer lease instead, into a new model directory of the store,
//! which is published for every server to reload.
//!
//! Never two trainings at once; a failed training leaves the old model serving, and is recorded
//! as a failed run. `GET /api/admin/training` shows the state; `POST /api/admin/training` starts
//! one now.
//!
//! The training itself is a function the binary hands in ([`TrainFn`]): serving does not depend
//! on the training code (docs/ARCHITECTURE.md's layers), and the binary records the run where
//! `train` records it (the run store, MLflow).

use super::auth::require_admin;
use super::error::{ApiError, ErrorBody, ServerErrors};
use super::ServerState;
use crate::database::Database;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// Calls `snapshot` for the release directory to train on (the database's export), trains on it
/// into the model directory `out`, records the run (with `trigger` as a parameter; a failed
/// snapshot is a failed run too) and returns the recorded run's id, or the failure.
pub type TrainFn = Arc<
    dyn Fn(&dyn Fn() -> crate::Result<PathBuf>, &Path, &str) -> crate::Result<String> + Send + Sync,
>;

/// When to retrain, and how.
#[derive(Clone)]
pub struct RetrainConfig {
    /// Retrain once this many writes (ratings stored or removed, movies added or changed) have
    /// reached the database since the last training started; 0: never on a count.
    pub after: u64,
    /// Retrain this often while anything changed; `None`: never on a clock.
    pub every: Option<Duration>,
    /// The training.
    pub train: TrainFn,
}

impl std::fmt::Debug for RetrainConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetrainConfig")
            .field("after", &self.after)
            .field("every", &self.every)
            .finish()
    }
}

/// `GET /api/admin/training`: what the background training is doing and did last.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrainingStatus {
    /// `idle`, `training`, or `off` (no database, or neither trigger set).
    pub state: String,
    /// When the training under way started (RFC 3339).
    pub since: Option<String>,
    /// Writes that reached the database since the last training started.
    pub changes: u64,
    /// `--retrain-after` (0: off).
    pub retrain_after: u64,
    /// `--retrain-every` in seconds (null: off).
    pub retrain_every_seconds: Option<f64>,
    /// The last training that finished.
    pub last: Option<LastTraining>,
    /// With a shared model store (`--model-store`): the model served here (its id in the
    /// store).
    pub model_id: Option<String>,
    /// With a shared model store: this server's name as a trainer.
    pub server: Option<String>,
    /// With a shared model store: the trainer's lease (who trains now, if anyone).
    pub lease: Option<crate::database::Lease>,
}

/// How a background training ended.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastTraining {
    /// `finished` (the new model is served) or `failed` (the old one still is).
    pub status: String,
    /// What started it: `changes` (`--retrain-after`), `schedule` (`--retrain-every`) or
    /// `request` (`POST /api/admin/training`).
    pub trigger: String,
    /// When it started and ended (RFC 3339).
    pub started_at: String,
    /// When it ended.
    pub finished_at: String,
    /// Seconds from start to the swap (or the failure).
    pub seconds: f64,
    /// The run recorded for it (`movierec runs`, the Runs tab), when it was recorded.
    pub run_id: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// The background trainer's state, shared by the handlers.
#[derive(Default)]
pub struct Retrainer {
    config: Option<RetrainConfig>,
    changes: AtomicU64,
    running: AtomicBool,
    status: Mutex<(Option<String>, Option<LastTraining>)>,
}

impl std::fmt::Debug for Retrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retrainer")
            .field("config", &self.config)
            .finish()
    }
}

impl Retrainer {
    /// A trainer following `config` (`None`: off).
    pub fn new(config: Option<RetrainConfig>) -> Retrainer {
        Retrainer {
            config,
            ..Retrainer::default()
        }
    }

    fn status(&self) -> TrainingStatus {
        let (since, last) = self.status.lock().map(|s| s.clone()).unwrap_or_default();
        let on = self
            .config
            .as_ref()
            .is_some_and(|c| c.after > 0 || c.every.is_some());
        TrainingStatus {
            state: if self.running.load(Ordering::SeqCst) {
                "training"
            } else if on {
                "idle"
            } else {
                "off"
            }
            .into(),
            since,
            changes: self.changes.load(Ordering::SeqCst),
            retrain_after: self.config.as_ref().map_or(0, |c| c.after),
            retrain_every_seconds: self
                .config
                .as_ref()
                .and_then(|c| c.every)
                .map(|d| d.as_secs_f64()),
            last,
            model_id: None,
            server: None,
            lease: None,
        }
    }
}

/// The status, with the model store's part when there is one.
async fn full_status(state: &ServerState) -> TrainingStatus {
    let mut status = state.retrainer.status();
    if let (Some(cluster), Some(db)) = (&state.cluster, &state.database) {
        status.model_id = state
            .model_dir
            .lock()
            .await
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        status.server = Some(cluster.holder.clone());
        status.lease = db.lease().await.ok();
    }
    status
}

/// Counts `n` writes that reached the database, and starts a training when they are enough.
pub(super) fn note_writes(state: &ServerState, n: u64) {
    let retrainer = &state.retrainer;
    let total = retrainer.changes.fetch_add(n, Ordering::SeqCst) + n;
    if let Some(config) = &retrainer.config {
        if config.after > 0 && total >= config.after {
            start(state, "changes");
        }
    }
}

/// Starts a training unless one is under way here; false if one was. With a model store, the
/// training first takes the trainer's lease (and quietly does nothing when another server
/// holds it: that server's model will hold these writes too).
pub(super) fn start(state: &ServerState, trigger: &'static str) -> bool {
    let retrainer = state.retrainer.clone();
    let (Some(config), Some(db)) = (retrainer.config.clone(), state.database.clone()) else {
        return false;
    };
    if retrainer.running.swap(true, Ordering::SeqCst) {
        return false;
    }
    let started_at = crate::clock::now_rfc3339();
    if let Ok(mut status) = retrainer.status.lock() {
        status.0 = Some(started_at.clone());
    }
    // The writes counted so far are in this training's snapshot (or later, which is harmless).
    let counted = retrainer.changes.load(Ordering::SeqCst);
    let state = state.clone();
    tokio::spawn(async move {
        let clock = Instant::now();
        let outcome = match state.cluster.clone() {
            Some(cluster) => into_store(&state, &db, &cluster, config.train.clone(), trigger).await,
            None => in_place(&state, &db, config.train.clone(), trigger)
                .await
                .map(Some),
        };
        let outcome = match outcome {
            Ok(Some(run_id)) => Ok(run_id),
            Err(e) => Err(e),
            Ok(None) => {
                // Another server is training.
                if let Ok(mut status) = retrainer.status.lock() {
                    status.0 = None;
                }
                retrainer.running.store(false, Ordering::SeqCst);
                return;
            }
        };
        retrainer.changes.fetch_sub(
            counted.min(retrainer.changes.load(Ordering::SeqCst)),
            Ordering::SeqCst,
        );
        let last = LastTraining {
            status: if outcome.is_ok() {
                "finished"
            } else {
                "failed"
            }
            .into(),
            trigger: trigger.into(),
            started_at,
            finished_at: crate::clock::now_rfc3339(),
            seconds: clock.elapsed().as_secs_f64(),
            run_id: outcome.as_ref().ok().cloned(),
            error: outcome.as_ref().err().map(|e| e.to_string()),
        };
        match &outcome {
            Ok(_) => eprintln!(
                "movierec: retrained ({trigger}) in {:.1} s; the new model is served",
                last.seconds
            ),
            Err(e) => eprintln!(
                "movierec: retraining ({trigger}) failed, the old model keeps serving: {e}"
            ),
        }
        if let Ok(mut status) = retrainer.status.lock() {
            *status = (None, Some(last));
        }
        retrainer.running.store(false, Ordering::SeqCst);
    });
    true
}

/// Exports a snapshot of `db` into `snapshot` now (the database's client is async) and hands
/// the training a function that returns it; a failed export becomes the training's failure, so
/// the run is recorded either way.
async fn exported(db: &Database, snapshot: PathBuf) -> impl Fn() -> crate::Result<PathBuf> {
    let taken = Mutex::new(Some(db.export(&snapshot).await.map(|_| snapshot)));
    move || {
        taken
            .lock()
            .ok()
            .and_then(|mut e| e.take())
            .unwrap_or_else(|| {
                Err(crate::Error::invalid(
                    "training",
                    "the snapshot was taken once",
                ))
            })
    }
}

/// One server alone: trains into the served model directory (replaced atomically) and swaps
/// the new model in.
async fn in_place(
    state: &ServerState,
    db: &Database,
    train: TrainFn,
    trigger: &'static str,
) -> crate::Result<String> {
    let model_dir = state.model_dir.lock().await.clone();
    let snapshot = db.scratch_dir(&model_dir).join("snapshot");
    let export = exported(db, snapshot.clone()).await;
    let trained = {
        let model_dir = model_dir.clone();
        tokio::task::spawn_blocking(move || train(&export, &model_dir, trigger))
            .await
            .unwrap_or_else(|e| Err(crate::Error::invalid("training", format!("panicked: {e}"))))
    };
    let _ = snapshot_cleanup(&snapshot);
    let run_id = trained?;
    super::reload::reload(state, Some(model_dir)).await?;
    Ok(run_id)
}

/// Many servers: under the trainer's lease, trains a new model into the store, publishes it
/// (the others reload it when announced) and serves it here at once. `None`: another server
/// holds the lease.
async fn into_store(
    state: &ServerState,
    db: &Database,
    cluster: &super::cluster::ClusterConfig,
    train: TrainFn,
    trigger: &'static str,
) -> crate::Result<Option<String>> {
    // The snapshot is local to this server (not on the shared volume).
    let snapshot = local_snapshot_dir();
    let db_for_export = db.clone();
    let handle = tokio::runtime::Handle::current();
    let outcome = super::cluster::train_and_publish(db, cluster, trigger, {
        let snapshot = snapshot.clone();
        move |out: &Path| {
            // Inside the lease: only its holder exports.
            let export = handle.block_on(exported(&db_for_export, snapshot));
            train(&export, out, trigger)
        }
    })
    .await;
    let _ = snapshot_cleanup(&snapshot);
    match outcome? {
        super::cluster::Outcome::Busy(holder) => {
            tracing::info!("not retraining ({trigger}): {holder} is training");
            Ok(None)
        }
        super::cluster::Outcome::Published { model_id, run_id } => {
            super::reload::reload(state, Some(cluster.model_dir(&model_id))).await?;
            Ok(Some(run_id))
        }
    }
}

/// A model published by another server is served now: the writes counted here are in it.
pub(super) fn published(state: &ServerState) {
    state.retrainer.changes.store(0, Ordering::SeqCst);
}

/// The directory a server sharing a model store exports its database into before it trains:
/// `movierec-snapshot-PID` in the system's temporary directory, beside a lock file this
/// process holds locked while it runs (`movierec-snapshot-PID.lock`). The snapshots of servers
/// that were killed while training are removed first (each is a copy of the database's
/// ratings): a snapshot is theirs when its lock file can be locked, so the check holds across
/// PID namespaces (containers sharing a temporary directory); one without a lock file (written
/// by an older version) when its process no longer runs. Where that name's lock is held by
/// another server (one in another container with the same PID), this one takes
/// `movierec-snapshot-PID-1`, `-2`… instead: two servers never share a snapshot.
pub fn local_snapshot_dir() -> PathBuf {
    static OWN: std::sync::OnceLock<(PathBuf, Option<std::fs::File>)> = std::sync::OnceLock::new();
    let temp = std::env::temp_dir();
    let (own, _held) = OWN.get_or_init(|| claim_snapshot_name(&temp, std::process::id()));
    remove_dead_snapshots(&temp, own);
    own.clone()
}

/// How many names `claim_snapshot_name` tries before it shares the first.
const SNAPSHOT_NAMES: u32 = 64;

/// The first of `movierec-snapshot-PID`, `…-PID-1`, `…-PID-2`… in `dir` whose lock file this
/// process can lock, with that file (held while it runs). If none can be (an unwritable
/// directory), the first name without a lock: exports still work, only the clean-up of a
/// killed server's snapshot then waits for its PID to end.
fn claim_snapshot_name(dir: &Path, pid: u32) -> (PathBuf, Option<std::fs::File>) {
    for n in 0..SNAPSHOT_NAMES {
        let name = match n {
            0 => format!("{SNAPSHOT_PREFIX}{pid}"),
            n => format!("{SNAPSHOT_PREFIX}{pid}-{n}"),
        };
        let snapshot = dir.join(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_file(&snapshot));
        let Ok(file) = file else { break };
        match file.try_lock() {
            Ok(()) => return (snapshot, Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => continue,
            // Locks not supported here: this name, as before there were locks.
            Err(std::fs::TryLockError::Error(_)) => return (snapshot, None),
        }
    }
    (dir.join(format!("{SNAPSHOT_PREFIX}{pid}")), None)
}

const SNAPSHOT_PREFIX: &str = "movierec-snapshot-";

/// The lock file of the snapshot directory `dir`.
fn lock_file(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Removes the snapshot directories (and lock files) in `dir` of servers that no longer run,
/// quietly: one that cannot be removed (another user's) is left, and so is `own`.
fn remove_dead_snapshots(dir: &Path, own: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    // `PID` or `PID-N`: the name of the snapshot and the PID of the server that took it.
    let mut names: Vec<(String, u32)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let rest = name.to_str()?.strip_prefix(SNAPSHOT_PREFIX)?;
            let rest = rest.strip_suffix(".lock").unwrap_or(rest);
            let (pid, n) = rest.split_once('-').unwrap_or((rest, "1"));
            let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            (all_digits(pid) && all_digits(n)).then_some(())?;
            Some((rest.to_string(), pid.parse().ok()?))
        })
        .filter(|(name, _)| dir.join(format!("{SNAPSHOT_PREFIX}{name}")) != own)
        .collect();
    names.sort_unstable();
    names.dedup();
    for (name, pid) in names {
        let snapshot = dir.join(format!("{SNAPSHOT_PREFIX}{name}"));
        let lock = lock_file(&snapshot);
        let gone = match std::fs::File::open(&lock) {
            // Locked until the directory is gone: a server starting with the same PID
            // meanwhile waits for nothing (its own file is created anew).
            Ok(file) => file.try_lock().is_ok().then_some(Some(file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (!process_runs(pid)).then_some(None)
            }
            Err(_) => None,
        };
        if let Some(_held) = gone {
            if snapshot.is_dir() {
                let _ = std::fs::remove_dir_all(&snapshot);
            }
            let _ = std::fs::remove_file(&lock);
        }
    }
}

/// Whether a process `pid` exists (on a system where that cannot be told: yes, so that nothing
/// is removed).
fn process_runs(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return true;
        };
        if pid <= 0 {
            return true;
        }
        // SAFETY: signal 0 only checks that the process exists and may be signalled.
        if unsafe { libc::kill(pid, 0) } == 0 {
            return true;
        }
        // EPERM: it exists but belongs to someone else.
        std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

fn snapshot_cleanup(snapshot: &PathBuf) -> std::io::Result<()> {
    if snapshot.join("ratings.csv").is_file() {
        std::fs::remove_dir_all(snapshot)?;
    }
    Ok(())
}

/// Retrains every `--retrain-every` while anything changed, until the server stops.
pub async fn on_schedule(state: ServerState) {
    let Some(every) = state.retrainer.config.as_ref().and_then(|c| c.every) else {
        return;
    };
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        ticks.tick().await;
        if state.retrainer.changes.load(Ordering::SeqCst) > 0 {
            start(&state, "schedule");
        }
    }
}

/// What the background training is doing, and how the last one ended.
#[utoipa::path(
    get,
    path = "/api/admin/training",
    tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The state", body = TrainingStatus),
        (status = 401, description = "No or a wrong admin token (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "The admin routes are off without `MOVIEREC_ADMIN_TOKEN` (`not_found`)", body = ErrorBody),
        ServerErrors,
    )
)]
pub(super) async fn status(
    State(state): State<ServerState>,
    headers: HeaderMap,
) -> Result<Json<TrainingStatus>, ApiError> {
    require_admin(&state, &headers)?;
    Ok(Json(full_status(&state).await))
}

/// Starts a background training now (from a snapshot of the database, swapped in when done).
#[utoipa::path(
    post,
    path = "/api/admin/training",
    tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 202, description = "A training started; follow it with `GET /api/admin/training`", body = TrainingStatus),
        (status = 401, description = "No or a wrong admin token (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "The admin routes are off, or the server has no database or no training (`not_found`)", body = ErrorBody),
        (status = 409, description = "A training is under way (`training_running`)", body = ErrorBody),
        ServerErrors,
    )
)]
pub(super) async fn start_now(
    State(state): State<ServerState>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<TrainingStatus>), ApiError> {
    require_admin(&state, &headers)?;
    if state.database.is_none() || state.retrainer.config.is_none() {
        return Err(ApiError::not_found(
            "this server cannot retrain: it runs without a database",
        ));
    }
    if let (Some(cluster), Some(db)) = (&state.cluster, &state.database) {
        let lease = db.lease().await?;
        let abandoned = lease.abandoned();
        if let Some(holder) = lease.holder.filter(|h| *h != cluster.holder && !abandoned) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "training_running",
                format!(
                    "{} is training (its lease runs {} s more); follow it with GET \
                     /api/admin/training",
                    crate::error::bounded(holder),
                    lease.expires_in
                ),
            ));
        }
    }
    if !start(&state, "request") {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "training_running",
            "a training is under way; follow it with GET /api/admin/training",
        ));
    }
    Ok((StatusCode::ACCEPTED, Json(full_status(&state).await)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_of_servers_that_ended_are_removed_and_the_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let ended = {
            let mut child = std::process::Command::new("true").spawn().unwrap();
            let pid = child.id();
            child.wait().unwrap();
            pid
        };
        let snapshot = |pid: &str| dir.path().join(format!("{SNAPSHOT_PREFIX}{pid}"));
        let make = |pid: &str| {
            std::fs::create_dir(snapshot(pid)).unwrap();
            std::fs::write(snapshot(pid).join("ratings.csv"), "userId\n").unwrap();
        };
        // Without lock files (an older version's): an ended server's, this one's, a running
        // process's (init), and a name not of a snapshot.
        let names = [
            ended.to_string(),
            std::process::id().to_string(),
            "1".into(),
            "x1".into(),
        ];
        for name in &names {
            make(name);
        }
        // With lock files: one held (a server running, whatever its PID says), one not (a
        // server killed: the kernel released its lock), and a lock file left alone.
        make("4000001");
        let held = std::fs::File::create(lock_file(&snapshot("4000001"))).unwrap();
        held.try_lock().unwrap();
        make("4000002");
        std::fs::File::create(lock_file(&snapshot("4000002"))).unwrap();
        std::fs::File::create(lock_file(&snapshot("4000003"))).unwrap();
        let other = dir.path().join("movierec-other-1");
        std::fs::create_dir(&other).unwrap();

        // Taken by other servers with the same PID as one here: a held lock is kept, a
        // released one removed, whatever the PID.
        make("4000001-1");
        let held_too = std::fs::File::create(lock_file(&snapshot("4000001-1"))).unwrap();
        held_too.try_lock().unwrap();
        make("4000001-2");
        std::fs::File::create(lock_file(&snapshot("4000001-2"))).unwrap();
        make(&format!("{ended}-3"));
        // This server's own, whose lock it could not take: never removed.
        make("4000004");
        std::fs::File::create(lock_file(&snapshot("4000004"))).unwrap();

        remove_dead_snapshots(dir.path(), &snapshot("4000004"));
        assert!(snapshot("4000004").join("ratings.csv").exists(), "own");
        assert!(
            snapshot("4000001-1").join("ratings.csv").exists(),
            "held, suffixed"
        );
        assert!(!snapshot("4000001-2").exists(), "released, suffixed");
        assert!(!lock_file(&snapshot("4000001-2")).exists());
        assert!(!snapshot(&format!("{ended}-3")).exists(), "ended, suffixed");
        assert!(!snapshot(&names[0]).exists(), "the ended server's");
        for name in &names[1..] {
            assert!(snapshot(name).join("ratings.csv").exists(), "{name}");
        }
        assert!(snapshot("4000001").join("ratings.csv").exists(), "locked");
        assert!(lock_file(&snapshot("4000001")).exists());
        assert!(!snapshot("4000002").exists() && !lock_file(&snapshot("4000002")).exists());
        assert!(!lock_file(&snapshot("4000003")).exists());
        assert!(other.exists());
        assert!(process_runs(std::process::id()) && process_runs(1));
        assert!(!process_runs(ended));
        drop(held);
        remove_dead_snapshots(dir.path(), &snapshot("4000004"));
        assert!(
            !snapshot("4000001").exists(),
            "unlocked once its server ended"
        );
    }

    #[test]
    fn a_snapshot_name_whose_lock_is_held_is_not_shared() {
        let dir = tempfile::tempdir().unwrap();
        let name = |suffix: &str| dir.path().join(format!("{SNAPSHOT_PREFIX}4000001{suffix}"));
        let (first, first_lock) = claim_snapshot_name(dir.path(), 4000001);
        assert_eq!(first, name(""));
        assert!(first_lock.is_some());
        // Another server with the same PID (another container) while the first runs.
        let (second, second_lock) = claim_snapshot_name(dir.path(), 4000001);
        assert_eq!(second, name("-1"));
        assert!(second_lock.is_some());
        let (third, _third_lock) = claim_snapshot_name(dir.path(), 4000001);
        assert_eq!(third, name("-2"));
        // Once the first has ended, its name is free again.
        drop(first_lock);
        let (again, again_lock) = claim_snapshot_name(dir.path(), 4000001);
        assert_eq!(again, name(""));
        assert!(again_lock.is_some());
        // A directory where no lock file can be made: the plain name, unlocked.
        let (plain, none) = claim_snapshot_name(&dir.path().join("missing"), 7);
        assert_eq!(
            plain,
            dir.path()
                .join("missing")
                .join(format!("{SNAPSHOT_PREFIX}7"))
        );
        assert!(none.is_none());
    }
}
