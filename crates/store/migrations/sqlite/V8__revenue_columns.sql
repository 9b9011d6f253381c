-- Revenue is summed in SQL, grouped by month, agreement and partner: each line keeps its
-- declaration date, the agreement claimed, and its duty in the currency's minor units (exact
-- integers: every duty amount is rounded to the minor unit), as the duty if the preference is
-- granted and if it is denied, so an override needs no recomputation.
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
CREATE INDEX declaration_lines_revenue ON declaration_lines(declared_on, outcome, agreement, eco_country,
  currency, mfn_minor, due_granted_minor, due_denied_minor);
