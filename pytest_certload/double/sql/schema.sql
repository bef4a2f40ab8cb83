-- Schema of the certctl reference double.
--
-- Table names, column types, NOT NULL rules, defaults, unique keys and foreign
-- keys follow certctl's schema after its migrations (certctl's migrations/000001
-- to 000028 *.up.sql), so seed SQL written for certctl applies here unchanged. Every statement is
-- guarded so the file can run on every boot, the way certctl re-runs its
-- migrations.

CREATE TABLE IF NOT EXISTS teams (
    id          TEXT PRIMARY KEY,
    name        VARCHAR(255) NOT NULL UNIQUE,
    description TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE TABLE IF NOT EXISTS owners (
    id         TEXT PRIMARY KEY,
    name       VARCHAR(255) NOT NULL,
    email      VARCHAR(255) NOT NULL,
    team_id    TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_owners_email ON owners (email);
CREATE INDEX IF NOT EXISTS idx_owners_team_id ON owners (team_id);

CREATE TABLE IF NOT EXISTS issuers (
    id               TEXT PRIMARY KEY,
    name             VARCHAR(255) NOT NULL UNIQUE,
    type             VARCHAR(255) NOT NULL,
    config           JSONB,
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    encrypted_config BYTEA,
    last_tested_at   TIMESTAMPTZ,
    test_status      TEXT NOT NULL DEFAULT 'untested',
    source           TEXT NOT NULL DEFAULT 'database',
    hierarchy_mode   VARCHAR(20) NOT NULL DEFAULT 'single'
);
CREATE INDEX IF NOT EXISTS idx_issuers_name ON issuers (name);
CREATE INDEX IF NOT EXISTS idx_issuers_enabled ON issuers (enabled);

CREATE TABLE IF NOT EXISTS certificate_profiles (
    id                      TEXT PRIMARY KEY,
    name                    VARCHAR(255) NOT NULL UNIQUE,
    description             TEXT DEFAULT '',
    allowed_key_algorithms  JSONB NOT NULL DEFAULT
        '[{"algorithm":"ECDSA","min_size":256},{"algorithm":"RSA","min_size":2048}]',
    max_ttl_seconds         INT NOT NULL DEFAULT 0,
    allowed_ekus            JSONB NOT NULL DEFAULT '["serverAuth"]',
    required_san_patterns   JSONB NOT NULL DEFAULT '[]',
    spiffe_uri_pattern      VARCHAR(512) DEFAULT '',
    allow_short_lived       BOOLEAN NOT NULL DEFAULT FALSE,
    enabled                 BOOLEAN NOT NULL DEFAULT TRUE,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    required_csr_attributes JSONB NOT NULL DEFAULT '[]',
    must_staple             BOOLEAN NOT NULL DEFAULT FALSE,
    acme_auth_mode          TEXT NOT NULL DEFAULT 'trust_authenticated',
    requires_approval       BOOLEAN NOT NULL DEFAULT FALSE
);
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint WHERE conname = 'certificate_profiles_acme_auth_mode_chk'
    ) THEN
        ALTER TABLE certificate_profiles
            ADD CONSTRAINT certificate_profiles_acme_auth_mode_chk
            CHECK (acme_auth_mode IN ('trust_authenticated', 'challenge'));
    END IF;
END
$$;

CREATE TABLE IF NOT EXISTS agent_groups (
    id                 TEXT PRIMARY KEY,
    name               VARCHAR(255) NOT NULL UNIQUE,
    description        TEXT DEFAULT '',
    match_os           VARCHAR(50) DEFAULT '',
    match_architecture VARCHAR(50) DEFAULT '',
    match_ip_cidr      VARCHAR(50) DEFAULT '',
    match_version      VARCHAR(50) DEFAULT '',
    enabled            BOOLEAN NOT NULL DEFAULT TRUE,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE TABLE IF NOT EXISTS renewal_policies (
    id                     TEXT PRIMARY KEY,
    name                   VARCHAR(255) NOT NULL UNIQUE,
    renewal_window_days    INT NOT NULL,
    auto_renew             BOOLEAN NOT NULL DEFAULT TRUE,
    max_retries            INT NOT NULL DEFAULT 3,
    retry_interval_seconds INT NOT NULL DEFAULT 60,
    alert_thresholds_days  JSONB NOT NULL DEFAULT '[30, 14, 7, 0]',
    created_at             TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    certificate_profile_id TEXT REFERENCES certificate_profiles (id) ON DELETE SET NULL,
    agent_group_id         TEXT REFERENCES agent_groups (id) ON DELETE SET NULL,
    alert_channels         JSONB NOT NULL DEFAULT '{}',
    alert_severity_map     JSONB NOT NULL DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS managed_certificates (
    id                     TEXT PRIMARY KEY,
    name                   VARCHAR(255) NOT NULL UNIQUE,
    common_name            VARCHAR(255) NOT NULL,
    sans                   TEXT[] DEFAULT '{}',
    environment            VARCHAR(50),
    owner_id               TEXT NOT NULL REFERENCES owners (id) ON DELETE RESTRICT,
    team_id                TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    issuer_id              TEXT NOT NULL REFERENCES issuers (id) ON DELETE RESTRICT,
    renewal_policy_id      TEXT NOT NULL REFERENCES renewal_policies (id) ON DELETE RESTRICT,
    status                 VARCHAR(50) NOT NULL DEFAULT 'pending',
    expires_at             TIMESTAMPTZ,
    tags                   JSONB NOT NULL DEFAULT '{}',
    last_renewal_at        TIMESTAMPTZ,
    last_deployment_at     TIMESTAMPTZ,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    certificate_profile_id TEXT REFERENCES certificate_profiles (id) ON DELETE SET NULL,
    revoked_at             TIMESTAMPTZ,
    revocation_reason      VARCHAR(50),
    source                 TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS idx_managed_certificates_status ON managed_certificates (status);
CREATE INDEX IF NOT EXISTS idx_managed_certificates_expires_at ON managed_certificates (expires_at);
CREATE INDEX IF NOT EXISTS idx_managed_certificates_owner_id ON managed_certificates (owner_id);
CREATE INDEX IF NOT EXISTS idx_managed_certificates_team_id ON managed_certificates (team_id);
CREATE INDEX IF NOT EXISTS idx_managed_certificates_issuer_id ON managed_certificates (issuer_id);
CREATE INDEX IF NOT EXISTS idx_managed_certificates_name ON managed_certificates (name);
CREATE INDEX IF NOT EXISTS idx_managed_certificates_profile_id
    ON managed_certificates (certificate_profile_id);

CREATE TABLE IF NOT EXISTS agents (
    id                TEXT PRIMARY KEY,
    name              VARCHAR(255) NOT NULL UNIQUE,
    hostname          VARCHAR(255) NOT NULL,
    status            VARCHAR(50) NOT NULL DEFAULT 'offline',
    last_heartbeat_at TIMESTAMPTZ,
    registered_at     TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    api_key_hash      VARCHAR(255) NOT NULL,
    os                VARCHAR(100) DEFAULT '',
    architecture      VARCHAR(100) DEFAULT '',
    ip_address        VARCHAR(45) DEFAULT '',
    version           VARCHAR(50) DEFAULT '',
    retired_at        TIMESTAMPTZ,
    retired_reason    TEXT
);
CREATE INDEX IF NOT EXISTS idx_agents_status ON agents (status);
CREATE INDEX IF NOT EXISTS idx_agents_hostname ON agents (hostname);
CREATE INDEX IF NOT EXISTS idx_agents_last_heartbeat_at ON agents (last_heartbeat_at);
CREATE INDEX IF NOT EXISTS idx_agents_os ON agents (os);
CREATE INDEX IF NOT EXISTS idx_agents_architecture ON agents (architecture);
CREATE INDEX IF NOT EXISTS idx_agents_retired_at ON agents (retired_at) WHERE retired_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_agents_online_heartbeat
    ON agents (status, last_heartbeat_at) WHERE status = 'online';

CREATE TABLE IF NOT EXISTS deployment_targets (
    id               TEXT PRIMARY KEY,
    name             VARCHAR(255) NOT NULL,
    type             VARCHAR(255) NOT NULL,
    agent_id         TEXT NOT NULL REFERENCES agents (id) ON DELETE RESTRICT,
    config           JSONB,
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    encrypted_config BYTEA,
    last_tested_at   TIMESTAMPTZ,
    test_status      TEXT NOT NULL DEFAULT 'untested',
    source           TEXT NOT NULL DEFAULT 'database',
    retired_at       TIMESTAMPTZ,
    retired_reason   TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_deployment_targets_agent_name
    ON deployment_targets (agent_id, name);

CREATE TABLE IF NOT EXISTS certificate_target_mappings (
    certificate_id TEXT NOT NULL REFERENCES managed_certificates (id) ON DELETE CASCADE,
    target_id      TEXT NOT NULL REFERENCES deployment_targets (id) ON DELETE CASCADE,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (certificate_id, target_id)
);

CREATE TABLE IF NOT EXISTS jobs (
    id                       TEXT PRIMARY KEY,
    type                     VARCHAR(255) NOT NULL,
    certificate_id           TEXT REFERENCES managed_certificates (id) ON DELETE CASCADE,
    target_id                TEXT REFERENCES deployment_targets (id) ON DELETE SET NULL,
    agent_id                 TEXT REFERENCES agents (id) ON DELETE SET NULL,
    status                   VARCHAR(50) NOT NULL DEFAULT 'pending',
    attempts                 INT NOT NULL DEFAULT 0,
    max_attempts             INT NOT NULL DEFAULT 3,
    last_error               TEXT,
    deployment_result        JSONB,
    scheduled_at             TIMESTAMPTZ,
    started_at               TIMESTAMPTZ,
    completed_at             TIMESTAMPTZ,
    created_at               TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    verification_status      TEXT DEFAULT 'pending',
    verified_at              TIMESTAMPTZ,
    verification_fingerprint TEXT,
    verification_error       TEXT
);
CREATE INDEX IF NOT EXISTS idx_jobs_status ON jobs (status);
CREATE INDEX IF NOT EXISTS idx_jobs_certificate_id ON jobs (certificate_id);
CREATE INDEX IF NOT EXISTS idx_jobs_scheduled_at ON jobs (scheduled_at);
CREATE INDEX IF NOT EXISTS idx_jobs_agent_id ON jobs (agent_id);
CREATE INDEX IF NOT EXISTS idx_jobs_status_scheduled ON jobs (status, scheduled_at);
CREATE INDEX IF NOT EXISTS idx_jobs_verification_status ON jobs (verification_status);
CREATE INDEX IF NOT EXISTS idx_jobs_verified_at ON jobs (verified_at);

CREATE TABLE IF NOT EXISTS audit_events (
    id            TEXT PRIMARY KEY,
    actor         VARCHAR(255) NOT NULL,
    actor_type    VARCHAR(50) NOT NULL,
    action        VARCHAR(255) NOT NULL,
    resource_type VARCHAR(255) NOT NULL,
    resource_id   VARCHAR(255) NOT NULL,
    details       JSONB,
    timestamp     TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_audit_events_timestamp ON audit_events (timestamp);
CREATE INDEX IF NOT EXISTS idx_audit_events_resource ON audit_events (resource_type, resource_id);

-- audit_events is append-only: UPDATE and DELETE raise. (A row trigger does not
-- fire on TRUNCATE; drop and recreate the database between runs.)
CREATE OR REPLACE FUNCTION audit_events_reject_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP;
END;
$$ LANGUAGE plpgsql;

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_trigger WHERE tgname = 'audit_events_append_only'
    ) THEN
        CREATE TRIGGER audit_events_append_only
            BEFORE UPDATE OR DELETE ON audit_events
            FOR EACH ROW EXECUTE FUNCTION audit_events_reject_change();
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'certctl') THEN
        REVOKE UPDATE, DELETE ON audit_events FROM certctl;
    END IF;
END
$$;

CREATE TABLE IF NOT EXISTS certificate_versions (
    id                 TEXT PRIMARY KEY,
    certificate_id     TEXT NOT NULL REFERENCES managed_certificates (id) ON DELETE CASCADE,
    serial_number      VARCHAR(255) NOT NULL,
    not_before         TIMESTAMPTZ NOT NULL,
    not_after          TIMESTAMPTZ NOT NULL,
    fingerprint_sha256 VARCHAR(255) NOT NULL UNIQUE,
    pem_chain          TEXT NOT NULL,
    csr_pem            TEXT,
    key_algorithm      VARCHAR(50),
    key_size           INT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_certificate_versions_certificate_id
    ON certificate_versions (certificate_id);
CREATE INDEX IF NOT EXISTS idx_certificate_versions_serial
    ON certificate_versions (serial_number);

CREATE TABLE IF NOT EXISTS certificate_revocations (
    id              TEXT PRIMARY KEY,
    certificate_id  TEXT NOT NULL REFERENCES managed_certificates (id) ON DELETE CASCADE,
    serial_number   VARCHAR(255) NOT NULL,
    reason          VARCHAR(50) NOT NULL DEFAULT 'unspecified',
    revoked_by      VARCHAR(255) NOT NULL DEFAULT '',
    revoked_at      TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    issuer_id       TEXT REFERENCES issuers (id) ON DELETE SET NULL,
    issuer_notified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_certificate_revocations_issuer_serial
    ON certificate_revocations (issuer_id, serial_number);

-- ACME server tables. Status values are the lowercase RFC 8555 strings.
CREATE TABLE IF NOT EXISTS acme_accounts (
    account_id     TEXT PRIMARY KEY,
    profile_id     TEXT NOT NULL REFERENCES certificate_profiles (id) ON DELETE CASCADE,
    jwk_thumbprint TEXT NOT NULL,
    jwk            JSONB NOT NULL,
    contact        JSONB NOT NULL DEFAULT '[]',
    status         TEXT NOT NULL DEFAULT 'valid',
    owner_id       TEXT REFERENCES owners (id) ON DELETE SET NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    UNIQUE (profile_id, jwk_thumbprint)
);

CREATE TABLE IF NOT EXISTS acme_orders (
    order_id       TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES acme_accounts (account_id) ON DELETE CASCADE,
    profile_id     TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'pending',
    expires_at     TIMESTAMPTZ NOT NULL,
    identifiers    JSONB NOT NULL,
    not_before     TIMESTAMPTZ,
    not_after      TIMESTAMPTZ,
    error          JSONB,
    csr_pem        TEXT,
    certificate_id TEXT REFERENCES managed_certificates (id) ON DELETE SET NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_acme_orders_account_status ON acme_orders (account_id, status);

CREATE TABLE IF NOT EXISTS acme_authorizations (
    authz_id         TEXT PRIMARY KEY,
    order_id         TEXT NOT NULL REFERENCES acme_orders (order_id) ON DELETE CASCADE,
    identifier_type  TEXT NOT NULL,
    identifier_value TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending',
    expires_at       TIMESTAMPTZ NOT NULL,
    wildcard         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_acme_authorizations_order ON acme_authorizations (order_id);

CREATE TABLE IF NOT EXISTS acme_challenges (
    challenge_id TEXT PRIMARY KEY,
    authz_id     TEXT NOT NULL REFERENCES acme_authorizations (authz_id) ON DELETE CASCADE,
    type         TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending',
    token        TEXT NOT NULL,
    validated_at TIMESTAMPTZ,
    error        JSONB,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_acme_challenges_authz ON acme_challenges (authz_id);

CREATE TABLE IF NOT EXISTS acme_nonces (
    nonce      TEXT PRIMARY KEY,
    issued_at  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    expires_at TIMESTAMPTZ NOT NULL,
    used       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX IF NOT EXISTS idx_acme_nonces_expires_at ON acme_nonces (expires_at);
