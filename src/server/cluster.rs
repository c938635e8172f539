//! Many servers, one model store (`serve --model-store DIR`): any number of `serve` processes
//! share one database and one directory of immutable model directories (a shared volume).
//!
//! - **One trainer at a time.** A training takes the database's trainer lease
//!   ([`crate::database::Store::acquire_lease`]) for [`ClusterConfig::lease`] and renews it every
//!   third of that while it runs. Only the holder may publish. A trainer that dies stops
//!   renewing; once its lease has expired, the next server to look ([`follow`], every
//!   [`POLL`]) takes the training over.
//! - **Publishing.** The trainer writes a new model directory `DIR/MODEL_ID` (staged under a
//!   hidden name and renamed into place when complete, so a half-written model never has a
//!   published name), then records `MODEL_ID` as the newest model in the database, which
//!   announces it (PostgreSQL `NOTIFY`). The store keeps the newest [`KEEP_MODELS`].
//! - **Following.** Every server waits for announcements (and checks every [`POLL`] in case it
//!   missed one) and reloads the newest model with the zero-downtime reload, which verifies
//!   every checksum first: a model that fails verification is not served, and the old one
//!   keeps serving.

use super::ServerState;
use crate::database::Database;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a server checks for a newer model and for an abandoned training.
pub const POLL: Duration = Duration::from_secs(2);
/// Published models kept in the store (the older ones are removed by the next publisher).
pub const KEEP_MODELS: u32 = 3;
/// The store's directory of run records (`serve --model-store` records runs there by default,
/// so that every server's Runs tab shows every server's trainings).
pub const RUNS_DIR: &str = "runs";

/// The trainer's lease by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// The shared model store and the trainer's lease.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The model store: published model directories, one per model id.
    pub store: PathBuf,
    /// How long a trainer's lease lasts without renewal.
    pub lease: Duration,
    /// This server's name as a lease holder: `HOST:PID:NONCE`.
    pub holder: String,
}

impl ClusterConfig {
    /// A store at `store` with a lease of `lease`, held under a new name for this process.
    pub fn new(store: PathBuf, lease: Duration) -> ClusterConfig {
        ClusterConfig {
            store,
            lease,
            holder: holder_name(),
        }
    }

    /// The lease in whole seconds (at least 1).
    fn lease_seconds(&self) -> u32 {
        self.lease.as_secs().clamp(1, u64::from(u32::MAX)) as u32
    }

    /// The directory of model `model_id`.
    pub fn model_dir(&self, model_id: &str) -> PathBuf {
        self.store.join(model_id)
    }
}

/// `HOST:PID:NONCE`: unique among the servers sharing a database, and readable in the lease.
fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let nonce = &crate::database::new_token()[..8];
    format!("{host}:{}:{nonce}", std::process::id())
}

/// A new model id: the UTC time, sortable, and a random suffix (`20261205T150102Z-3fa2c1d0`;
/// it starts with a digit, unlike the store's other entries: [`RUNS_DIR`], staging directories).
pub fn new_model_id() -> String {
    // `2026-12-05T15:01:02.123Z` without its separators, to the second.
    let stamp: String = crate::clock::now_rfc3339()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .take(15)
        .collect();
    format!("{stamp}Z-{}", &crate::database::new_token()[..8])
}

/// What [`train_and_publish`] did.
#[derive(Debug)]
pub enum Outcome {
    /// Another server holds the lease (named).
    Busy(String),
    /// Trained and published this model; the run recorded for it.
    Published {
        /// The new model's id.
        model_id: String,
        /// The run recorded, if it was.
        run_id: String,
    },
}

/// Trains one model under the lease and publishes it: takes the lease (or says who holds it),
/// renews it while `train` runs (on a blocking thread, given the new model's directory and
/// returning the recorded run's id), publishes the model if the lease is still this server's,
/// removes the store's oldest models, and frees the lease. A failed or unpublishable training
/// removes its directory, so the store only holds published models.
pub async fn train_and_publish(
    db: &Database,
    cluster: &ClusterConfig,
    trigger: &str,
    train: impl FnOnce(&Path) -> crate::Result<String> + Send + 'static,
) -> crate::Result<Outcome> {
    let lease = db
        .acquire_lease(&cluster.holder, cluster.lease_seconds(), trigger)
        .await?;
    if !lease.acquired {
        return Ok(Outcome::Busy(lease.holder.unwrap_or_default()));
    }
    let result = trained_and_published(db, cluster, train).await;
    if let Err(e) = db.release_lease(&cluster.holder).await {
        // It expires by itself.
        tracing::warn!("could not free the trainer's lease: {e}");
    }
    result
}

async fn trained_and_published(
    db: &Database,
    cluster: &ClusterConfig,
    train: impl FnOnce(&Path) -> crate::Result<String> + Send + 'static,
) -> crate::Result<Outcome> {
    let model_id = new_model_id();
    let dir = cluster.model_dir(&model_id);
    std::fs::create_dir_all(&cluster.store).map_err(|e| crate::Error::io(&cluster.store, e))?;
    // Renew the lease every third of it while the training runs.
    let heartbeat = {
        let (db, holder, seconds) = (db.clone(), cluster.holder.clone(), cluster.lease_seconds());
        let every = cluster.lease / 3;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match db.renew_lease(&holder, seconds).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!("the trainer's lease was taken over; this training will not be published");
                        return;
                    }
                    Err(e) => tracing::warn!("could not renew the trainer's lease: {e}"),
                }
            }
        })
    };
    let trained = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || train(&dir))
            .await
            .unwrap_or_else(|e| Err(crate::Error::invalid("training", format!("panicked: {e}"))))
    };
    heartbeat.abort();
    let run_id = match trained {
        Ok(run_id) => run_id,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    if !db.publish_model(&cluster.holder, &model_id).await? {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(crate::Error::invalid(
            "training",
            "the trainer's lease expired and another server took it over: the model was not \
             published (a longer --trainer-lease fits trainings this long)",
        ));
    }
    prune(db, cluster).await;
    Ok(Outcome::Published { model_id, run_id })
}

/// Removes the models older than the newest [`KEEP_MODELS`] from the store, and what a dead
/// trainer left half-written (hidden staging directories; only the lease holder writes any).
async fn prune(db: &Database, cluster: &ClusterConfig) {
    if let Ok(old) = db.older_models(KEEP_MODELS).await {
        for id in old {
            let dir = cluster.model_dir(&id);
            if dir.is_dir() {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(&cluster.store) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Waits until the store has a published model (training the first one if this server gets the
/// lease first, with `train`) and returns its directory. For `serve`'s start.
pub async fn first_model(
    db: &Database,
    cluster: &ClusterConfig,
    train: impl Fn(&Path) -> crate::Result<String> + Clone + Send + 'static,
) -> crate::Result<PathBuf> {
    let mut waited_for = None;
    loop {
        if let Some(latest) = db.latest_model().await? {
            let dir = cluster.model_dir(&latest.model_id);
            if dir.is_dir() {
                return Ok(dir);
            }
            return Err(crate::Error::invalid(
                "--model-store",
                format!(
                    "the newest published model {} is not in {} (is --model-store the volume \
                     the other servers share?)",
                    latest.model_id,
                    cluster.store.display()
                ),
            ));
        }
        match train_and_publish(db, cluster, "first start", train.clone()).await? {
            Outcome::Published { model_id, .. } => return Ok(cluster.model_dir(&model_id)),
            Outcome::Busy(holder) => {
                if waited_for.as_ref() != Some(&holder) {
                    eprintln!(
                        "movierec: waiting for {holder} to publish the first model into {}",
                        cluster.store.display()
                    );
                    waited_for = Some(holder);
                }
                tokio::time::sleep(POLL / 2).await;
            }
        }
    }
}

/// Follows the store until the server stops: reloads the newest published model when it is
/// announced (or found by the poll), and takes over a training whose trainer died.
pub async fn follow(state: ServerState, cluster: ClusterConfig) {
    let Some(db) = state.database.clone() else {
        return;
    };
    let mut announcements = db.announcements();
    let mut failed: Option<String> = None;
    loop {
        match announcements.as_mut() {
            Some(received) => {
                tokio::select! {
                    got = received.recv() => if got.is_none() { announcements = None },
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
            None => tokio::time::sleep(POLL).await,
        }
        match db.latest_model().await {
            Ok(Some(latest)) if failed.as_deref() != Some(latest.model_id.as_str()) => {
                let dir = cluster.model_dir(&latest.model_id);
                let served = state.model_dir.lock().await.clone();
                if served != dir {
                    match super::reload::reload(&state, Some(dir)).await {
                        Ok(_) => {
                            eprintln!(
                                "movierec: serving model {} (published by {})",
                                latest.model_id, latest.published_by
                            );
                            super::retrain::published(&state);
                        }
                        Err(e) => {
                            eprintln!(
                                "movierec: model {} was published but does not verify here; \
                                 the old model keeps serving: {e}",
                                latest.model_id
                            );
                            failed = Some(latest.model_id);
                        }
                    }
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("checking for a newer model: {e}"),
        }
        match db.lease().await {
            Ok(lease) if lease.abandoned() => {
                eprintln!(
                    "movierec: the trainer {} stopped renewing its lease; taking its training over",
                    lease.holder.as_deref().unwrap_or("?")
                );
                super::retrain::start(&state, "takeover");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("checking the trainer's lease: {e}"),
        }
    }
}
