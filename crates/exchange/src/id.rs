//! Message ids: UUIDv7 (RFC 9562), time-ordered so ids sort roughly by creation.

use chrono::{DateTime, Utc};
use uuid::{NoContext, Timestamp, Uuid};

/// A new UUIDv7 for `now`: the milliseconds of `now` (the injected clock, not the system's;
/// before 1970 counts as 1970), then random bits.
pub fn new_id(now: DateTime<Utc>) -> String {
    let (secs, nanos) = match u64::try_from(now.timestamp()) {
        Ok(secs) => (secs, now.timestamp_subsec_nanos()),
        Err(_) => (0, 0),
    };
    Uuid::new_v7(Timestamp::from_unix(NoContext, secs, nanos)).to_string()
}

/// Whether `s` is a UUID in its canonical text form (lower- or upper-case hex).
pub fn is_uuid(s: &str) -> bool {
    // 36 characters: only the hyphenated form, not the simple, braced or URN ones.
    s.len() == 36 && Uuid::try_parse(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_v7_uuids_and_distinct() {
        let now = Utc::now();
        let a = new_id(now);
        let b = new_id(now);
        assert!(is_uuid(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(&a[14..15], "7");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert!(!is_uuid("0190-not-a-uuid"));
        assert!(!is_uuid(&a.replace('-', "_")));
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let t = Utc::now();
        let a = new_id(t);
        let b = new_id(t + chrono::Duration::milliseconds(2));
        assert!(a < b);
    }
}
