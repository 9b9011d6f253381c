-- Revenue by month, agreement and partner, read from running daily totals: each line keeps its
-- declaration date, the agreement claimed, and its duty in the currency's minor units (exact
-- integers: every duty amount is rounded to the minor unit), as the duty if the preference is
-- granted and if it is denied; `revenue_days` holds the sums of the decided lines per day,
-- agreement, partner and currency ('' for none), moved in the transaction that decides a line.
ALTER TABLE declaration_lines ADD COLUMN declared_on TEXT;
ALTER TABLE declaration_lines ADD COLUMN agreement TEXT;
ALTER TABLE declaration_lines ADD COLUMN currency TEXT;
ALTER TABLE declaration_lines ADD COLUMN mfn_minor INTEGER;
ALTER TABLE declaration_lines ADD COLUMN due_granted_minor INTEGER;
ALTER TABLE declaration_lines ADD COLUMN due_denied_minor INTEGER;
UPDATE declaration_lines SET
  declared_on = (SELECT d.declaration_date FROM declarations d WHERE d.id = declaration_id),
  agreement = (SELECT json_extract(e.value, '$.claimed_agreement')
               FROM declarations d, json_each(d.document, '$.lines') e
               WHERE d.id = declaration_id AND json_extract(e.value, '$.line_no') = line_no),
  currency = json_extract(duty, '$.if_granted.mfn.currency'),
  mfn_minor = CAST(replace(json_extract(duty, '$.if_granted.mfn.amount'), '.', '') AS INTEGER),
  due_granted_minor = CAST(replace(json_extract(duty, '$.if_granted.due.amount'), '.', '') AS INTEGER),
  due_denied_minor = CAST(replace(json_extract(duty, '$.if_denied.due.amount'), '.', '') AS INTEGER)
WHERE json_valid(duty);
-- The lines a report lists as not summed (pending, or without a computed duty), by date.
CREATE INDEX declaration_lines_unsummed ON declaration_lines(declared_on) WHERE outcome = 'pending' OR currency IS NULL;
CREATE TABLE revenue_days (
  day TEXT NOT NULL,
  agreement TEXT NOT NULL,
  partner TEXT NOT NULL,
  currency TEXT NOT NULL,
  lines INTEGER NOT NULL,
  mfn_minor INTEGER NOT NULL,
  due_minor INTEGER NOT NULL,
  PRIMARY KEY (day, agreement, partner, currency)
) WITHOUT ROWID;
INSERT INTO revenue_days (day, agreement, partner, currency, lines, mfn_minor, due_minor)
SELECT declared_on, COALESCE(agreement, ''), COALESCE(eco_country, ''), currency, COUNT(*), SUM(mfn_minor),
       SUM(CASE WHEN outcome = 'granted' THEN due_granted_minor ELSE due_denied_minor END)
FROM declaration_lines WHERE outcome <> 'pending' AND currency IS NOT NULL AND declared_on IS NOT NULL
GROUP BY declared_on, COALESCE(agreement, ''), COALESCE(eco_country, ''), currency;
-- The declarations list narrowed by a rare outcome (pending, denied) walks only those lines.
CREATE INDEX declaration_lines_outcome ON declaration_lines(outcome, declaration_id);
