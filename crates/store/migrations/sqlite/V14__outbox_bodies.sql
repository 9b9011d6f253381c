-- An outbox message's envelope in a table of its own, written once when the message is
-- enqueued and deleted with it. Claiming, failing and reviving a message update only its small
-- row in `outbox`, so SQLite no longer rewrites the envelope (kilobytes of overflow pages) and
-- copies it again at the checkpoint each time. Rows enqueued before keep their body in `outbox`
-- until this moves it.
CREATE TABLE outbox_bodies (
  seq INTEGER PRIMARY KEY,
  body BLOB NOT NULL
);
INSERT INTO outbox_bodies (seq, body) SELECT seq, body FROM outbox;
UPDATE outbox SET body = X'';
