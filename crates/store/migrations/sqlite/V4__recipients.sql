ALTER TABLE inbox ADD COLUMN reason TEXT;
CREATE INDEX inbox_quarantined ON inbox(updated_at) WHERE state = 'quarantined';
CREATE TABLE inbox_refused (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id TEXT NOT NULL,
  from_country TEXT NOT NULL,
  kind TEXT NOT NULL,
  via TEXT NOT NULL,
  code TEXT NOT NULL,
  reason TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE TABLE certificate_recipients (
  number TEXT NOT NULL,
  recipient TEXT NOT NULL,
  PRIMARY KEY (number, recipient)
) WITHOUT ROWID;
-- Who may report on a certificate of ours: the countries it was sent to. Those of the
-- messages still in the outbox are known; any other certificate issued before this migration
-- keeps accepting reports from every member ('*').
INSERT INTO certificate_recipients (number, recipient)
  SELECT DISTINCT substr(cert_key, instr(cert_key, '/') + 1), recipient FROM outbox
  WHERE cert_key IS NOT NULL AND instr(cert_key, '/') > 0
    AND kind IN ('certificate.issued', 'certificate.replaced', 'certificate.revoked');
INSERT INTO certificate_recipients (number, recipient)
  SELECT DISTINCT number, '*' FROM certificates
  WHERE number NOT IN (SELECT number FROM certificate_recipients);
