//! Test support: JSON over HTTP to a running server, with the status and body of any answer.
#![allow(dead_code)]

use serde_json::Value;
use std::time::Duration;

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// An answer: status, `Retry-After`, and the body as JSON (null when empty).
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Value,
}

pub fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, String)>,
) -> Result<Answer, ureq::Error> {
    let agent = agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut response = match (method, body) {
        ("GET", _) => {
            let mut r = agent.get(url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call()?
        }
        ("DELETE", _) => {
            let mut r = agent.delete(url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call()?
        }
        (method, body) => {
            let mut r = match method {
                "POST" => agent.post(url),
                "PUT" => agent.put(url),
                "PATCH" => agent.patch(url),
                other => panic!("{other}"),
            };
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            match body {
                Some((content_type, text)) => r.content_type(content_type).send(text)?,
                None => r.send_empty()?,
            }
        }
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response.body_mut().read_to_string()?;
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {url}: {e}: {text}"))
    };
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

pub fn send(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> Answer {
    call(
        method,
        url,
        token,
        body.map(|b| ("application/json", b.to_string())),
    )
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}
