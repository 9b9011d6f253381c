-- An administrator may disable a user: a disabled user's tokens no longer authenticate.
ALTER TABLE users ADD COLUMN disabled_at TEXT;
CREATE INDEX tokens_user ON tokens(user_id) WHERE revoked_at IS NULL;
