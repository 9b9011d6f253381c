-- Searching by any part of a certificate number, or of a received certificate's exporter,
-- reads a trigram index instead of every row: at a million certificates a scan of the table
-- (each row holds its signed document) takes seconds. External-content FTS5 tables hold only
-- the index; triggers keep them in step with the rows.
CREATE VIRTUAL TABLE certificate_search USING fts5(
  number, content = 'certificates', content_rowid = 'id', tokenize = 'trigram'
);
CREATE TRIGGER certificate_search_insert AFTER INSERT ON certificates BEGIN
  INSERT INTO certificate_search (rowid, number) VALUES (new.id, new.number);
END;
CREATE TRIGGER certificate_search_delete AFTER DELETE ON certificates BEGIN
  INSERT INTO certificate_search (certificate_search, rowid, number) VALUES ('delete', old.id, old.number);
END;
CREATE TRIGGER certificate_search_update AFTER UPDATE OF number ON certificates BEGIN
  INSERT INTO certificate_search (certificate_search, rowid, number) VALUES ('delete', old.id, old.number);
  INSERT INTO certificate_search (rowid, number) VALUES (new.id, new.number);
END;
INSERT INTO certificate_search (certificate_search) VALUES ('rebuild');

CREATE VIRTUAL TABLE received_search USING fts5(
  number, exporter, content = 'received_certificates', content_rowid = 'id', tokenize = 'trigram'
);
CREATE TRIGGER received_search_insert AFTER INSERT ON received_certificates BEGIN
  INSERT INTO received_search (rowid, number, exporter) VALUES (new.id, new.number, new.exporter);
END;
CREATE TRIGGER received_search_delete AFTER DELETE ON received_certificates BEGIN
  INSERT INTO received_search (received_search, rowid, number, exporter)
  VALUES ('delete', old.id, old.number, old.exporter);
END;
CREATE TRIGGER received_search_update AFTER UPDATE OF number, exporter ON received_certificates BEGIN
  INSERT INTO received_search (received_search, rowid, number, exporter)
  VALUES ('delete', old.id, old.number, old.exporter);
  INSERT INTO received_search (rowid, number, exporter) VALUES (new.id, new.number, new.exporter);
END;
INSERT INTO received_search (received_search) VALUES ('rebuild');
