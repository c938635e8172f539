//! Online evaluation: what was recommended to whom (impressions), and how many of those movies
//! the person then rated, and rated 4 stars or more, within [`WINDOW_DAYS`] days, per model and
//! per day. The offline evaluation (`movierec evaluate`) says how a model ranks held-out ratings;
//! this says what it does for the people using the server.

use super::sqlite::Sqlite;
use super::{db_error, Store};
use crate::Result;
use rusqlite::params;
use serde::{Deserialize, Serialize};

/// Days after an impression in which a rating counts for it.
pub const WINDOW_DAYS: i64 = 7;
/// The rating that counts as a hit.
pub const LIKED_RATING: f64 = 4.0;
/// Most days one report covers.
pub const MAX_DAYS: u32 = 366;

/// One model's impressions of one day and what came of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnlineDay {
    /// The day the movies were shown (UTC), `YYYY-MM-DD`.
    pub day: String,
    /// The model that recommended them.
    pub model: String,
    /// Movies shown (each person, movie and model counted once, on the day first shown).
    pub impressions: u64,
    /// Of them, how many the person rated within 7 days after.
    pub rated: u64,
    /// Of them, how many the person rated 4 stars or more within 7 days after.
    pub liked: u64,
    /// `liked / impressions`: the online hit rate.
    pub hit_rate: f64,
    /// `rated / impressions`.
    pub rated_rate: f64,
}

impl Sqlite {
    /// [`Store::record_impressions`]: queued for the writer without waiting for the commit,
    /// and dropped when the writer's queue is full.
    pub(crate) fn record_impression_rows(
        &self,
        user_id: u32,
        model: &str,
        movies: Vec<u32>,
        now: i64,
    ) {
        let path = self.location().to_path_buf();
        let model = model.to_string();
        let _ = self.submit(
            move |conn| {
                let mut insert = conn
                    .prepare_cached(
                        "INSERT OR IGNORE INTO impressions (user_id, movie_id, model, shown_at) \
                         VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(|e| db_error(&path, e))?;
                for movie in movies {
                    insert
                        .execute(params![user_id, movie, model, now])
                        .map_err(|e| db_error(&path, e))?;
                }
                Ok(())
            },
            |_| {},
            // Under a write load that fills the writer's queue, impressions are dropped (sampled)
            // rather than making the recommendation wait.
            false,
        );
    }

    /// [`Store::online_metrics`]. Blocks.
    pub(crate) fn online_rows(&self, days: u32, now: i64) -> Result<Vec<OnlineDay>> {
        let path = self.location().to_path_buf();
        let since = now - i64::from(days.min(MAX_DAYS)) * 86_400;
        self.read(|conn| {
            let mut statement = conn
                .prepare(
                    "SELECT date(i.shown_at, 'unixepoch') AS day, i.model, count(*), \
                       count(r.rating), coalesce(sum(r.rating >= ?3), 0) \
                     FROM impressions i LEFT JOIN ratings r \
                       ON r.user_id = i.user_id AND r.movie_id = i.movie_id \
                      AND r.timestamp >= i.shown_at AND r.timestamp < i.shown_at + ?2 \
                     WHERE i.shown_at >= ?1 \
                     GROUP BY day, i.model ORDER BY day DESC, i.model",
                )
                .map_err(|e| db_error(&path, e))?;
            let rows = statement
                .query_map(params![since, WINDOW_DAYS * 86_400, LIKED_RATING], |r| {
                    let impressions = r.get::<_, i64>(2)?.max(0) as u64;
                    let rated = r.get::<_, i64>(3)?.max(0) as u64;
                    let liked = r.get::<_, i64>(4)?.max(0) as u64;
                    let share = |n: u64| {
                        if impressions == 0 {
                            0.0
                        } else {
                            n as f64 / impressions as f64
                        }
                    };
                    Ok(OnlineDay {
                        day: r.get(0)?,
                        model: r.get(1)?,
                        impressions,
                        rated,
                        liked,
                        hit_rate: share(liked),
                        rated_rate: share(rated),
                    })
                })
                .map_err(|e| db_error(&path, e))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| db_error(&path, e))
        })
    }
}
