//! The audit log as a hash chain. Each event's hash is SHA-256 over the previous event's hash
//! and the event's canonical bytes; the chain head (last sequence number and hash) is kept
//! apart, so deleting the newest event is caught too.
//!
//! Canonical bytes: the JSON array `[seq, at, actor, action, entity, before, after]`, with
//! `before`/`after` as the exact stored text. Both backends store text exactly, so the bytes
//! hashed at append time are the bytes re-hashed at verification.

use serde::Serialize;

use crate::hex;

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit event: who did what, when, with the state before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Who.
    pub actor: String,
    /// What, e.g. `application.approved`.
    pub action: String,
    /// On what, e.g. `application/12`.
    pub entity: String,
    /// The state before, as JSON text (`null` for a creation).
    pub before: String,
    /// The state after, as JSON text.
    pub after: String,
    /// The previous event's hash.
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

/// An event about to be appended (the backend fills in seq and the hashes).
#[derive(Debug, Clone)]
pub(crate) struct PendingEvent {
    pub action: &'static str,
    pub entity: String,
    pub before: String,
    pub after: String,
}

impl PendingEvent {
    pub(crate) fn new(action: &'static str, entity: String, before: String, after: String) -> Self {
        PendingEvent { action, entity, before, after }
    }
}

/// The canonical bytes of an event.
pub fn canonical(
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    entity: &str,
    before: &str,
    after: &str,
) -> Vec<u8> {
    serde_json::to_vec(&(seq, at, actor, action, entity, before, after)).unwrap_or_default()
}

/// SHA-256(prev_hash text || canonical bytes), as hex.
pub fn chain_hash(prev_hash: &str, canonical: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(prev_hash.as_bytes());
    ctx.update(canonical);
    hex(ctx.finish().as_ref())
}

/// Why the chain is broken, naming the first broken event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at event {seq}: {reason}")]
pub struct Broken {
    /// The sequence number of the first broken event (for a missing tail: the first missing).
    pub seq: i64,
    /// What is wrong: `AUDIT_HASH_MISMATCH`, `AUDIT_LINK_BROKEN`, `AUDIT_SEQ_GAP`,
    /// `AUDIT_HEAD_MISMATCH`.
    pub reason: &'static str,
}

/// Checks a chain incrementally, event by event in seq order, so a long log is verified in
/// pages without holding it in memory.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    prev: String,
    expected_seq: i64,
}

impl Default for ChainCheck {
    fn default() -> Self {
        ChainCheck { prev: GENESIS.to_owned(), expected_seq: 1 }
    }
}

impl ChainCheck {
    /// Checks the next event.
    pub fn feed(&mut self, e: &AuditEvent) -> Result<(), Broken> {
        if e.seq != self.expected_seq {
            // A deleted event shows as a gap; name the first missing position.
            return Err(Broken { seq: self.expected_seq, reason: "AUDIT_SEQ_GAP" });
        }
        if e.prev_hash != self.prev {
            return Err(Broken { seq: e.seq, reason: "AUDIT_LINK_BROKEN" });
        }
        let c = canonical(e.seq, &e.at, &e.actor, &e.action, &e.entity, &e.before, &e.after);
        if chain_hash(&self.prev, &c) != e.hash {
            return Err(Broken { seq: e.seq, reason: "AUDIT_HASH_MISMATCH" });
        }
        self.prev = e.hash.clone();
        self.expected_seq += 1;
        Ok(())
    }

    /// Ends the check against the chain head; returns the number of events checked.
    pub fn finish(self, head: &(i64, String)) -> Result<u64, Broken> {
        let last = self.expected_seq - 1;
        if head.0 != last || head.1 != self.prev {
            // The newest events were removed (or the head was edited).
            return Err(Broken { seq: last + 1, reason: "AUDIT_HEAD_MISMATCH" });
        }
        Ok(last as u64)
    }
}

/// Verifies `events` (in seq order) against the chain head. Returns the number of events.
pub fn verify(events: &[AuditEvent], head: &(i64, String)) -> Result<u64, Broken> {
    let mut check = ChainCheck::default();
    for e in events {
        check.feed(e)?;
    }
    check.finish(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> (Vec<AuditEvent>, (i64, String)) {
        let mut prev = GENESIS.to_owned();
        let mut out = vec![];
        for seq in 1..=n {
            let (at, actor, action, entity) = ("2026-01-01T00:00:00Z", "a", "x.created", format!("x/{seq}"));
            let h = chain_hash(&prev, &canonical(seq, at, actor, action, &entity, "null", "{}"));
            out.push(AuditEvent {
                seq,
                at: at.into(),
                actor: actor.into(),
                action: action.into(),
                entity,
                before: "null".into(),
                after: "{}".into(),
                prev_hash: prev.clone(),
                hash: h.clone(),
            });
            prev = h;
        }
        (out, (n, prev))
    }

    #[test]
    fn intact_chain_verifies() {
        let (ev, head) = chain(5);
        assert_eq!(verify(&ev, &head), Ok(5));
        assert_eq!(verify(&[], &(0, GENESIS.into())), Ok(0));
    }

    #[test]
    fn each_kind_of_damage_names_the_event() {
        let (ev, head) = chain(5);
        let mut changed = ev.clone();
        changed[2].after = "{\"status\":\"x\"}".into();
        assert_eq!(verify(&changed, &head).unwrap_err(), Broken { seq: 3, reason: "AUDIT_HASH_MISMATCH" });
        let mut deleted = ev.clone();
        deleted.remove(1);
        assert_eq!(verify(&deleted, &head).unwrap_err().seq, 2);
        let mut tail = ev.clone();
        tail.pop();
        assert_eq!(verify(&tail, &head).unwrap_err(), Broken { seq: 5, reason: "AUDIT_HEAD_MISMATCH" });
        let mut swapped = ev.clone();
        swapped.swap(1, 2);
        swapped[1].seq = 2;
        swapped[2].seq = 3;
        assert_eq!(verify(&swapped, &head).unwrap_err(), Broken { seq: 2, reason: "AUDIT_LINK_BROKEN" });
    }
}
