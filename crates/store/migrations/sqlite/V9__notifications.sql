-- Notifications: what people are told, made from the audit log (and from deadlines and dead
-- letters) by the node's notifier, one row per audience ('role:officer', 'company:3'), kept
-- once per key; their e-mails and webhooks are deliveries retried until delivered.
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN notifications_seen INTEGER NOT NULL DEFAULT 0;
CREATE TABLE notifications (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL UNIQUE,
  audience TEXT NOT NULL,
  kind TEXT NOT NULL,
  link TEXT NOT NULL,
  args TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE INDEX notifications_audience ON notifications(audience, id);
CREATE TABLE notification_deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  notification_id INTEGER NOT NULL REFERENCES notifications(id),
  channel TEXT NOT NULL,
  target TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at TEXT NOT NULL,
  delivered_at TEXT,
  failed_at TEXT,
  last_error TEXT
);
CREATE INDEX notification_deliveries_due ON notification_deliveries(next_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE TABLE notifier_cursor (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL
);
-- What happened before this version is history, not news: the notifier starts at the audit
-- log's head as it is now, so an upgraded node tells (and e-mails) nobody about its past.
INSERT INTO notifier_cursor (id, seq) SELECT 1, COALESCE(MAX(seq), 0) FROM audit_events;
