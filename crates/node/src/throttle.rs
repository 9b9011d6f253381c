//! Slowing down repeated wrong passwords, by name, in this process (a leaf: the node's state
//! holds one, the sign-in use case uses it).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// Wrong passwords for one name before the next try must wait.
pub const FREE_TRIES: u32 = 5;

/// Wrong passwords by name, in this process: after [`FREE_TRIES`], each try waits 30 seconds,
/// doubling with each further failure up to 15 minutes; failures older than 15 minutes are
/// forgotten. At most 10,000 names are remembered (the oldest are dropped).
#[derive(Debug, Default)]
pub struct Throttle(Mutex<HashMap<String, (u32, DateTime<Utc>)>>);

impl Throttle {
    const FORGET: Duration = Duration::minutes(15);

    /// How long `name` must still wait, if at all.
    pub fn waiting(&self, name: &str, now: DateTime<Utc>) -> Option<Duration> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let &(failures, last) = map.get(name)?;
        if failures < FREE_TRIES || now - last > Self::FORGET {
            return None;
        }
        let wait = (Duration::seconds(30) * 2i32.pow((failures - FREE_TRIES).min(5))).min(Self::FORGET);
        let until = last + wait;
        (until > now).then(|| until - now)
    }

    /// Records a wrong password for `name` at `now`.
    pub fn failed(&self, name: &str, now: DateTime<Utc>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= 10_000 && !map.contains_key(name) {
            map.retain(|_, (_, last)| now - *last <= Self::FORGET);
            if map.len() >= 10_000 {
                map.clear();
            }
        }
        let e = map.entry(name.to_owned()).or_insert((0, now));
        if now - e.1 > Self::FORGET {
            e.0 = 0;
        }
        *e = (e.0 + 1, now);
    }

    /// Forgets `name`'s wrong passwords (it signed in).
    pub fn succeeded(&self, name: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
    }
}

/// At most `per_minute` requests per key in each minute (fixed windows), in this process:
/// what public pages limit each client address to. At most 100,000 keys are remembered: past
/// that, the previous minutes' are dropped, and if this minute alone has that many, all are
/// (memory stays bounded whatever number of addresses a client uses).
#[derive(Debug)]
pub struct RateLimit {
    per_minute: u32,
    seen: Mutex<HashMap<String, (i64, u32)>>,
}

impl RateLimit {
    const KEYS: usize = 100_000;

    /// `per_minute` requests per key and minute.
    pub fn new(per_minute: u32) -> RateLimit {
        RateLimit { per_minute, seen: Mutex::new(HashMap::new()) }
    }

    /// Counts a request of `key` at `now`: `Err(wait)` when over the limit (not counted).
    pub fn check(&self, key: &str, now: DateTime<Utc>) -> Result<(), Duration> {
        let minute = now.timestamp().div_euclid(60);
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= Self::KEYS && !seen.contains_key(key) {
            seen.retain(|_, (m, _)| *m == minute);
            if seen.len() >= Self::KEYS {
                seen.clear();
            }
        }
        let e = seen.entry(key.to_owned()).or_insert((minute, 0));
        if e.0 != minute {
            *e = (minute, 0);
        }
        if e.1 >= self.per_minute {
            return Err(Duration::seconds((minute + 1) * 60 - now.timestamp()));
        }
        e.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_key_gets_its_quota_per_minute_and_memory_stays_bounded() {
        let limit = RateLimit::new(3);
        let t = Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 10).single().expect("time");
        for _ in 0..3 {
            assert!(limit.check("1.2.3.4", t).is_ok());
        }
        assert_eq!(limit.check("1.2.3.4", t), Err(Duration::seconds(50)), "wait for the next minute");
        assert!(limit.check("5.6.7.8", t).is_ok(), "another client has its own quota");
        assert!(limit.check("1.2.3.4", t + Duration::seconds(50)).is_ok(), "a new minute");
        // A flood of addresses in one minute never holds more than the bound.
        for i in 0..(RateLimit::KEYS + 10) {
            let _ = limit.check(&format!("k{i}"), t);
        }
        let held = limit.seen.lock().expect("lock").len();
        assert!(held <= RateLimit::KEYS, "{held}");
    }
}
