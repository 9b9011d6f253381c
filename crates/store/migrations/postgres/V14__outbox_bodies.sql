-- SQLite's V14 moves outbox envelopes out of the rows that claims update. PostgreSQL needs no
-- such step: an update that leaves a large (TOASTed) value alone keeps it where it is. The
-- version is kept so that both backends are at the same schema version.
SELECT 1;
