-- Searching by any part of a certificate number, or of a received certificate's exporter,
-- reads a trigram index (pg_trgm, shipped with PostgreSQL and trusted: a database owner may
-- create it) instead of every row.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX certificates_number_trgm ON certificates USING gin (number gin_trgm_ops);
CREATE INDEX received_number_trgm ON received_certificates USING gin (number gin_trgm_ops);
CREATE INDEX received_exporter_trgm ON received_certificates USING gin (exporter gin_trgm_ops);
