//! Online evaluation: what was recommended to whom (impressions), and how many of those movies
//! the person then rated, and rated 4 stars or more, within [`WINDOW_DAYS`] days, per model and
//! per day. The offline evaluation (`movierec evaluate`) says how a model ranks held-out ratings;
//! this says what it does for the people using the server.

use super::{db_error, Database};
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

impl Database {
    /// Records that `movies` were recommended to `user_id` by `model` at `now` (seconds), without
    /// waiting for the commit: an impression lost to a crash, or dropped when the writer's queue
    /// is full, costs the metric one row, not a request its latency. A movie already shown to the
    /// person by the model keeps its first time.
    pub fn record_impressions(&self, user_id: u32, model: &str, movies: Vec<u32>, now: i64) {
        let path = self.path().to_path_buf();
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

    /// Per model and day, for impressions of the last `days` days before `now`: impressions,
    /// and how many were rated (liked) within [`WINDOW_DAYS`] days after. Newest day first.
    pub fn online_metrics(&self, days: u32, now: i64) -> Result<Vec<OnlineDay>> {
        let path = self.path().to_path_buf();
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

#[cfg(test)]
mod tests {
    use super::super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn hits_are_ratings_of_shown_movies_within_a_week_after() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("o.db")).unwrap();
        let now = 1_800_000_000;
        let path = db.path().to_path_buf();
        db.write(move |conn| {
            for id in 1..=5u32 {
                crate::database::import::upsert_movie(
                    conn,
                    &path,
                    &MovieRecord {
                        movie_id: id,
                        title: format!("M{id}"),
                        ..MovieRecord::default()
                    },
                    0,
                )?;
            }
            Ok(())
        })
        .unwrap();
        let (user, _) = db.create_user(0).await.unwrap();
        let day = 86_400;
        db.record_impressions(user, "item_knn", vec![1, 2, 3, 4], now - 3 * day);
        // Shown again later: the first time stays.
        db.record_impressions(user, "item_knn", vec![1], now);
        db.record_impressions(user, "ease", vec![1], now - 3 * day);
        let put = |movie, stars, at| StoredRating {
            user_id: user,
            movie_id: movie,
            rating: stars,
            timestamp: at,
        };
        db.put_rating(put(1, 5.0, now - 2 * day)).await.unwrap(); // hit
        db.put_rating(put(2, 2.0, now - 2 * day)).await.unwrap(); // rated, not liked
        db.put_rating(put(3, 5.0, now - 4 * day)).await.unwrap(); // before: not counted
        db.put_rating(put(4, 5.0, now + 5 * day)).await.unwrap(); // more than 7 days after
        let metrics = db.online_metrics(30, now).unwrap();
        let knn = metrics.iter().find(|m| m.model == "item_knn").unwrap();
        assert_eq!(
            (knn.impressions, knn.rated, knn.liked),
            (4, 2, 1),
            "{metrics:?}"
        );
        assert_eq!(knn.hit_rate, 0.25);
        let ease = metrics.iter().find(|m| m.model == "ease").unwrap();
        assert_eq!((ease.impressions, ease.liked), (1, 1));
        // Outside the period asked for: nothing.
        assert!(db.online_metrics(1, now + 10 * day).unwrap().is_empty());
    }
}
