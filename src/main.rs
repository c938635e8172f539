//! The `movierec` binary: parses arguments (see `cli.rs`) and calls the library.

mod cli;

use clap::Parser;
use cli::{Cli, Command};
use movierec::catalog::{MatchKind, MovieQuery};
use movierec::engine::{
    Engine, PersonalRecommendations, PersonalTarget, Recommendations, ScoredMovie, SimilarRequest,
};
use movierec::eval::bootstrap::Difference;
use movierec::eval::similarity::SimilarityReport;
use movierec::eval::{EvaluationReport, ModelReport};
use movierec::index::{ForestParams, HnswParams, IndexKind};
use movierec::models::ModelKind;
use movierec::tracking::commands;
use movierec::tracking::{RunFilter, RunKind, RunRecord, RunStatus, RunStore};
use movierec::train::{train, TrainOptions};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

// The server answers tens of thousands of small requests a second, each building a few dozen small
// strings and vectors; glibc's malloc took about 13% of its time (perf, docs/BENCHMARKS.md), mimalloc
// (compiled from its bundled C source by `cc`, like ring's) a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `println!` without its panic on a failed write: output piped into a reader that stopped
/// (`| head`) ends the program quietly with exit 0, and any other failure (`> /dev/full`) is a
/// one-line error and exit 1 (nothing more can be said on standard output anyway).
macro_rules! out {
    () => {
        write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes to standard output (see [`out!`]).
fn write_stdout(text: std::fmt::Arguments) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: writing to standard output: {e}");
            std::process::exit(1)
        }
    }
}

mod output;
use output::*;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MOVIEREC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train {
            data,
            validation,
            out,
            trees,
            search_k,
            seed,
            hnsw_m,
            ef_construction,
            ef_search,
            tune_budget,
            no_tune,
            incremental,
            tracking,
        } => {
            let forest = ForestParams::default();
            let hnsw = HnswParams::default();
            let options = TrainOptions {
                forest: ForestParams {
                    n_trees: trees.unwrap_or(forest.n_trees),
                    search_k: search_k.or(forest.search_k),
                    seed: seed.unwrap_or(forest.seed),
                },
                hnsw: HnswParams {
                    m: hnsw_m.unwrap_or(hnsw.m),
                    ef_construction: ef_construction.unwrap_or(hnsw.ef_construction),
                    ef_search: ef_search.unwrap_or(hnsw.ef_search),
                    seed: seed.unwrap_or(hnsw.seed),
                },
                load: validation.load_options(),
                fixed_search_k: search_k.is_some(),
                fixed_ef_search: ef_search.is_some(),
                tune_budget: (!no_tune).then(|| Duration::from_secs_f64(tune_budget)),
                incremental,
            };
            // Each stage reuses the memory it frees, and hands it back when it ends.
            movierec::memory::hold_freed_memory();
            train_and_report(&data, &out, &options, &tracking.tracking())
        }
        Command::Recommend {
            title,
            user,
            likes,
            dislikes,
            batch,
            format,
            k,
            model,
            filter,
            index,
            server,
            model_dir,
            json,
        } => {
            let filter = filter.filter();
            let client = server
                .as_deref()
                .map(movierec::client::Client::new)
                .transpose()?;
            if let Some(file) = batch {
                let engine = Engine::open(&model_dir)?;
                return run_batch(
                    &engine,
                    &file,
                    &format,
                    k,
                    ModelKind::parse(&model)?,
                    IndexKind::parse(&index)?,
                );
            }
            let target = match user {
                Some(user) => Some(PersonalTarget::User(user)),
                None if !likes.is_empty() => Some(PersonalTarget::Likes {
                    likes: likes.into_iter().map(MovieQuery::Title).collect(),
                    dislikes: dislikes.into_iter().map(MovieQuery::Title).collect(),
                }),
                None => None,
            };
            if let Some(target) = target {
                let k = Engine::check_k(k)?;
                let answer = match &client {
                    Some(client) => client.personal(&target, k, &filter)?,
                    None => Engine::open(&model_dir)?.personal(&target, k, &filter)?,
                };
                if json {
                    out!("{}", serde_json::to_string_pretty(&answer)?);
                } else {
                    print_personal(&answer);
                }
                return Ok(());
            }
            let request = SimilarRequest {
                movie: MovieQuery::Title(title.join(" ")),
                also: Vec::new(),
                k: Engine::check_k(k)?,
                model: ModelKind::parse(&model)?,
                index: IndexKind::parse(&index)?,
                filter,
            };
            let answer = match &client {
                Some(client) => client.similar(&request)?,
                None => Engine::open(&model_dir)?.similar(&request)?,
            };
            if json {
                out!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                print_table(&answer);
            }
            Ok(())
        }
        Command::Serve {
            model_dir,
            data,
            validation,
            host,
            port,
            cors_origin,
            max_in_flight,
            max_connections,
            idle_timeout,
            write_timeout,
            tracking,
            database,
            write_rate,
            profile_rate,
            retrain_after,
            retrain_every,
            model_store,
            trainer_lease,
        } => {
            let tracking = tracking.tracking();
            if let Some(store) = model_store {
                return serve_from_store(ServeFromStore {
                    store,
                    lease: trainer_lease,
                    data,
                    validation,
                    host,
                    port,
                    cors_origin,
                    max_in_flight,
                    max_connections,
                    idle_timeout,
                    write_timeout,
                    tracking,
                    database: database.location(&model_dir)?,
                    write_rate,
                    profile_rate,
                    retrain_after,
                    retrain_every,
                });
            }
            let database_path = database.location(&model_dir)?;
            for (flag, rate) in [
                ("--write-rate", write_rate),
                ("--profile-rate", profile_rate),
            ] {
                if !(rate.is_finite() && rate >= 0.0) {
                    anyhow::bail!("{flag}: {rate} is not a rate (a number of writes per second, 0 for no limit)");
                }
            }
            // A model directory an older movierec trained from the same data is trained again
            // (atomically replaced), so upgrading and running `serve` just works.
            let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
                (Ok(a), Ok(b)) => a == b,
                _ => a == b,
            };
            let outdated = movierec::artifact::outdated_dataset(&model_dir)
                .is_some_and(|path| same(Path::new(&path), &data));
            if !model_dir.exists() && !data.exists() {
                anyhow::bail!(
                    "no model at {} and no MovieLens release at {} to train one: give --data DIR \
                     (a release directory or .zip) or --model-dir DIR (a trained model), or fetch \
                     the small release with `movierec download ml-latest-small`",
                    model_dir.display(),
                    data.display()
                );
            }
            if !model_dir.exists() || outdated {
                eprintln!(
                    "movierec: {} at {}; training on {} first",
                    if outdated {
                        "a model of an older format"
                    } else {
                        "no model"
                    },
                    model_dir.display(),
                    data.display()
                );
                let options = TrainOptions {
                    load: validation.load_options(),
                    tune_budget: Some(movierec::train::DEFAULT_TUNE_BUDGET),
                    ..TrainOptions::default()
                };
                train_and_report(&data, &model_dir, &options, &tracking)?;
            }
            let engine = Engine::open(&model_dir)?;
            let ip: IpAddr = host
                .parse()
                .map_err(|_| anyhow::anyhow!("--host: {host:?} is not an IP address"))?;
            let runtime = tokio::runtime::Runtime::new()?;
            let database = database_path
                .map(|location| {
                    let trained_on = Path::new(&engine.manifest().dataset.path);
                    runtime.block_on(open_database(
                        &location,
                        Some(trained_on),
                        &data,
                        &validation,
                    ))
                })
                .transpose()?;
            let config = movierec::server::ServerConfig {
                admin_token: admin_token()?,
                cors_origins: cors_origin,
                max_in_flight,
                limits: movierec::server::listener::ServeLimits {
                    max_connections: max_connections as usize,
                    idle_timeout: Duration::from_secs_f64(idle_timeout),
                    write_timeout: Duration::from_secs_f64(write_timeout),
                },
                retrain: database
                    .as_ref()
                    .map(|db| movierec::server::retrain::RetrainConfig {
                        after: retrain_after,
                        every: (!retrain_every.is_zero()).then_some(retrain_every),
                        train: background_training_shared(
                            tracking.clone(),
                            db.is_shared()
                                .then(|| (db.clone(), runtime.handle().clone())),
                        ),
                    }),
                database,
                write_rate,
                profile_rate,
                ..movierec::server::ServerConfig::new(model_dir, tracking.runs_dir())
            };
            runtime.block_on(movierec::server::serve(
                engine,
                config,
                SocketAddr::new(ip, port),
            ))?;
            Ok(())
        }
        Command::Import {
            movies,
            ratings,
            model_dir,
            database,
        } => {
            if movies.is_none() && ratings.is_none() {
                anyhow::bail!("import: give --movies FILE, --ratings FILE or both");
            }
            let location = database
                .location(&model_dir)?
                .ok_or_else(|| anyhow::anyhow!("--database: import needs a database, not none"))?;
            let runtime = tokio::runtime::Runtime::new()?;
            let db = runtime.block_on(movierec::database::Database::open(&location))?;
            let path = db.location().to_path_buf();
            let started = std::time::Instant::now();
            let done = runtime.block_on(movierec::database::import::import_files(
                &db,
                movies.as_deref(),
                ratings.as_deref(),
            ))?;
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "movierec: imported {} movies and {} ratings ({} new users) into {} in {seconds:.2} s ({:.0} ratings/s)",
                done.movies,
                done.ratings,
                done.users_created,
                path.display(),
                done.ratings as f64 / seconds.max(1e-9)
            );
            Ok(())
        }
        Command::Export {
            out,
            model_dir,
            database,
        } => {
            let location = database
                .location(&model_dir)?
                .ok_or_else(|| anyhow::anyhow!("--database: export needs a database, not none"))?;
            if let movierec::database::Location::Sqlite(path) = &location {
                if !path.is_file() {
                    anyhow::bail!("--database: no database at {}", path.display());
                }
            }
            let runtime = tokio::runtime::Runtime::new()?;
            let db = runtime.block_on(movierec::database::Database::open(&location))?;
            let written = runtime.block_on(db.export(&out))?;
            eprintln!(
                "movierec: wrote {} movies, {} ratings and {} tags to {}",
                written.movies,
                written.ratings,
                written.tags,
                out.display()
            );
            Ok(())
        }
        Command::Evaluate {
            data,
            validation,
            models,
            json,
            incremental,
            tracking,
        } => {
            let models = models
                .iter()
                .map(|m| ModelKind::parse(m.trim()))
                .collect::<movierec::Result<Vec<_>>>()
                .map_err(|e| anyhow::anyhow!("--models: {e}"))?;
            let mut started = commands::start(RunKind::Evaluate, &data);
            if let Some(share) = incremental {
                started = started.param("incremental", share);
            }
            if !models.is_empty() {
                started = started.param(
                    "models",
                    models
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
            let (fingerprint, result) =
                match movierec::data::load_with(&data, &validation.load_options()) {
                    Ok(dataset) => (
                        dataset.fingerprint.clone(),
                        movierec::eval::evaluate(&dataset, &models, incremental),
                    ),
                    Err(e) => (String::new(), Err(e)),
                };
            let run = commands::evaluate_run(&data, &fingerprint, started, &result);
            let recorded = tracking.tracking().record(run);
            warn_unrecorded(&result, &recorded);
            let report = result?;
            let run = recorded?;
            if json {
                out!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_evaluation(&report)?;
            }
            report_run(&run);
            Ok(())
        }
        Command::Load {
            data,
            validation,
            json,
        } => {
            let options = movierec::data::LoadOptions {
                summary: false,
                ..validation.load_options()
            };
            let dataset = movierec::data::load_with(&data, &options)?;
            if json {
                out!("{}", serde_json::to_string_pretty(&dataset.report)?);
            } else {
                out!("{}", dataset.report);
            }
            Ok(())
        }
        Command::Runs {
            kind,
            limit,
            json,
            runs_dir,
        } => {
            let tracking = movierec::tracking::commands::Tracking {
                runs_dir,
                ..Default::default()
            };
            let kind = kind
                .map(|k| k.parse::<RunKind>())
                .transpose()
                .map_err(|e| anyhow::anyhow!("--kind: {e}"))?;
            let dir = tracking.runs_dir();
            let listing = RunStore::open(&dir)?.list(&RunFilter { kind, limit })?;
            for skipped in &listing.skipped {
                eprintln!("warning: skipped {skipped}");
            }
            if json {
                out!("{}", serde_json::to_string_pretty(&listing.runs)?);
            } else {
                print_runs(&dir, &listing.runs);
            }
            Ok(())
        }
        Command::BenchIndex {
            base,
            queries,
            dim,
            k,
            threads,
            metric,
            generate,
            json,
        } => {
            use movierec::devtools::bench_index as bench;
            let metric = movierec::index::Metric::parse(&metric)?;
            if generate {
                let (b, q) = bench::clustered(
                    bench::GENERATED_BASE_ROWS,
                    bench::GENERATED_QUERY_ROWS,
                    dim,
                    1,
                );
                bench::write_vectors(&base, &b)?;
                bench::write_vectors(&queries, &q)?;
                eprintln!(
                    "movierec: wrote {} base and {} query vectors of dimension {dim}",
                    b.len(),
                    q.len()
                );
            }
            let (b, q) = (
                bench::read_vectors(&base, dim)?,
                bench::read_vectors(&queries, dim)?,
            );
            if !json {
                out!(
                    "{} base and {} query vectors of dimension {dim}, {metric}, k = {k}, {threads} \
                     thread(s)",
                    b.len(),
                    q.len()
                );
                out!(
                    "{:<7} {:<52} {:>8} {:>10} {:>9} {:>11} {:>8} {:>9}",
                    "backend",
                    "params",
                    "build s",
                    "QPS",
                    "recall@k",
                    "memory MB",
                    "open ms",
                    "verify ms"
                );
            }
            bench::run(&b, &q, k, threads, metric, &mut |row| {
                if json {
                    out!("{}", serde_json::to_string(row).unwrap_or_default());
                } else {
                    let ms =
                        |s: Option<f64>| s.map_or(String::new(), |s| format!("{:.2}", s * 1e3));
                    out!(
                        "{:<7} {:<52} {:>8.2} {:>10.0} {:>9.4} {:>11.1} {:>8} {:>9}",
                        row.backend,
                        row.params.to_string(),
                        row.build_s,
                        row.qps,
                        row.recall_at_10,
                        row.memory_bytes as f64 / 1e6,
                        ms(row.open_s),
                        ms(row.verify_s)
                    );
                }
            })?;
            Ok(())
        }
        Command::Verify { model_dir } => {
            let started = std::time::Instant::now();
            let engine = Engine::open(&model_dir)?;
            let files = &engine.manifest().files;
            let bytes: u64 = files.values().map(|f| f.bytes).sum();
            out!(
                "ok: {} files, {:.1} MB verified in {:.0} ms",
                files.len(),
                bytes as f64 / 1e6,
                started.elapsed().as_secs_f64() * 1e3
            );
            Ok(())
        }
        Command::Download {
            name,
            dir,
            base_url,
        } => {
            let options = movierec::download::DownloadOptions {
                base_url,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            let summary = movierec::download::download(&name, &dir, &options)?;
            if summary.already_present {
                out!(
                    "{} is already there (remove it to download again)",
                    summary.dir.display()
                );
            } else {
                let check = match &summary.md5 {
                    Some(md5) => format!("MD5 {md5} verified"),
                    None => "not verified: no published checksum".to_string(),
                };
                let resumed = if summary.resumed_bytes > 0 {
                    format!(
                        ", resumed after {:.1} MB",
                        summary.resumed_bytes as f64 / 1e6
                    )
                } else {
                    String::new()
                };
                out!(
                    "downloaded {name} into {}: {} files from a {:.1} MB zip ({check}{resumed}) in {:.1} s",
                    summary.dir.display(),
                    summary.files,
                    summary.zip_bytes as f64 / 1e6,
                    summary.seconds
                );
            }
            Ok(())
        }
        Command::Profile { data, html, json } => {
            let started = std::time::Instant::now();
            let dataset = movierec::data::load(&data)?;
            let loaded = started.elapsed().as_secs_f64();
            let started = std::time::Instant::now();
            let profile = movierec::profile::profile(&dataset);
            let profiled = started.elapsed().as_secs_f64();
            if json {
                out!("{}", serde_json::to_string_pretty(&profile)?);
            } else {
                write_stdout(format_args!(
                    "{}",
                    movierec::profile::text::render(&profile)
                ));
            }
            std::io::Write::flush(&mut std::io::stdout())?;
            let mut timing = format!("loaded in {loaded:.2} s, profiled in {profiled:.2} s");
            if let Some(file) = html {
                let started = std::time::Instant::now();
                let page = movierec::profile::html::render(&profile);
                movierec::atomic::write_file(&file, page.as_bytes())?;
                timing.push_str(&format!(
                    ", {} written in {:.2} s ({:.0} kB)",
                    file.display(),
                    started.elapsed().as_secs_f64(),
                    page.len() as f64 / 1e3
                ));
            }
            eprintln!("{timing}");
            Ok(())
        }
        Command::Synth {
            out,
            scale,
            seed,
            taste,
        } => {
            let summary = movierec::devtools::synth::write_release(
                &out,
                &movierec::devtools::synth::SynthParams { scale, seed, taste },
            )?;
            out!(
                "wrote {}: {} movies, {} users, {} ratings, {} tags, {:.1} MB in {:.1} s \
                 (synthetic, for benchmarks)",
                out.display(),
                summary.movies,
                summary.users,
                summary.ratings,
                summary.tags,
                summary.bytes as f64 / 1e6,
                summary.seconds
            );
            Ok(())
        }
        Command::Health { url } => {
            movierec::server::probe(&url)?;
            out!("ok");
            Ok(())
        }
    }
}

/// An error and its causes, each cause added only when the text does not already say it (many
/// errors quote their source in their own message: "…: Address already in use (os error 98)"
/// once, not twice).
fn error_text(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// When a command failed and its run could not be recorded either (a full disk fails both),
/// says so: the command's own error is what is returned.
fn warn_unrecorded<T, R, E: std::fmt::Display>(
    result: &Result<T, movierec::Error>,
    recorded: &Result<R, E>,
) {
    if let (Err(_), Err(e)) = (result, recorded) {
        eprintln!("warning: the failed run could not be recorded either: {e}");
    }
}

/// Opens the live database at `location`; on first start imports the release the model was
/// trained on (else `--data`), so that the database is the one source of truth from then on.
async fn open_database(
    location: &movierec::database::Location,
    trained_on: Option<&Path>,
    data: &Path,
    validation: &cli::ValidationArgs,
) -> anyhow::Result<movierec::database::Database> {
    let db = movierec::database::Database::open(location).await?;
    let (movies, _, _) = db.counts().await?;
    if movies == 0 {
        let release = trained_on.filter(|p| p.exists()).unwrap_or(data);
        let started = std::time::Instant::now();
        let dataset = movierec::data::load_with(release, &validation.load_options())?;
        let imported = db.import_release(dataset).await?;
        if imported.now {
            let (movies, users, ratings) = imported.counts;
            eprintln!(
                "movierec: imported {} ({movies} movies, {users} users, {ratings} ratings) into the database {} in {:.1} s",
                release.display(),
                db.location().display(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(db)
}

/// `serve --model-store`'s settings.
struct ServeFromStore {
    store: PathBuf,
    lease: Duration,
    data: PathBuf,
    validation: cli::ValidationArgs,
    host: String,
    port: u16,
    cors_origin: Vec<String>,
    max_in_flight: usize,
    max_connections: u32,
    idle_timeout: f64,
    write_timeout: f64,
    tracking: commands::Tracking,
    database: Option<movierec::database::Location>,
    write_rate: f64,
    profile_rate: f64,
    retrain_after: u64,
    retrain_every: Duration,
}

/// `serve --model-store DIR`: one of many servers sharing a database and a model store. Opens
/// the database (importing `--data` on the very first start), serves the newest published
/// model (training the first one under the lease if there is none), and follows the store.
fn serve_from_store(s: ServeFromStore) -> anyhow::Result<()> {
    let location = s.database.ok_or_else(|| {
        anyhow::anyhow!(
            "--model-store: the servers sharing a model store need a shared --database, not none"
        )
    })?;
    let ip: IpAddr = s
        .host
        .parse()
        .map_err(|_| anyhow::anyhow!("--host: {:?} is not an IP address", s.host))?;
    if s.lease < Duration::from_secs(3) {
        anyhow::bail!("--trainer-lease: at least 3 s (it is renewed every third of it)");
    }
    std::fs::create_dir_all(&s.store)
        .map_err(|e| anyhow::anyhow!("--model-store {}: {e}", s.store.display()))?;
    // The runs are recorded where every server sees them: `runs/` in the shared store (the run
    // store appends under a file lock, and only the lease holder trains), unless `--runs-dir`
    // or MOVIEREC_RUNS_DIR says otherwise.
    let mut tracking = s.tracking;
    let runs_env = std::env::var_os(commands::RUNS_DIR_ENV).filter(|v| !v.is_empty());
    if tracking.runs_dir.is_none() && runs_env.is_none() {
        tracking.runs_dir = Some(s.store.join(movierec::server::cluster::RUNS_DIR));
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let db = runtime.block_on(open_database(&location, None, &s.data, &s.validation))?;
    let cluster = movierec::server::cluster::ClusterConfig::new(s.store.clone(), s.lease);
    let shared = db
        .is_shared()
        .then(|| (db.clone(), runtime.handle().clone()));
    let train = background_training_shared(tracking.clone(), shared);
    let first = {
        let (db, train, handle) = (db.clone(), train.clone(), runtime.handle().clone());
        move |out: &Path| {
            let snapshot = movierec::server::retrain::local_snapshot_dir();
            let export = || {
                handle
                    .block_on(db.export(&snapshot))
                    .map(|_| snapshot.clone())
            };
            let trained = train(&export, out, "first start");
            let _ = std::fs::remove_dir_all(&snapshot);
            trained
        }
    };
    let model_dir =
        runtime.block_on(movierec::server::cluster::first_model(&db, &cluster, first))?;
    let engine = Engine::open(&model_dir)?;
    eprintln!(
        "movierec: serving model {} from the store {} (trainer lease {} s, this server is {})",
        model_dir.file_name().unwrap_or_default().to_string_lossy(),
        s.store.display(),
        s.lease.as_secs(),
        cluster.holder
    );
    let config = movierec::server::ServerConfig {
        admin_token: admin_token()?,
        cors_origins: s.cors_origin,
        max_in_flight: s.max_in_flight,
        limits: movierec::server::listener::ServeLimits {
            max_connections: s.max_connections as usize,
            idle_timeout: Duration::from_secs_f64(s.idle_timeout),
            write_timeout: Duration::from_secs_f64(s.write_timeout),
        },
        retrain: Some(movierec::server::retrain::RetrainConfig {
            after: s.retrain_after,
            every: (!s.retrain_every.is_zero()).then_some(s.retrain_every),
            train,
        }),
        database: Some(db),
        write_rate: s.write_rate,
        profile_rate: s.profile_rate,
        cluster: Some(cluster),
        ..movierec::server::ServerConfig::new(model_dir, tracking.runs_dir())
    };
    runtime.block_on(movierec::server::serve(
        engine,
        config,
        SocketAddr::new(ip, s.port),
    ))?;
    Ok(())
}

/// The training `serve` runs in the background: as `train` (tuning within the default budget),
/// recorded as a train run with a `trigger` parameter.
///
/// With `shared` (a database many servers share, and the runtime to reach it through), each
/// run's record is also stored there, where every server's `GET /api/runs` reads it.
fn background_training_shared(
    tracking: commands::Tracking,
    shared: Option<(movierec::database::Database, tokio::runtime::Handle)>,
) -> movierec::server::retrain::TrainFn {
    std::sync::Arc::new(move |snapshot, out, trigger| {
        let options = TrainOptions {
            tune_budget: Some(movierec::train::DEFAULT_TUNE_BUDGET),
            // Retraining the served model in place starts from it (a full training, with its
            // tuning, when it cannot, and after a run of incremental ones).
            incremental: movierec::incremental::worth_starting_from(out),
            ..TrainOptions::default()
        };
        let started_at = commands::start(RunKind::Train, out);
        let (data, result) = match snapshot() {
            Ok(data) => {
                let result = train(&data, out, &options);
                (data, result)
            }
            Err(e) => (out.to_path_buf(), Err(e)),
        };
        let started = started_at.param("trigger", format!("serve: {trigger}"));
        let mut run = commands::train_run(&data, out, started, &result);
        run.dataset.path = data.display().to_string();
        let recorded = tracking.record(run);
        if let (Ok(run), Some((db, handle))) = (&recorded, &shared) {
            let stored = movierec::database::StoredRun {
                run_id: run.id.clone(),
                kind: run.kind.as_str().to_string(),
                started_at: run.started_at.clone(),
                record: serde_json::to_string(run).expect("a run record serialises"),
            };
            if let Err(e) = handle.block_on(db.put_run(&stored)) {
                eprintln!(
                    "warning: run {} was not stored in the database: {e}",
                    run.id
                );
            }
        }
        result?;
        Ok(recorded?.id)
    })
}

/// The reload token from the environment: unset or empty disables reloading over HTTP; a token
/// of blanks is refused (no `Authorization` header could carry it, so the endpoint would be on
/// with nothing able to use it).
fn admin_token() -> anyhow::Result<Option<String>> {
    let name = movierec::server::reload::ADMIN_TOKEN_ENV;
    match std::env::var(name) {
        Ok(token) if token.is_empty() => Ok(None),
        Ok(token) if token.trim().is_empty() || token.trim() != token => Err(anyhow::anyhow!(
            "{name} must be a token without leading or trailing blanks (or unset to disable \
             reloading over HTTP)"
        )),
        Ok(token) => Ok(Some(token)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(anyhow::anyhow!("{name} is not valid UTF-8")),
    }
}

fn train_and_report(
    data: &Path,
    out: &Path,
    options: &TrainOptions,
    tracking: &commands::Tracking,
) -> anyhow::Result<()> {
    let started = commands::start(RunKind::Train, data);
    let result = train(data, out, options);
    let run = commands::train_run(data, out, started, &result);
    let recorded = tracking.record(run);
    warn_unrecorded(&result, &recorded);
    let manifest = result?;
    let run = recorded?;
    eprintln!(
        "movierec: trained on {} movies, {} ratings in {:.2} s → {}",
        manifest.dataset.movies,
        manifest.dataset.ratings,
        manifest.training_seconds,
        out.display()
    );
    print_stages(&manifest);
    for (kind, model) in &manifest.models {
        let recall = |index| model.indexes.get(&index).map_or(1.0, |i| i.recall_at_10);
        eprintln!(
            "  {kind}: {} dimensions, recall@10 annoy {:.3}, hnsw {:.3}",
            model.dim,
            recall(IndexKind::Annoy),
            recall(IndexKind::Hnsw)
        );
    }
    for (kind, lists) in &manifest.neighbour_lists {
        eprintln!("  {kind}: {} neighbours per movie", lists.neighbours);
    }
    print_incremental(&manifest.incremental);
    print_tuning(&manifest.tuning);
    eprintln!(
        "  more like this = {}; fans also liked (collaborative) = {}; personal recommendations \
         from {}",
        movierec::engine::DEFAULT_MODEL,
        manifest.default_collaborative,
        manifest.personal.model
    );
    report_run(&run);
    Ok(())
}

/// Reads one movieId per line (blank lines and `#` comments skipped) and prints every query's
/// neighbours.
fn run_batch(
    engine: &Engine,
    file: &Path,
    format: &str,
    k: usize,
    model: ModelKind,
    index: IndexKind,
) -> anyhow::Result<()> {
    use std::io::Write;
    if format != "csv" && format != "jsonl" {
        anyhow::bail!("--format: unknown format {format:?}; expected csv or jsonl");
    }
    let text =
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let mut ids = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let id: u32 = line.parse().map_err(|_| {
            anyhow::anyhow!("{}:{}: {line:?} is not a movieId", file.display(), n + 1)
        })?;
        if engine.catalog().item_of(id).is_none() {
            anyhow::bail!("{}:{}: no movie has movieId {id}", file.display(), n + 1);
        }
        ids.push(id);
    }
    let results = engine.similar_batch(&ids, k, model, index)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written: std::io::Result<()> = (|| {
        if format == "csv" {
            writeln!(out, "queryMovieId,rank,movieId,score")?;
            for (query, neighbours) in ids.iter().zip(&results) {
                for (rank, (movie_id, score)) in neighbours.iter().enumerate() {
                    writeln!(out, "{query},{},{movie_id},{score:.6}", rank + 1)?;
                }
            }
        } else {
            for (query, neighbours) in ids.iter().zip(&results) {
                let row = serde_json::json!({
                    "queryMovieId": query,
                    "results": neighbours
                        .iter()
                        .map(|(m, s)| serde_json::json!({"movieId": m, "score": s}))
                        .collect::<Vec<_>>(),
                });
                writeln!(out, "{row}")?;
            }
        }
        out.flush()
    })();
    match written {
        // A closed pipe (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
