ALTER TABLE received_certificates ADD COLUMN status TEXT NOT NULL DEFAULT 'valid';
ALTER TABLE received_certificates ADD COLUMN verdict TEXT;
ALTER TABLE received_certificates ADD COLUMN revoked_reason TEXT;
ALTER TABLE received_certificates ADD COLUMN message_id TEXT;
CREATE INDEX certificates_number ON certificates(number, version);
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  recipient TEXT NOT NULL,
  kind TEXT NOT NULL,
  cert_key TEXT,
  body BLOB NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  next_attempt_at TEXT NOT NULL,
  lease_until TEXT,
  last_error TEXT,
  dead INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox(next_attempt_at, seq) WHERE dead = 0;
CREATE INDEX outbox_dead ON outbox(seq) WHERE dead = 1;
CREATE TABLE inbox (
  message_id TEXT PRIMARY KEY,
  from_country TEXT NOT NULL,
  kind TEXT NOT NULL,
  state TEXT NOT NULL,
  received_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE inbox_held (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id TEXT NOT NULL UNIQUE REFERENCES inbox(message_id),
  cert_key TEXT NOT NULL,
  waits_for INTEGER NOT NULL,
  message TEXT NOT NULL,
  held_at TEXT NOT NULL
);
CREATE INDEX inbox_held_wait ON inbox_held(cert_key, waits_for);
CREATE TABLE certificate_statuses (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  number TEXT NOT NULL,
  version INTEGER NOT NULL,
  from_country TEXT NOT NULL,
  status TEXT NOT NULL,
  code TEXT NOT NULL,
  detail TEXT NOT NULL,
  message_id TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE INDEX certificate_statuses_cert ON certificate_statuses(number, version, id);
