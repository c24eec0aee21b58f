-- Which team owns a domain (exact, or "*.parent" for a wildcard): the first
-- team to name it in an HTTP rule or a certificate. Other teams' rules and
-- certificates for it are refused; a platform admin can reassign it.
CREATE TABLE domain_claims (
    domain     TEXT PRIMARY KEY,
    team       TEXT NOT NULL REFERENCES teams (name) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX domain_claims_team ON domain_claims (team);

-- The rules that exist already: the oldest rule of a domain decides.
INSERT INTO domain_claims (domain, team, created_at)
SELECT r.domain, r.team, r.created_at FROM http_rules r
WHERE r.team IN (SELECT name FROM teams)
  AND NOT EXISTS (SELECT 1 FROM http_rules o WHERE o.domain = r.domain
      AND (o.created_at < r.created_at OR (o.created_at = r.created_at AND o.id < r.id)))
ON CONFLICT (domain) DO NOTHING;
