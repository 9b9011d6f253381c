-- Revenue is summed in SQL, grouped by month, agreement and partner: each line keeps its
-- declaration date, the agreement claimed, and its duty in the currency's minor units (exact
-- integers: every duty amount is rounded to the minor unit), as the duty if the preference is
-- granted and if it is denied, so an override needs no recomputation.
ALTER TABLE declaration_lines ADD COLUMN declared_on TEXT;
ALTER TABLE declaration_lines ADD COLUMN agreement TEXT;
ALTER TABLE declaration_lines ADD COLUMN currency TEXT;
ALTER TABLE declaration_lines ADD COLUMN mfn_minor BIGINT;
ALTER TABLE declaration_lines ADD COLUMN due_granted_minor BIGINT;
ALTER TABLE declaration_lines ADD COLUMN due_denied_minor BIGINT;
UPDATE declaration_lines l SET
  declared_on = d.declaration_date,
  agreement = (SELECT e->>'claimed_agreement' FROM jsonb_array_elements(d.document::jsonb->'lines') e
               WHERE (e->>'line_no')::int = l.line_no),
  currency = l.duty::jsonb #>> '{if_granted,mfn,currency}',
  mfn_minor = replace(l.duty::jsonb #>> '{if_granted,mfn,amount}', '.', '')::bigint,
  due_granted_minor = replace(l.duty::jsonb #>> '{if_granted,due,amount}', '.', '')::bigint,
  due_denied_minor = replace(l.duty::jsonb #>> '{if_denied,due,amount}', '.', '')::bigint
FROM declarations d WHERE d.id = l.declaration_id;
CREATE INDEX declaration_lines_revenue ON declaration_lines(declared_on, outcome, agreement, eco_country,
  currency, mfn_minor, due_granted_minor, due_denied_minor);
