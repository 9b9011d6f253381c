-- Customs search received certificates by exporter too: its name as the certificate gives it,
-- kept when the certificate arrives (certificates received before this version have none).
ALTER TABLE received_certificates ADD COLUMN exporter TEXT;
CREATE INDEX received_certificates_received_at ON received_certificates(received_at);
