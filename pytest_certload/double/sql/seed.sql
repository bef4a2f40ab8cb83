-- Base rows the double inserts on every boot (certctl's seed.sql equivalent).
INSERT INTO renewal_policies (id, name, renewal_window_days, auto_renew, max_retries,
                              retry_interval_seconds, alert_thresholds_days)
VALUES ('rp-default', 'default', 30, TRUE, 3, 60, '[30, 14, 7, 0]')
ON CONFLICT DO NOTHING;
