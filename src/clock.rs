//! The one time formatter: timestamps in manifests and run records are RFC 3339 in UTC with
//! milliseconds (`2026-12-05T01:23:07.123Z`), sortable as text.

/// Now, as RFC 3339 in UTC with milliseconds.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

/// The time now in whole seconds since the Unix epoch (what ratings are stamped with).
pub fn unix_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
