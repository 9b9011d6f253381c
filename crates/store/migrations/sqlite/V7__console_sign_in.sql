-- People sign in to the console with a password (its argon2id hash), in sessions (only the
-- session id's SHA-256 is stored), or set their password through a one-time invitation.
ALTER TABLE users ADD COLUMN password_hash TEXT;
CREATE TABLE sessions (
  id_hash BLOB PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  csrf TEXT NOT NULL,
  created_at TEXT NOT NULL,
  last_seen_at TEXT NOT NULL,
  ended_at TEXT
);
CREATE INDEX sessions_user ON sessions(user_id) WHERE ended_at IS NULL;
CREATE TABLE invitations (
  token_hash BLOB PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  used_at TEXT
);
-- The console's search by certificate number, company or user walks these, not the tables.
CREATE INDEX applications_created_by ON applications(created_by);
CREATE INDEX certificates_number_application ON certificates(number, application_id);
-- The review queue: submitted applications, oldest first.
CREATE INDEX applications_status ON applications(status, id);
