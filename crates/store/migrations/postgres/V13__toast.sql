-- How PostgreSQL stores the large values (TOAST). The documents are deflated by the store
-- itself (`text::pack`), so PostgreSQL's own compression (pglz) only spends time failing to
-- shrink them: they are stored out of line as they are. The outbox's envelopes are JSON with a
-- base64 payload, which lz4 compresses at a small part of pglz's cost (in a profile of
-- `originlink bench exchange --postgres`, pglz_compress was PostgreSQL's largest function).
ALTER TABLE applications ALTER COLUMN document SET STORAGE EXTERNAL;
ALTER TABLE received_certificates ALTER COLUMN document SET STORAGE EXTERNAL;
ALTER TABLE certificates ALTER COLUMN signed SET STORAGE EXTERNAL;
ALTER TABLE status_lists ALTER COLUMN signed SET STORAGE EXTERNAL;
ALTER TABLE outbox ALTER COLUMN body SET COMPRESSION lz4;
