CREATE TABLE companies (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  country TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  company_id INTEGER REFERENCES companies(id),
  created_at TEXT NOT NULL
);
CREATE TABLE tokens (
  token_hash BLOB PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  created_at TEXT NOT NULL,
  revoked_at TEXT
);
CREATE TABLE received_certificates (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  issuing_country TEXT NOT NULL,
  number TEXT NOT NULL,
  version INTEGER NOT NULL,
  document BLOB NOT NULL,
  received_at TEXT NOT NULL,
  UNIQUE (issuing_country, number, version)
);
CREATE TABLE applications (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  company_id INTEGER NOT NULL REFERENCES companies(id),
  status TEXT NOT NULL,
  format TEXT NOT NULL,
  document BLOB NOT NULL,
  self_assessment TEXT,
  assessment TEXT,
  replaces INTEGER,
  back_to_back_of INTEGER REFERENCES received_certificates(id),
  reason TEXT,
  certificate_id INTEGER,
  created_by INTEGER NOT NULL REFERENCES users(id),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX applications_company ON applications(company_id);
CREATE TABLE certificates (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  application_id INTEGER NOT NULL UNIQUE REFERENCES applications(id),
  company_id INTEGER NOT NULL REFERENCES companies(id),
  issuer TEXT NOT NULL,
  number TEXT NOT NULL,
  version INTEGER NOT NULL,
  status TEXT NOT NULL,
  supersedes INTEGER REFERENCES certificates(id),
  signed BLOB NOT NULL,
  issued_at TEXT NOT NULL,
  revoked_reason TEXT,
  signed_sha256 TEXT NOT NULL,
  UNIQUE (issuer, number, version)
);
CREATE INDEX certificates_company ON certificates(company_id);
CREATE TABLE number_sequences (
  scope TEXT PRIMARY KEY,
  last INTEGER NOT NULL
);
CREATE TABLE audit_events (
  seq INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  entity TEXT NOT NULL,
  before TEXT NOT NULL,
  after TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE TABLE audit_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
