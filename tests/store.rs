//! One test suite for both backends of the live database ([`movierec::database::Store`]): every
//! test runs against a SQLite file and against a real PostgreSQL server (tests/common/postgres.rs),
//! and the migrations of PostgreSQL are tested on an empty and an existing database.

use crate::common;

use movierec::data::{load_from_memory, Dataset, LoadOptions, Rating};
use movierec::database::{Database, Location, MovieRecord, StoredRating};
use movierec::Error;
use std::future::Future;

fn release() -> Dataset {
    let files = [
        (
            "movies.csv",
            "movieId,title,genres\n1,Toy Story (1995),Animation|Children\n2,Heat (1995),Action\n3,\"Matrix, The (1999)\",Action|Sci-Fi\n",
        ),
        (
            "ratings.csv",
            "userId,movieId,rating,timestamp\n1,1,4.0,100\n1,2,3.5,200\n5,3,5.0,300\n",
        ),
        ("links.csv", "movieId,imdbId,tmdbId\n1,0114709,862\n2,0113277,\n3,0133093,603\n"),
        (
            "tags.csv",
            "userId,movieId,tag,timestamp\n5,3,\"cyberpunk, classic\",301\n1,1,\"say \"\"hi\"\"\",302\n",
        ),
    ];
    load_from_memory(
        "mem",
        files.map(|(n, c)| (n.to_string(), c.as_bytes().to_vec())),
        &LoadOptions::default(),
    )
    .unwrap()
}

/// Runs `test` on an imported SQLite database and on an imported PostgreSQL one (unless
/// PostgreSQL's tests are skipped), naming the backend when it fails.
async fn on_both<F, Fut>(test: F)
where
    F: Fn(Database) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Location::Sqlite(dir.path().join("state/movierec.db"));
    let mut locations = vec![("sqlite", sqlite)];
    if let Some(server) = common::postgres::shared() {
        locations.push(("postgres", Location::Postgres(server.create_database())));
    }
    for (backend, location) in locations {
        eprintln!("backend: {backend}");
        let db = Database::open(&location).await.unwrap();
        let imported = db.import_release(release()).await.unwrap();
        assert!(imported.now, "{backend}");
        test(db).await;
    }
}

fn rating(user_id: u32, movie_id: u32, rating: f32, timestamp: i64) -> StoredRating {
    StoredRating {
        user_id,
        movie_id,
        rating,
        timestamp,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_release_is_imported_once_and_exported_back_as_it_was() {
    on_both(|db| async move {
        assert_eq!(db.counts().await.unwrap(), (3, 2, 3));
        let again = db.import_release(release()).await.unwrap();
        assert!(!again.now);
        assert_eq!(db.counts().await.unwrap(), (3, 2, 3));
        // A new profile gets an id above every user of the release, and rates.
        let (user, token) = db.create_user(1_000).await.unwrap();
        assert_eq!(user, 6);
        assert_eq!(token.len(), 64);
        db.put_rating(rating(user, 1, 4.5, 1_001)).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("export");
        let written = db.export(&out).await.unwrap();
        assert_eq!((written.movies, written.ratings, written.tags), (3, 4, 2));
        let back = movierec::data::load(&out).unwrap();
        assert_eq!(back.movies.len(), 3);
        assert_eq!(back.movies[2].title, "Matrix, The (1999)");
        assert_eq!(back.ratings.len(), 4);
        assert!(back
            .ratings
            .iter()
            .any(|r| (r.user_id, r.movie_id, r.rating, r.timestamp) == (6, 1, 4.5, 1_001)));
        assert_eq!(back.links[&1].imdb_id, Some(114709));
        assert_eq!(back.links[&2].tmdb_id, None);
        assert_eq!(back.tags[0].tag, "cyberpunk, classic");
        assert_eq!(back.tags[1].tag, "say \"hi\"");
        // Exporting again replaces the export.
        db.export(&out).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rating_is_replaced_and_deleted_and_listed_newest_first() {
    on_both(|db| async move {
        let (user, _) = db.create_user(0).await.unwrap();
        db.put_rating(rating(user, 1, 3.0, 10)).await.unwrap();
        db.put_rating(rating(user, 3, 5.0, 20)).await.unwrap();
        db.put_rating(rating(user, 2, 4.0, 20)).await.unwrap();
        // Same second: the one written last is newest.
        let listed = db.ratings_of(user).await.unwrap();
        assert_eq!(
            listed.iter().map(|r| r.movie_id).collect::<Vec<_>>(),
            vec![2, 3, 1]
        );
        db.put_rating(rating(user, 1, 1.0, 30)).await.unwrap();
        assert!(db.delete_rating(user, 2).await.unwrap());
        assert!(!db.delete_rating(user, 2).await.unwrap());
        assert_eq!(
            db.ratings_of(user).await.unwrap(),
            vec![rating(user, 1, 1.0, 30), rating(user, 3, 5.0, 20)]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_write_does_not_undo_the_others_written_at_the_same_time() {
    on_both(|db| async move {
        let (user, _) = db.create_user(0).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..400u32 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                // Every fourth names a movie that does not exist.
                let movie = if i % 4 == 0 { 99 } else { 1 + i % 3 };
                db.put_rating(rating(user, movie, 4.0, i64::from(i))).await
            }));
        }
        let mut failed = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => {}
                Err(Error::MovieNotFound { .. }) => failed += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(failed, 100);
        assert_eq!(db.ratings_of(user).await.unwrap().len(), 3);
        let error = db.put_rating(rating(12345, 1, 4.0, 0)).await.unwrap_err();
        assert!(
            matches!(error, Error::UserNotFound { user_id: 12345 }),
            "{error}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn profiles_created_at_once_get_distinct_ids_and_their_tokens_find_them() {
    on_both(|db| async move {
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let db = db.clone();
            tasks.push(tokio::spawn(
                async move { db.create_user(5).await.unwrap() },
            ));
        }
        let mut ids = Vec::new();
        for task in tasks {
            let (id, token) = task.await.unwrap();
            let hash = movierec::database::token_hash(&token);
            assert_eq!(db.user_of_token(hash).await.unwrap(), Some(id));
            let user = db.user_cached(id).await.unwrap().unwrap();
            assert_eq!(user.token_hash, Some(hash));
            ids.push(id);
        }
        ids.sort();
        assert_eq!(ids, (6..26).collect::<Vec<_>>());
        assert_eq!(db.user_of_token([0; 32]).await.unwrap(), None);
        // The release's users have no token.
        assert_eq!(db.user(5).await.unwrap().unwrap().token_hash, None);
        assert_eq!(db.user(4).await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn movies_are_added_once_and_changed_in_place() {
    on_both(|db| async move {
        let movie = MovieRecord {
            movie_id: 10,
            title: "Inception".into(),
            year: Some(2010),
            genres: vec!["Action".into(), "Sci-Fi".into()],
            imdb_id: Some(1375666),
            tmdb_id: None,
        };
        assert!(db.add_movie(movie.clone(), 7).await.unwrap());
        assert!(!db.add_movie(movie.clone(), 8).await.unwrap());
        let changed = db
            .change_movie(
                10,
                Box::new(|mut m: MovieRecord| {
                    assert_eq!(m.title, "Inception");
                    assert_eq!(m.year, Some(2010));
                    assert_eq!(m.imdb_id, Some(1375666));
                    m.tmdb_id = Some(27205);
                    Ok(m)
                }),
            )
            .await
            .unwrap();
        assert_eq!(changed.tmdb_id, Some(27205));
        // A change that fails leaves the movie as it was.
        let refused = db
            .change_movie(
                10,
                Box::new(|_| Err(Error::invalid("title", "refused by the test"))),
            )
            .await;
        assert!(refused.is_err());
        let missing = db.change_movie(11, Box::new(Ok)).await.unwrap_err();
        assert!(matches!(missing, Error::MovieNotFound { .. }), "{missing}");
        let dir = tempfile::tempdir().unwrap();
        db.export(&dir.path().join("e")).await.unwrap();
        let back = movierec::data::load(&dir.path().join("e")).unwrap();
        let inception = back.movies.iter().find(|m| m.movie_id == 10).unwrap();
        assert_eq!(inception.title, "Inception (2010)");
        assert_eq!(back.links[&10].tmdb_id, Some(27205));
        assert_eq!(db.counts().await.unwrap().0, 4);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_rows_are_all_or_nothing_and_the_last_of_duplicates_wins() {
    on_both(|db| async move {
        let r = |user_id, movie_id, rating, timestamp| Rating {
            user_id,
            movie_id,
            rating,
            timestamp,
        };
        // Movie 99 is unknown: nothing is written, not even the new user.
        let error = db
            .import_rows(Vec::new(), vec![r(40, 1, 4.0, 1), r(40, 99, 3.0, 2)], 0)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("99"), "{error}");
        assert_eq!(db.counts().await.unwrap(), (3, 2, 3));
        let movie = MovieRecord {
            movie_id: 99,
            title: "New".into(),
            ..MovieRecord::default()
        };
        let done = db
            .import_rows(
                vec![movie],
                vec![
                    r(40, 1, 4.0, 1),
                    r(40, 99, 3.0, 2),
                    r(40, 1, 2.5, 3),
                    r(1, 3, 5.0, 4),
                ],
                0,
            )
            .await
            .unwrap();
        assert_eq!((done.movies, done.ratings, done.users_created), (1, 4, 1));
        assert_eq!(db.counts().await.unwrap(), (4, 3, 6));
        assert_eq!(
            db.ratings_of(40).await.unwrap(),
            vec![rating(40, 1, 2.5, 3), rating(40, 99, 3.0, 2)]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn online_hits_are_ratings_of_shown_movies_within_a_week_after() {
    on_both(|db| async move {
        for id in 10..=13u32 {
            let movie = MovieRecord {
                movie_id: id,
                title: format!("M{id}"),
                ..MovieRecord::default()
            };
            db.add_movie(movie, 0).await.unwrap();
        }
        let now = 1_800_000_000;
        let (user, _) = db.create_user(0).await.unwrap();
        let day = 86_400;
        db.record_impressions(user, "item_knn", vec![10, 11, 12, 13], now - 3 * day);
        // Impressions are not waited for: wait until they are there.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while db.online_metrics(30, now).await.unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "no impressions");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // Shown again later: the first time stays.
        db.record_impressions(user, "item_knn", vec![10], now);
        db.record_impressions(user, "ease", vec![10], now - 3 * day);
        while db.online_metrics(30, now).await.unwrap().len() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "no impressions of ease"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let put = |movie, stars, at| rating(user, movie, stars, at);
        db.put_rating(put(10, 5.0, now - 2 * day)).await.unwrap(); // hit
        db.put_rating(put(11, 2.0, now - 2 * day)).await.unwrap(); // rated, not liked
        db.put_rating(put(12, 5.0, now - 4 * day)).await.unwrap(); // before: not counted
        db.put_rating(put(13, 5.0, now + 5 * day)).await.unwrap(); // more than 7 days after
        let metrics = db.online_metrics(30, now).await.unwrap();
        let knn = metrics.iter().find(|m| m.model == "item_knn").unwrap();
        assert_eq!(
            (knn.impressions, knn.rated, knn.liked),
            (4, 2, 1),
            "{metrics:?}"
        );
        assert_eq!(knn.hit_rate, 0.25);
        assert_eq!(knn.day, "2027-01-12");
        let ease = metrics.iter().find(|m| m.model == "ease").unwrap();
        assert_eq!((ease.impressions, ease.liked), (1, 1));
        assert!(db
            .online_metrics(1, now + 10 * day)
            .await
            .unwrap()
            .is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_migrates_an_empty_and_an_existing_database_and_refuses_a_newer_one() {
    let Some(server) = common::postgres::shared() else {
        return;
    };
    let url = server.create_database();
    let name = url.rsplit('/').next().unwrap().to_string();
    // Three servers starting at once on an empty database: one migrates, all open.
    let location = Location::Postgres(url.clone());
    let opened = futures_util::future::join_all((0..3).map(|_| Database::open(&location))).await;
    for db in &opened {
        assert!(db.is_ok(), "{:?}", db.as_ref().err());
    }
    let version = movierec::database::schema::POSTGRES_MIGRATIONS.len();
    assert_eq!(
        server.psql(&name, "SELECT version FROM movierec_schema"),
        version.to_string()
    );
    let db = opened.into_iter().next().unwrap().unwrap();
    // Three imports at once: one imports, the others find it done.
    let imports =
        futures_util::future::join_all((0..3).map(|_| db.import_release(release()))).await;
    assert_eq!(
        imports.iter().filter(|i| i.as_ref().unwrap().now).count(),
        1
    );
    let (user, _) = db.create_user(0).await.unwrap();
    db.put_rating(rating(user, 2, 4.0, 9)).await.unwrap();
    drop(db);
    // An existing database: opened again, nothing is lost or migrated twice.
    let again = Database::open(&Location::Postgres(url.clone()))
        .await
        .unwrap();
    assert_eq!(again.counts().await.unwrap(), (3, 3, 4));
    assert_eq!(
        server.psql(&name, "SELECT count(*) FROM movierec_schema"),
        "1"
    );
    // The password may come from PGPASSWORD instead of the URL.
    std::env::set_var("PGPASSWORD", common::postgres::PASSWORD);
    let from_env = Database::open(&Location::Postgres(server.url_without_password(&name)))
        .await
        .unwrap();
    assert_eq!(from_env.counts().await.unwrap().0, 3);
    // A wrong password is a clear error that does not show the URL's password.
    let wrong = format!(
        "postgres://{}:not-the-password@127.0.0.1:{}/{name}",
        common::postgres::USER,
        server.port
    );
    let error = Database::open(&Location::Postgres(wrong))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("password authentication failed"), "{error}");
    assert!(!error.contains("not-the-password"), "{error}");
    // A schema newer than this movierec knows is refused.
    server.psql(&name, "UPDATE movierec_schema SET version = 99");
    let error = Database::open(&Location::Postgres(url))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("newer movierec"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_trainer_holds_the_lease_publishes_and_another_takes_over_when_it_expires() {
    on_both(|db| async move {
        assert_eq!(db.latest_model().await.unwrap(), None);
        let free = db.lease().await.unwrap();
        assert!(free.holder.is_none() && !free.abandoned());
        // A takes it; B is told A holds it.
        let a = db.acquire_lease("a", 60, "request").await.unwrap();
        assert!(a.acquired, "{a:?}");
        let b = db.acquire_lease("b", 60, "changes").await.unwrap();
        assert!(!b.acquired);
        assert_eq!(b.holder.as_deref(), Some("a"));
        assert_eq!(b.trigger.as_deref(), Some("request"));
        assert!(b.expires_in > 50 && !b.abandoned(), "{b:?}");
        // Only the holder renews and publishes.
        assert!(db.renew_lease("a", 60).await.unwrap());
        assert!(!db.renew_lease("b", 60).await.unwrap());
        assert!(!db.publish_model("b", "m-b").await.unwrap());
        assert!(db.publish_model("a", "m1").await.unwrap());
        let latest = db.latest_model().await.unwrap().unwrap();
        assert_eq!(
            (latest.model_id.as_str(), latest.published_by.as_str()),
            ("m1", "a")
        );
        // Freed: B takes it.
        db.release_lease("a").await.unwrap();
        assert!(db.lease().await.unwrap().holder.is_none());
        assert!(db.acquire_lease("b", 1, "changes").await.unwrap().acquired);
        // B dies (stops renewing): once expired the lease is abandoned and C takes it over;
        // B can no longer publish.
        tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
        let seen = db.lease().await.unwrap();
        assert!(seen.abandoned(), "{seen:?}");
        assert!(
            db.acquire_lease("c", 60, "takeover")
                .await
                .unwrap()
                .acquired
        );
        assert!(!db.publish_model("b", "m-b").await.unwrap());
        assert!(db.publish_model("c", "m2").await.unwrap());
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        assert!(db.publish_model("c", "m3").await.unwrap());
        assert_eq!(db.latest_model().await.unwrap().unwrap().model_id, "m3");
        // The store keeps the newest: older ones are listed oldest first.
        let older = db.older_models(1).await.unwrap();
        assert_eq!(older.len(), 2, "{older:?}");
        assert!(older.contains(&"m1".to_string()) && older.contains(&"m2".to_string()));
        assert!(db.older_models(3).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_migrates_a_database_of_an_older_schema_and_the_cli_exports_it() {
    let Some(server) = common::postgres::shared() else {
        return;
    };
    let url = server.create_database();
    let name = url.rsplit('/').next().unwrap().to_string();
    // A database as an older movierec left it: migrations 1 and 2 only, with a rating.
    let migrations = movierec::database::schema::POSTGRES_MIGRATIONS;
    server.psql(
        &name,
        &format!(
            "{}; {}; CREATE TABLE movierec_schema (version INTEGER NOT NULL); \
             INSERT INTO movierec_schema VALUES (2); \
             INSERT INTO movies (movie_id, title, genres) VALUES (1, 'Heat (1995)', 'Action'); \
             INSERT INTO users (user_id, created_at) VALUES (7, 0); \
             INSERT INTO ratings (user_id, movie_id, rating, timestamp) VALUES (7, 1, 4.5, 10)",
            migrations[0], migrations[1]
        ),
    );
    let db = Database::open(&Location::Postgres(url.clone()))
        .await
        .unwrap();
    assert_eq!(
        server.psql(&name, "SELECT version FROM movierec_schema"),
        migrations.len().to_string()
    );
    assert_eq!(db.ratings_of(7).await.unwrap(), vec![rating(7, 1, 4.5, 10)]);
    assert_eq!(db.latest_model().await.unwrap(), None);
    drop(db);
    // `movierec export` reads the same database.
    let out = tempfile::tempdir().unwrap();
    let exported = std::process::Command::new(env!("CARGO_BIN_EXE_movierec"))
        .args(["export", "--database", &url, "--out"])
        .arg(out.path().join("release"))
        .output()
        .unwrap();
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let back = movierec::data::load(&out.path().join("release")).unwrap();
    assert_eq!((back.movies.len(), back.ratings.len()), (1, 1));
    // A URL that is not PostgreSQL's, or a server that is not there, is a clear error.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_movierec"))
        .args([
            "export",
            "--database",
            "postgres://movierec@127.0.0.1:1/x",
            "--out",
        ])
        .arg(out.path().join("none"))
        .output()
        .unwrap();
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(message.contains("cannot connect"), "{message}");
    assert!(
        message.contains("postgres://movierec@127.0.0.1:1/x"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_records_are_stored_newest_first_by_kind_and_replaced_by_id() {
    on_both(|db| async move {
        let run = |id: &str, kind: &str, at: &str| movierec::database::StoredRun {
            run_id: id.into(),
            kind: kind.into(),
            started_at: at.into(),
            record: format!("{{\"id\":\"{id}\",\"kind\":\"{kind}\"}}"),
        };
        assert!(db.runs(None, 10).await.unwrap().is_empty());
        db.put_run(&run("a", "train", "2026-12-05T10:00:00.000Z"))
            .await
            .unwrap();
        db.put_run(&run("b", "evaluate", "2026-12-05T11:00:00.000Z"))
            .await
            .unwrap();
        db.put_run(&run("c", "train", "2026-12-05T12:00:00.000Z"))
            .await
            .unwrap();
        let ids = |records: Vec<String>| -> Vec<String> {
            records
                .iter()
                .map(|r| serde_json::from_str::<serde_json::Value>(r).unwrap()["id"].to_string())
                .collect()
        };
        assert_eq!(
            ids(db.runs(None, 10).await.unwrap()),
            ["\"c\"", "\"b\"", "\"a\""]
        );
        assert_eq!(
            ids(db.runs(Some("train"), 10).await.unwrap()),
            ["\"c\"", "\"a\""]
        );
        assert_eq!(ids(db.runs(None, 1).await.unwrap()), ["\"c\""]);
        // The same id again replaces the record.
        let mut again = run("a", "train", "2026-12-05T13:00:00.000Z");
        again.record = "{\"id\":\"a\",\"kind\":\"train\",\"again\":true}".into();
        db.put_run(&again).await.unwrap();
        let all = db.runs(None, usize::MAX).await.unwrap();
        assert_eq!(all.len(), 3);
        assert!(all[0].contains("again"), "{all:?}");
    })
    .await;
}
