-- Proxy options of HTTP rules (rewrite, timeouts, limits, TLS) as JSON,
-- and where a certificate comes from (uploaded or issued over ACME).
ALTER TABLE http_rules ADD COLUMN options JSONB NOT NULL DEFAULT '{}';
ALTER TABLE certificates ADD COLUMN source TEXT NOT NULL DEFAULT 'upload';
