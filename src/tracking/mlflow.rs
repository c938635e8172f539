//! Logging runs to an MLflow tracking server through its REST API 2.0, over blocking HTTP.
//!
//! One [`MlflowClient::log_run`] makes these requests, under `<tracking URI>/api/2.0/mlflow/`:
//!
//! 1. `GET experiments/get-by-name` for the experiment (default [`DEFAULT_EXPERIMENT`]), and
//!    `POST experiments/create` if it does not exist;
//! 2. `POST runs/create` with the start time, the run name and the system tags
//!    (`mlflow.source.name`, `mlflow.runName`, `movierec.kind`, `movierec.dataset.fingerprint`,
//!    `movierec.code_version`, `movierec.host`, …);
//! 3. `POST runs/log-batch`, as often as MLflow's limits require (100 params or tags, 1000
//!    metrics, under 1 MB a request), for params, metrics and the record's own tags;
//! 4. `POST runs/update` with the final status (`FINISHED`/`FAILED`) and end time. If step 3
//!    fails, the run is still closed, as `FAILED`, and the error returned.
//!
//! Keys are sanitised to the characters every MLflow version accepts (ASCII letters and digits,
//! `_ - . /` and space; anything else becomes `_`), made into paths MLflow does not reject
//! (no empty, `.` or `..` segments) and cut to 250 characters; param values are cut to 6000
//! characters, tag values to 5000.
//!
//! Credentials come from the environment as with MLflow's own clients:
//! `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD` (basic auth, or `user:password@` in
//! the URI) or `MLFLOW_TRACKING_TOKEN` (bearer). `MLFLOW_TRACKING_SERVER_CERT_PATH` names a PEM
//! file of CA certificates to trust for https instead of the built-in Mozilla roots, and
//! `MLFLOW_TRACKING_INSECURE_TLS=true` turns certificate checks off. Proxies are taken from
//! `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY`.

use super::{metric_map::non_finite_name, Error, MlflowRun, Result, RunRecord, RunStatus};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

/// The experiment runs go to unless [`MlflowClient::with_experiment`] says otherwise.
pub const DEFAULT_EXPERIMENT: &str = "movierec";
/// The default time limit of one request, connecting included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Environment variable with the tracking URI, read by [`MlflowClient::from_env`].
pub const TRACKING_URI_ENV: &str = "MLFLOW_TRACKING_URI";
/// Environment variable with the experiment name, read by [`MlflowClient::from_env`].
pub const EXPERIMENT_NAME_ENV: &str = "MLFLOW_EXPERIMENT_NAME";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_KEY_CHARS: usize = 250;
const MAX_PARAM_VALUE_CHARS: usize = 6000;
const MAX_TAG_VALUE_CHARS: usize = 5000;
const MAX_PARAMS_OR_TAGS_PER_BATCH: usize = 100;
const MAX_METRICS_PER_BATCH: usize = 1000;
/// MLflow refuses log-batch requests over 1 MB; stay well below.
const MAX_BATCH_BYTES: usize = 900_000;
const MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

/// A client of one MLflow tracking server.
#[derive(Clone)]
pub struct MlflowClient {
    /// `scheme://host[:port][/path]`, no credentials, no trailing slash.
    base: String,
    experiment_name: String,
    /// The `Authorization` header value, if any.
    auth: Option<String>,
    timeout: Duration,
    tls: ureq::tls::TlsConfig,
    agent: ureq::Agent,
}

impl fmt::Debug for MlflowClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MlflowClient")
            .field("tracking_uri", &self.base)
            .field("experiment_name", &self.experiment_name)
            .field("auth", &self.auth.as_ref().map(|_| "(set)"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl MlflowClient {
    /// A client of the tracking server at `tracking_uri` (`http://…` or `https://…`), with
    /// credentials and TLS settings from the environment (see the module documentation).
    /// Nothing is sent until a run is logged.
    pub fn new(tracking_uri: &str) -> Result<Self> {
        let (base, userinfo) = split_uri(tracking_uri)?;
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let auth = match (
            userinfo,
            env("MLFLOW_TRACKING_USERNAME"),
            env("MLFLOW_TRACKING_PASSWORD"),
            env("MLFLOW_TRACKING_TOKEN"),
        ) {
            (Some(userinfo), ..) => Some(format!("Basic {}", base64(userinfo.as_bytes()))),
            (None, Some(user), Some(password), _) => Some(basic_auth(&user, &password)),
            (None, _, _, Some(token)) => Some(format!("Bearer {token}")),
            _ => None,
        };
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = env("MLFLOW_TRACKING_SERVER_CERT_PATH") {
            tls = tls.root_certs(load_ca_certs(&path)?);
        }
        if env("MLFLOW_TRACKING_INSECURE_TLS").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            tls = tls.disable_verification(true);
        }
        let tls = tls.build();
        Ok(MlflowClient {
            agent: build_agent(DEFAULT_TIMEOUT, tls.clone()),
            base,
            experiment_name: DEFAULT_EXPERIMENT.to_string(),
            auth,
            timeout: DEFAULT_TIMEOUT,
            tls,
        })
    }

    /// The client named by `$MLFLOW_TRACKING_URI` (with the experiment `$MLFLOW_EXPERIMENT_NAME`
    /// when set), or `None` when that variable is unset or empty.
    pub fn from_env() -> Option<Result<Self>> {
        let uri = std::env::var(TRACKING_URI_ENV)
            .ok()
            .filter(|v| !v.is_empty())?;
        Some(MlflowClient::new(&uri).map(|client| {
            match std::env::var(EXPERIMENT_NAME_ENV)
                .ok()
                .filter(|v| !v.is_empty())
            {
                Some(name) => client.with_experiment(name),
                None => client,
            }
        }))
    }

    /// Logs runs to experiment `name` instead of [`DEFAULT_EXPERIMENT`]; it is created if
    /// missing.
    pub fn with_experiment(mut self, name: impl Into<String>) -> Self {
        self.experiment_name = name.into();
        self
    }

    /// Sets the time limit of each request (connecting takes at most 5 s of it).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.agent = build_agent(timeout, self.tls.clone());
        self
    }

    /// Uses HTTP basic auth, replacing credentials from the environment.
    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some(basic_auth(user, password));
        self
    }

    /// Uses a bearer token, replacing credentials from the environment.
    pub fn with_bearer_token(mut self, token: &str) -> Self {
        self.auth = Some(format!("Bearer {token}"));
        self
    }

    /// The tracking URI, without credentials.
    pub fn tracking_uri(&self) -> &str {
        &self.base
    }

    /// The experiment runs are logged to.
    pub fn experiment_name(&self) -> &str {
        &self.experiment_name
    }

    /// Logs `record` as a new MLflow run (see the module documentation for the requests) and
    /// returns where it went.
    pub fn log_run(&self, record: &RunRecord) -> Result<MlflowRun> {
        let experiment_id = self.experiment_id()?;
        let start_ms = record.started_at_unix_ms().unwrap_or_else(now_ms);
        // `as` saturates, and turns NaN into 0.
        let duration_ms = (record.duration_seconds.max(0.0) * 1000.0).round() as i64;
        let end_ms = start_ms.saturating_add(duration_ms);
        let run_name = format!("{}-{}", record.kind, record.id);

        let mut system_tags = vec![
            ("mlflow.source.name", "movierec".to_string()),
            ("mlflow.source.type", "LOCAL".to_string()),
            ("mlflow.runName", run_name.clone()),
            ("movierec.run_id", record.id.clone()),
            ("movierec.kind", record.kind.to_string()),
            ("movierec.dataset.path", record.dataset.path.clone()),
            (
                "movierec.dataset.fingerprint",
                record.dataset.fingerprint.clone(),
            ),
            ("movierec.code_version", record.code_version.clone()),
            ("movierec.host", record.host.clone()),
        ];
        if let Some(user) = std::env::var("USER").ok().filter(|u| !u.is_empty()) {
            system_tags.push(("mlflow.user", user));
        }
        let reserved: HashSet<&str> = system_tags.iter().map(|(key, _)| *key).collect();
        let tags: Vec<Value> = system_tags
            .iter()
            .map(|(key, value)| json!({"key": key, "value": truncate(value, MAX_TAG_VALUE_CHARS)}))
            .collect();

        let created = self.post(
            "runs/create",
            &json!({
                "experiment_id": experiment_id,
                "start_time": start_ms,
                "run_name": run_name,
                "tags": tags,
            }),
        )?;
        let run_id = created
            .pointer("/run/info/run_id")
            .or_else(|| created.pointer("/run/info/run_uuid"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                self.error(
                    "runs/create",
                    None,
                    None,
                    "the answer has no run.info.run_id".into(),
                )
            })?
            .to_string();

        let logged = self.log_data(&run_id, record, end_ms, &reserved);
        let status = match (&logged, record.status) {
            (Ok(()), RunStatus::Finished) => "FINISHED",
            _ => "FAILED",
        };
        let closed = self.post(
            "runs/update",
            &json!({"run_id": run_id, "run_uuid": run_id, "status": status, "end_time": end_ms}),
        );
        logged?;
        closed?;
        Ok(MlflowRun {
            tracking_uri: self.base.clone(),
            experiment_id,
            run_id,
        })
    }

    /// Params, metrics and the record's tags, in as many log-batch requests as needed.
    fn log_data(
        &self,
        run_id: &str,
        record: &RunRecord,
        timestamp_ms: i64,
        reserved_tags: &HashSet<&str>,
    ) -> Result<()> {
        let params: Vec<Value> = unique_keys(record.params.iter())
            .into_iter()
            .map(
                |(key, value)| json!({"key": key, "value": truncate(value, MAX_PARAM_VALUE_CHARS)}),
            )
            .collect();
        let metrics: Vec<Value> = unique_keys(record.metrics.iter())
            .into_iter()
            .map(|(key, &value)| {
                let value = match non_finite_name(value) {
                    Some(name) => json!(name),
                    None => json!(value),
                };
                json!({"key": key, "value": value, "timestamp": timestamp_ms, "step": 0})
            })
            .collect();
        let tags: Vec<Value> = unique_keys(record.tags.iter())
            .into_iter()
            .filter(|(key, _)| !reserved_tags.contains(key.as_str()))
            .map(|(key, value)| json!({"key": key, "value": truncate(value, MAX_TAG_VALUE_CHARS)}))
            .collect();
        for (field, items, per_batch) in [
            ("params", params, MAX_PARAMS_OR_TAGS_PER_BATCH),
            ("metrics", metrics, MAX_METRICS_PER_BATCH),
            ("tags", tags, MAX_PARAMS_OR_TAGS_PER_BATCH),
        ] {
            for batch in batches(items, per_batch, MAX_BATCH_BYTES) {
                self.post("runs/log-batch", &json!({"run_id": run_id, field: batch}))?;
            }
        }
        Ok(())
    }

    /// The id of the configured experiment, created if it does not exist yet.
    pub fn experiment_id(&self) -> Result<String> {
        let name = &self.experiment_name;
        if name.trim().is_empty() || name.chars().count() > 500 {
            return Err(Error::Config(format!(
                "MLflow experiment name {name:?} must be 1 to 500 characters"
            )));
        }
        match self.get_experiment_id() {
            Err(e) if e.mlflow_error_code() == Some("RESOURCE_DOES_NOT_EXIST") => {}
            other => return other,
        }
        match self.post("experiments/create", &json!({"name": name})) {
            Ok(created) => created
                .get("experiment_id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    self.error(
                        "experiments/create",
                        None,
                        None,
                        "the answer has no experiment_id".into(),
                    )
                }),
            // Another process created it meanwhile.
            Err(e) if e.mlflow_error_code() == Some("RESOURCE_ALREADY_EXISTS") => {
                self.get_experiment_id()
            }
            Err(e) => Err(e),
        }
    }

    fn get_experiment_id(&self) -> Result<String> {
        let endpoint = "experiments/get-by-name";
        let found = self.get(endpoint, &[("experiment_name", &self.experiment_name)])?;
        let experiment = found.get("experiment");
        let field = |name: &str| experiment.and_then(|e| e.get(name)).and_then(Value::as_str);
        if field("lifecycle_stage") == Some("deleted") {
            return Err(self.error(
                endpoint,
                None,
                None,
                format!(
                    "experiment {:?} is deleted: restore it (`mlflow experiments restore`) or \
                     choose another experiment name",
                    self.experiment_name
                ),
            ));
        }
        field("experiment_id").map(str::to_string).ok_or_else(|| {
            self.error(
                endpoint,
                None,
                None,
                "the answer has no experiment.experiment_id".into(),
            )
        })
    }

    /// The run `run_id` as MLflow returns it from `GET runs/get` (`{"run": {"info", "data"}}`).
    pub fn get_run(&self, run_id: &str) -> Result<Value> {
        self.get("runs/get", &[("run_id", run_id)])
    }

    fn url(&self, endpoint: &str) -> String {
        format!("{}/api/2.0/mlflow/{endpoint}", self.base)
    }

    fn error(
        &self,
        endpoint: &str,
        status: Option<u16>,
        error_code: Option<String>,
        message: String,
    ) -> Error {
        Error::Mlflow {
            endpoint: self.url(endpoint),
            status,
            error_code,
            message,
        }
    }

    fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<Value> {
        let mut request = self.agent.get(self.url(endpoint));
        for (key, value) in query {
            request = request.query(key, value);
        }
        if let Some(auth) = &self.auth {
            request = request.header("Authorization", auth);
        }
        self.answer(endpoint, request.call())
    }

    fn post(&self, endpoint: &str, body: &Value) -> Result<Value> {
        let mut request = self
            .agent
            .post(self.url(endpoint))
            .header("Content-Type", "application/json");
        if let Some(auth) = &self.auth {
            request = request.header("Authorization", auth);
        }
        self.answer(endpoint, request.send(body.to_string()))
    }

    /// Turns a response into its JSON object, or into an error carrying MLflow's error code and
    /// message, or the start of whatever else the server sent.
    fn answer(
        &self,
        endpoint: &str,
        result: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value> {
        let mut response =
            result.map_err(|e| self.error(endpoint, None, None, format!("request failed: {e}")))?;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| {
                self.error(
                    endpoint,
                    Some(status),
                    None,
                    format!("reading the answer failed: {e}"),
                )
            })?;
        let json = serde_json::from_slice::<Value>(&body)
            .ok()
            .filter(Value::is_object);
        if (200..300).contains(&status) {
            return json.ok_or_else(|| {
                self.error(
                    endpoint,
                    Some(status),
                    None,
                    format!(
                        "HTTP {status} with an answer that is not a JSON object ({}); is {} an \
                         MLflow tracking server?",
                        snippet(&body),
                        self.base
                    ),
                )
            });
        }
        let text = |key: &str| {
            json.as_ref()
                .and_then(|j| j.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let error_code = text("error_code");
        let mut message = match text("message") {
            Some(message) => format!("{message} (HTTP {status})"),
            None => format!("HTTP {status}: {}", snippet(&body)),
        };
        if let (300..=399, Some(location)) = (status, &location) {
            message.push_str(&format!(
                "; redirected to {location}: use that as the tracking URI"
            ));
        }
        if status == 401 || status == 403 {
            message.push_str(
                "; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or \
                 MLFLOW_TRACKING_TOKEN",
            );
        }
        Err(self.error(endpoint, Some(status), error_code, message))
    }
}

fn build_agent(timeout: Duration, tls: ureq::tls::TlsConfig) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(CONNECT_TIMEOUT.min(timeout)))
        .http_status_as_error(false)
        // A redirected POST would arrive as a GET; report the new address instead.
        .max_redirects(0)
        .user_agent(concat!("movierec/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls)
        .build()
        .into()
}

/// Splits a tracking URI into the base URL without credentials and the `user:password`, if any.
fn split_uri(uri: &str) -> Result<(String, Option<String>)> {
    let uri = uri.trim();
    let not_http = || {
        Error::Config(format!(
            "MLflow tracking URI {uri:?} is not an http:// or https:// URL: movierec logs to \
             MLflow only through a tracking server (`mlflow server`)"
        ))
    };
    let (scheme, rest) = uri.split_once("://").ok_or_else(not_http)?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(not_http());
    }
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (Some(userinfo.to_string()), host),
        None => (None, authority),
    };
    if host.is_empty() {
        return Err(Error::Config(format!(
            "MLflow tracking URI {uri:?} has no host"
        )));
    }
    let path = path.trim_end_matches('/');
    Ok((format!("{scheme}://{host}{path}"), userinfo))
}

fn load_ca_certs(path: &str) -> Result<ureq::tls::RootCerts> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Config(format!(
            "MLFLOW_TRACKING_SERVER_CERT_PATH={path}: cannot read it: {e}"
        ))
    })?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => {
                return Err(Error::Config(format!(
                    "MLFLOW_TRACKING_SERVER_CERT_PATH={path}: not a PEM file of certificates: {e}"
                )))
            }
        }
    }
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "MLFLOW_TRACKING_SERVER_CERT_PATH={path}: holds no PEM certificate"
        )));
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

/// A key MLflow accepts: allowed characters only, a normalised relative path, at most 250
/// characters, never empty.
pub fn sanitize_key(key: &str) -> String {
    let replaced: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '/') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let normalise = |s: &str| {
        s.split('/')
            .filter(|segment| !segment.is_empty() && *segment != "." && *segment != "..")
            .collect::<Vec<_>>()
            .join("/")
    };
    // Cutting may leave a trailing `/` or `.` segment: normalise again.
    let mut key = normalise(&truncate(&normalise(&replaced), MAX_KEY_CHARS));
    if key.starts_with("..") {
        key.replace_range(..1, "_");
    }
    if key.is_empty() {
        key.push('_');
    }
    key
}

/// Sanitised keys, made unique again by suffixes (`_2`, `_3`, …) where sanitising merged two.
fn unique_keys<'a, V: 'a>(entries: impl Iterator<Item = (&'a String, V)>) -> Vec<(String, V)> {
    let mut seen = HashSet::new();
    entries
        .map(|(key, value)| {
            let base = sanitize_key(key);
            let mut key = base.clone();
            let mut n = 2;
            while !seen.insert(key.clone()) {
                let suffix = format!("_{n}");
                key = format!("{}{suffix}", truncate(&base, MAX_KEY_CHARS - suffix.len()));
                n += 1;
            }
            (key, value)
        })
        .collect()
}

/// Splits `items` into batches of at most `per_batch` items and about `max_bytes` of JSON.
fn batches(items: Vec<Value>, per_batch: usize, max_bytes: usize) -> Vec<Vec<Value>> {
    let mut out: Vec<Vec<Value>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let size = item.to_string().len() + 1;
        match out.last_mut() {
            Some(batch) if batch.len() < per_batch && bytes + size <= max_bytes => {
                batch.push(item);
                bytes += size;
            }
            _ => {
                out.push(vec![item]);
                bytes = size;
            }
        }
    }
    out
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((end, _)) => s[..end].to_string(),
        None => s.to_string(),
    }
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        "empty".to_string()
    } else if text.chars().count() > 200 {
        format!("{:?}…", truncate(&text, 200))
    } else {
        format!("{text:?}")
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sanitised_to_what_mlflow_accepts() {
        assert_eq!(sanitize_key("ndcg@10"), "ndcg_10");
        assert_eq!(sanitize_key("eval/recall 20"), "eval/recall 20");
        assert_eq!(sanitize_key("/a//b/./c/../"), "a/b/c");
        assert_eq!(sanitize_key("..hidden"), "_.hidden");
        assert_eq!(sanitize_key(""), "_");
        assert_eq!(sanitize_key("/"), "_");
        assert_eq!(sanitize_key("é:x"), "__x");
        let long = format!("{}/{}", "a".repeat(249), "b".repeat(10));
        assert_eq!(sanitize_key(&long), "a".repeat(249));
    }

    #[test]
    fn merged_keys_get_suffixes() {
        let a = "a@b".to_string();
        let b = "a#b".to_string();
        let keys: Vec<String> = unique_keys([(&a, 1), (&b, 2)].into_iter())
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["a_b", "a_b_2"]);
    }

    #[test]
    fn batches_respect_count_and_size() {
        let items: Vec<Value> = (0..250).map(|i| json!({"key": i})).collect();
        let sizes: Vec<usize> = batches(items, 100, usize::MAX)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
        let big: Vec<Value> = (0..5).map(|_| json!("x".repeat(400))).collect();
        assert_eq!(batches(big, 100, 1000).len(), 3);
    }

    #[test]
    fn uris_are_checked_and_lose_their_credentials() {
        assert_eq!(
            split_uri("http://127.0.0.1:5000/").unwrap(),
            ("http://127.0.0.1:5000".to_string(), None)
        );
        assert_eq!(
            split_uri("HTTPS://u:p@mlflow.example/prefix/").unwrap(),
            (
                "https://mlflow.example/prefix".to_string(),
                Some("u:p".to_string())
            )
        );
        for bad in [
            "file:./mlruns",
            "./mlruns",
            "databricks",
            "ftp://x",
            "http://",
        ] {
            let e = split_uri(bad).unwrap_err().to_string();
            assert!(e.contains("MLflow tracking URI"), "{bad}: {e}");
        }
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("user:pass", "dXNlcjpwYXNz"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("héllo", 2), "hé");
        assert_eq!(truncate("hi", 5), "hi");
    }
}
