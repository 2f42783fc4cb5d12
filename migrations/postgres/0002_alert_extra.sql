-- Source-specific fields of an alert, kept verbatim as JSON object text
-- (generatorURL, Grafana extras, PagerDuty links/images/custom_details).
ALTER TABLE alerts ADD COLUMN extra TEXT NULL;
