-- Certificate status lists (issue 17). When an issued certificate stopped being good
-- (revoked or superseded), read back from the audit log for those changed before this version;
-- and the signed status lists this node published (its own country's) or holds for its
-- partners (received over the exchange), the newest of each issuer only.
ALTER TABLE certificates ADD COLUMN status_at TEXT;
UPDATE certificates SET status_at = COALESCE(
  (SELECT e.at FROM audit_events e
     WHERE e.entity = 'certificate/' || certificates.id
       AND e.action IN ('certificate.revoked', 'certificate.superseded')
     ORDER BY e.seq DESC LIMIT 1),
  issued_at)
WHERE status <> 'issued';
CREATE INDEX certificates_not_good ON certificates(status) WHERE status <> 'issued';
CREATE TABLE status_lists (
  issuer TEXT PRIMARY KEY,
  sequence INTEGER NOT NULL,
  issued_at TEXT NOT NULL,
  next_update TEXT NOT NULL,
  signed BLOB NOT NULL,
  stored_at TEXT NOT NULL
);
