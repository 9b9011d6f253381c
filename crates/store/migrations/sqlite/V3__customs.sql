CREATE TABLE declarations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  number TEXT NOT NULL UNIQUE,
  importer TEXT NOT NULL,
  importing_country TEXT NOT NULL,
  declaration_date TEXT NOT NULL,
  document TEXT NOT NULL,
  risk_score INTEGER NOT NULL DEFAULT 0,
  risk TEXT NOT NULL DEFAULT 'null',
  created_by INTEGER NOT NULL REFERENCES users(id),
  created_at TEXT NOT NULL
);
CREATE INDEX declarations_risk ON declarations(risk_score, id);
CREATE TABLE declaration_lines (
  declaration_id INTEGER NOT NULL REFERENCES declarations(id),
  line_no INTEGER NOT NULL,
  eco_country TEXT,
  eco_number TEXT,
  exporter TEXT,
  outcome TEXT NOT NULL DEFAULT 'pending',
  reasons TEXT NOT NULL DEFAULT '[]',
  matched_item INTEGER,
  consumed TEXT,
  duty TEXT NOT NULL DEFAULT 'null',
  decided_at TEXT,
  PRIMARY KEY (declaration_id, line_no)
) WITHOUT ROWID;
CREATE INDEX declaration_lines_eco ON declaration_lines(eco_country, eco_number, outcome);
CREATE INDEX declaration_lines_decided ON declaration_lines(decided_at) WHERE decided_at IS NOT NULL;
CREATE INDEX declaration_lines_exporter ON declaration_lines(exporter, outcome) WHERE exporter IS NOT NULL;
CREATE TABLE ledger (
  issuing_country TEXT NOT NULL,
  number TEXT NOT NULL,
  item INTEGER NOT NULL,
  total TEXT NOT NULL,
  remaining TEXT NOT NULL,
  PRIMARY KEY (issuing_country, number, item)
) WITHOUT ROWID;
CREATE TABLE utilizations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  declaration_id INTEGER NOT NULL REFERENCES declarations(id),
  line_no INTEGER NOT NULL,
  issuing_country TEXT NOT NULL,
  number TEXT NOT NULL,
  item INTEGER NOT NULL,
  quantity TEXT NOT NULL,
  remaining_after TEXT NOT NULL,
  at TEXT NOT NULL,
  released_at TEXT
);
CREATE UNIQUE INDEX utilizations_line ON utilizations(declaration_id, line_no) WHERE released_at IS NULL;
CREATE INDEX utilizations_cert ON utilizations(issuing_country, number, item) WHERE released_at IS NULL;
CREATE TABLE verification_requests (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  direction TEXT NOT NULL,
  message_id TEXT NOT NULL,
  issuing_country TEXT NOT NULL,
  number TEXT NOT NULL,
  partner TEXT NOT NULL,
  questions TEXT NOT NULL,
  deadline TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'open',
  answer TEXT,
  outcome TEXT,
  created_at TEXT NOT NULL,
  answered_at TEXT,
  UNIQUE (direction, message_id)
);
CREATE INDEX verification_requests_open ON verification_requests(deadline) WHERE status = 'open';
CREATE INDEX verification_requests_cert ON verification_requests(issuing_country, status);
