-- The revenue report selects lines by declaration date.
CREATE INDEX declarations_date ON declarations(declaration_date);
-- The importer's normalized key (`originlink_customs::risk::importer_key`), so that risk scoring
-- recognises a repeat exporter -> importer pair whatever the spelling of the name. Declarations
-- stored before this migration have none: they are compared by their importer name as written.
ALTER TABLE declarations ADD COLUMN importer_key TEXT;
CREATE INDEX declarations_importer_key ON declarations(importer_key) WHERE importer_key IS NOT NULL;
