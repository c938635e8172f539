//! A client of a running movierec server's JSON API: what `movierec recommend --server URL` uses
//! (the seed's `call_api.py`), answering with the same types as a local [`crate::engine::Engine`]
//! so the output is the same either way.

use crate::catalog::{MovieFilter, MovieQuery};
use crate::engine::{PersonalRecommendations, PersonalTarget, Recommendations, SimilarRequest};
use crate::{Error, Result};
use serde_json::{json, Value};
use std::time::Duration;

/// Longest a request may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read (k ≤ 100 movies is a few tens of kilobytes).
const MAX_ANSWER_BYTES: u64 = 16 * 1024 * 1024;

/// A movierec server at a base URL (`http://host:port`).
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the server at `base` (`http://` or `https://`, no path needed).
    pub fn new(base: &str) -> Result<Client> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::invalid(
                "server",
                format!("--server: {base:?} is not an http:// or https:// URL"),
            ));
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .user_agent(concat!("movierec/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Client { base, agent })
    }

    /// `POST /api/recommendations`.
    pub fn similar(&self, request: &SimilarRequest) -> Result<Recommendations> {
        let mut body = json!({
            "k": request.k,
            "model": request.model,
            "index": request.index,
            "filter": request.filter,
        });
        if request.also.is_empty() {
            body["movie"] = movie_json(&request.movie);
        } else {
            let movies = std::iter::once(&request.movie).chain(&request.also);
            body["movies"] = movies.map(movie_json).collect();
        }
        self.decode(self.post("/api/recommendations", &body))
    }

    /// `GET /api/users/{userId}/recommendations` or `POST /api/recommendations/for-likes`.
    pub fn personal(
        &self,
        target: &PersonalTarget,
        k: usize,
        filter: &MovieFilter,
    ) -> Result<PersonalRecommendations> {
        match target {
            PersonalTarget::User(user) => {
                let url = format!("{}/api/users/{user}/recommendations", self.base);
                let join = |v: &[String]| v.join(",");
                let mut request = self.agent.get(&url).query("k", k.to_string());
                let mut pairs = vec![
                    ("genres", join(&filter.genres)),
                    ("exclude_genres", join(&filter.exclude_genres)),
                    (
                        "exclude",
                        filter
                            .exclude
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                ];
                if let Some(min_ratings) = filter.min_ratings {
                    pairs.push(("min_ratings", min_ratings.to_string()));
                }
                pairs.extend(filter.year_min.map(|y| ("year_min", y.to_string())));
                pairs.extend(filter.year_max.map(|y| ("year_max", y.to_string())));
                for (key, value) in pairs.into_iter().filter(|(_, v)| !v.is_empty()) {
                    request = request.query(key, value);
                }
                self.decode(self.read(&url, request.call()))
            }
            PersonalTarget::Likes { likes, dislikes } => {
                let body = json!({
                    "likes": likes.iter().map(movie_json).collect::<Vec<_>>(),
                    "dislikes": dislikes.iter().map(movie_json).collect::<Vec<_>>(),
                    "k": k,
                    "filter": filter,
                });
                self.decode(self.post("/api/recommendations/for-likes", &body))
            }
        }
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let sent = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string());
        self.read(&url, sent)
    }

    /// The JSON answer, or the server's error message as an error.
    fn read(
        &self,
        url: &str,
        result: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value> {
        let failed = |message: String| Error::invalid("server", format!("{url}: {message}"));
        let mut response = result.map_err(|e| failed(format!("request failed: {e}")))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()
            .map_err(|e| failed(format!("reading the answer failed: {e}")))?;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if (200..300).contains(&status) {
            return json
                .ok_or_else(|| failed(format!("HTTP {status} with an answer that is not JSON")));
        }
        // The server's own message, as a local run would have printed it.
        match json.as_ref().and_then(|j| j["error"]["message"].as_str()) {
            Some(message) => Err(Error::Remote {
                status,
                message: message.to_string(),
            }),
            None => Err(failed(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))),
        }
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, value: Result<Value>) -> Result<T> {
        serde_json::from_value(value?).map_err(|e| {
            Error::invalid(
                "server",
                format!("{}: the answer is not a movierec answer: {e}", self.base),
            )
        })
    }
}

fn movie_json(query: &MovieQuery) -> Value {
    match query {
        MovieQuery::Id(id) => json!(id),
        MovieQuery::Title(title) => json!(title),
    }
}
