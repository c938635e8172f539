//! Who may do what: the admin token (`MOVIEREC_ADMIN_TOKEN`) and profiles' own tokens.
//!
//! Tokens travel as `Authorization: Bearer TOKEN`. The admin token is compared in constant time;
//! a profile's token is stored only as its SHA-256 hash, and the hash of the token given is
//! compared in constant time with the stored one. A profile's ratings and recommendations need
//! its token (or the admin token): `401 unauthorized` without a token or with one that belongs
//! to nobody, `403 forbidden` with another profile's. The users of the imported release have no
//! token: anyone may read them (as before there was a database), only the admin may change them.

use super::error::ApiError;
use super::ServerState;
use crate::database::{token_hash, Database};
use axum::http::{header, HeaderMap, StatusCode};

/// Environment variable holding the admin token (`Authorization: Bearer TOKEN`) that the admin
/// routes (`/api/admin/…`, reload included) require; without it they are off.
pub const ADMIN_TOKEN_ENV: &str = "MOVIEREC_ADMIN_TOKEN";

/// Compares without an early exit, so the time taken says nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `Authorization: Bearer TOKEN` value; the scheme is case-insensitive
/// (RFC 9110, section 11.1), so `bearer TOKEN` is read too.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
        .filter(|t| !t.is_empty())
}

/// The bearer token of a request, if it has one.
pub(super) fn request_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
}

/// Whether `token` is the admin token (false when the server has none).
pub(super) fn is_admin(state: &ServerState, token: Option<&str>) -> bool {
    match (state.admin_token.as_deref(), token) {
        (Some(expected), Some(given)) => constant_time_eq(given.as_bytes(), expected.as_bytes()),
        _ => false,
    }
}

/// Requires the admin token: `404` when the server has none (the admin routes are off), `401`
/// without it.
pub(super) fn require_admin(state: &ServerState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.admin_token.is_none() {
        return Err(ApiError::not_found(format!(
            "the admin routes are off: start the server with {} set",
            ADMIN_TOKEN_ENV
        )));
    }
    if is_admin(state, request_token(headers)) {
        Ok(())
    } else {
        Err(unauthorized(
            "this route needs the header `Authorization: Bearer <admin token>`",
        ))
    }
}

pub(super) fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

pub(super) fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

/// What a request may do with a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Access {
    /// Read its ratings and recommendations.
    Read,
    /// Change its ratings.
    Write,
}

/// Who was let in: the key the request's writes are rate-limited under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Caller {
    /// The profile's own token (its hash).
    Profile([u8; 32]),
    /// The admin token.
    Admin,
    /// Nobody (reading a release user).
    Anyone,
}

/// Checks that the request may `access` the profile `user_id` of `db`; `404 user_not_found`
/// for a user that does not exist.
pub(super) async fn authorise(
    state: &ServerState,
    db: &Database,
    headers: &HeaderMap,
    user_id: u32,
    access: Access,
) -> Result<Caller, ApiError> {
    let token = request_token(headers);
    let admin = is_admin(state, token);
    let user = db.user_cached(user_id).await?;
    if admin {
        // Still a 404 for a user that does not exist.
        return match user {
            Some(_) => Ok(Caller::Admin),
            None => Err(crate::Error::UserNotFound { user_id }.into()),
        };
    }
    let given = token.map(token_hash);
    // Whose token it is: this profile's (compared in constant time), else looked up (only on
    // the way to a 401 or 403).
    let owner = match (&user, given) {
        (Some(u), Some(hash)) if u.token_hash.is_some_and(|h| constant_time_eq(&h, &hash)) => {
            Some(user_id)
        }
        (_, Some(hash)) => db.user_of_token(hash).await?,
        _ => None,
    };
    let Some(user) = user else {
        return Err(crate::Error::UserNotFound { user_id }.into());
    };
    match (user.token_hash, given) {
        (Some(_), Some(hash)) if owner == Some(user_id) => Ok(Caller::Profile(hash)),
        (_, Some(_)) if owner.is_some() => Err(forbidden(format!(
            "this token belongs to another profile, not to user {user_id}"
        ))),
        (_, Some(_)) => Err(unauthorized("the bearer token belongs to no profile")),
        (None, None) if access == Access::Read => Ok(Caller::Anyone),
        (None, None) => Err(forbidden(format!(
            "user {user_id} is a user of the imported release: their ratings change only through \
             POST /api/admin/ratings"
        ))),
        (Some(_), None) => Err(unauthorized(format!(
            "user {user_id} is a profile: send its token as `Authorization: Bearer <token>`"
        ))),
    }
}

#[cfg(test)]
mod bearer_tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }
}
