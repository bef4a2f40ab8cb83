-- Demo rows of the certctl reference double (applied when CERTCTL_DEMO_SEED=true).
-- Ids match the demo data certctl ships, so harness SQL and scenarios that name
-- t-platform, o-alice, iss-local, rp-standard, prof-standard-tls... work against both.
-- Inserts are ON CONFLICT DO NOTHING; the file runs on every boot.

INSERT INTO teams (id, name, description) VALUES
    ('t-platform', 'Platform', 'Platform engineering'),
    ('t-security', 'Security', 'Security team'),
    ('t-payments', 'Payments', 'Payments'),
    ('t-frontend', 'Frontend', 'Web frontend'),
    ('t-data', 'Data', 'Data platform'),
    ('t-devops', 'DevOps', 'DevOps')
ON CONFLICT DO NOTHING;

INSERT INTO owners (id, name, email, team_id) VALUES
    ('o-alice', 'Alice', 'alice@example.test', 't-platform'),
    ('o-bob', 'Bob', 'bob@example.test', 't-security'),
    ('o-carol', 'Carol', 'carol@example.test', 't-payments'),
    ('o-dave', 'Dave', 'dave@example.test', 't-frontend'),
    ('o-eve', 'Eve', 'eve@example.test', 't-data'),
    ('o-frank', 'Frank', 'frank@example.test', 't-devops')
ON CONFLICT DO NOTHING;

INSERT INTO renewal_policies (id, name, renewal_window_days, auto_renew) VALUES
    ('rp-standard', 'standard', 30, TRUE),
    ('rp-urgent', 'urgent', 14, TRUE),
    ('rp-manual', 'manual', 30, FALSE)
ON CONFLICT DO NOTHING;

-- Demo issuers default to source='database' (certctl then insists on CERTCTL_CONFIG_ENCRYPTION_KEY).
INSERT INTO issuers (id, name, type, config, enabled) VALUES
    ('iss-local', 'Local CA', 'GenericCA', '{}', TRUE),
    ('iss-acme-le', 'Let''s Encrypt Staging', 'ACME', '{}', TRUE),
    ('iss-stepca', 'step-ca', 'StepCA', '{}', TRUE),
    ('iss-acme-zs', 'ZeroSSL', 'ACME', '{}', TRUE),
    ('iss-vault', 'Vault PKI', 'VaultPKI', '{}', TRUE),
    ('iss-digicert', 'DigiCert', 'DigiCert', '{}', TRUE),
    ('iss-sectigo', 'Sectigo', 'Sectigo', '{}', TRUE),
    ('iss-openssl', 'OpenSSL', 'OpenSSL', '{}', FALSE),
    ('iss-googlecas', 'Google CAS', 'GoogleCAS', '{}', FALSE),
    ('iss-awsacmpca', 'AWS ACM PCA', 'AWSACMPCA', '{}', FALSE),
    ('iss-entrust', 'Entrust', 'Entrust', '{}', FALSE),
    ('iss-globalsign', 'GlobalSign', 'GlobalSign', '{}', FALSE),
    ('iss-ejbca', 'EJBCA', 'EJBCA', '{}', FALSE)
ON CONFLICT DO NOTHING;

INSERT INTO certificate_profiles (id, name, description, max_ttl_seconds, allow_short_lived) VALUES
    ('prof-standard-tls', 'Standard TLS', 'Standard server TLS certificates', 7776000, FALSE),
    ('prof-internal-mtls', 'Internal mTLS', 'Internal service mutual TLS', 2592000, FALSE),
    ('prof-short-lived', 'Short-lived', 'Short-lived workload certificates', 86400, TRUE),
    ('prof-high-security', 'High security', 'RSA 4096 / P-384 only', 31536000, FALSE),
    ('prof-smime', 'S/MIME', 'Email signing and encryption', 31536000, FALSE)
ON CONFLICT DO NOTHING;

INSERT INTO agent_groups (id, name, match_os, match_architecture) VALUES
    ('ag-linux-prod', 'Linux production', 'linux', ''),
    ('ag-linux-amd64', 'Linux amd64', 'linux', 'amd64'),
    ('ag-windows', 'Windows', 'windows', ''),
    ('ag-datacenter-a', 'Datacenter A', '', ''),
    ('ag-arm64', 'ARM64', '', 'arm64'),
    ('ag-manual', 'Manual', '', '')
ON CONFLICT DO NOTHING;

INSERT INTO agents (id, name, hostname, status, last_heartbeat_at, api_key_hash, os, architecture,
                    ip_address, version) VALUES
    ('ag-web-prod', 'ag-web-prod', 'web-prod-01', 'Online', NOW(), 'demo-seed-no-key', 'linux', 'amd64', '10.0.0.1', '2.0.9'),
    ('ag-web-staging', 'ag-web-staging', 'web-staging-01', 'Online', NOW(), 'demo-seed-no-key', 'linux', 'amd64', '10.0.0.2', '2.0.9'),
    ('ag-lb-prod', 'ag-lb-prod', 'lb-prod-01', 'Online', NOW(), 'demo-seed-no-key', 'linux', 'amd64', '10.0.0.3', '2.0.9'),
    ('ag-iis-prod', 'ag-iis-prod', 'iis-prod-01', 'Offline', NOW() - INTERVAL '3 days', 'demo-seed-no-key', 'windows', 'amd64', '10.0.0.4', '2.0.9'),
    ('ag-data-prod', 'ag-data-prod', 'data-prod-01', 'Online', NOW(), 'demo-seed-no-key', 'linux', 'arm64', '10.0.0.5', '2.0.9'),
    ('ag-edge-01', 'ag-edge-01', 'edge-01', 'Online', NOW(), 'demo-seed-no-key', 'linux', 'arm64', '10.0.0.6', '2.0.9'),
    ('ag-k8s-prod', 'ag-k8s-prod', 'k8s-prod-01', 'Online', NOW(), 'demo-seed-no-key', 'linux', 'amd64', '10.0.0.7', '2.0.9'),
    ('ag-mac-dev', 'ag-mac-dev', 'mac-dev-01', 'Online', NOW(), 'demo-seed-no-key', 'darwin', 'arm64', '10.0.0.8', '2.0.9'),
    ('server-scanner', 'server-scanner', 'server-scanner', 'Online', NOW(), 'demo-seed-no-key', 'linux', 'amd64', '10.0.0.9', '2.0.9'),
    ('cloud-aws-sm', 'cloud-aws-sm', 'cloud-aws-sm', 'Online', NOW(), 'demo-seed-no-key', 'cloud', 'n/a', '10.0.0.10', '2.0.9'),
    ('cloud-azure-kv', 'cloud-azure-kv', 'cloud-azure-kv', 'Online', NOW(), 'demo-seed-no-key', 'cloud', 'n/a', '10.0.0.11', '2.0.9'),
    ('cloud-gcp-sm', 'cloud-gcp-sm', 'cloud-gcp-sm', 'Online', NOW(), 'demo-seed-no-key', 'cloud', 'n/a', '10.0.0.12', '2.0.9')
ON CONFLICT DO NOTHING;

INSERT INTO deployment_targets (id, name, type, agent_id, config) VALUES
    ('tgt-nginx-prod', 'nginx-prod', 'NGINX', 'ag-web-prod', '{}'),
    ('tgt-nginx-staging', 'nginx-staging', 'NGINX', 'ag-web-staging', '{}'),
    ('tgt-haproxy-prod', 'haproxy-prod', 'HAProxy', 'ag-lb-prod', '{}'),
    ('tgt-apache-prod', 'apache-prod', 'Apache', 'ag-web-prod', '{}'),
    ('tgt-iis-prod', 'iis-prod', 'IIS', 'ag-iis-prod', '{}'),
    ('tgt-traefik-prod', 'traefik-prod', 'Traefik', 'ag-k8s-prod', '{}'),
    ('tgt-caddy-prod', 'caddy-prod', 'Caddy', 'ag-edge-01', '{}'),
    ('tgt-nginx-data', 'nginx-data', 'NGINX', 'ag-data-prod', '{}'),
    ('tgt-aws-acm-prod', 'aws-acm-prod', 'AWSACM', 'cloud-aws-sm', '{}'),
    ('tgt-azure-kv-prod', 'azure-kv-prod', 'AzureKeyVault', 'cloud-azure-kv', '{}')
ON CONFLICT DO NOTHING;

-- The 32 certificate ids of certctl's demo seed (migrations/seed_demo.sql); names,
-- common names, owners, statuses and the expiry spread are the double's own.
INSERT INTO managed_certificates (id, name, common_name, sans, environment, owner_id, team_id,
                                  issuer_id, renewal_policy_id, status, expires_at, tags,
                                  revoked_at, revocation_reason) VALUES
    ('mc-admin-prod', 'mc-admin-prod', 'admin.example.com', ARRAY['admin.example.com'], 'production', 'o-alice', 't-platform', 'iss-local', 'rp-standard', 'Active', NOW() + INTERVAL '85 days', '{"demo": "true"}', NULL, NULL),
    ('mc-api-dev', 'mc-api-dev', 'api.dev.example.com', ARRAY['api.dev.example.com'], 'development', 'o-alice', 't-platform', 'iss-local', 'rp-manual', 'Active', NOW() + INTERVAL '160 days', '{"demo": "true"}', NULL, NULL),
    ('mc-api-prod', 'mc-api-prod', 'api.example.com', ARRAY['api.example.com'], 'production', 'o-alice', 't-platform', 'iss-local', 'rp-standard', 'Active', NOW() + INTERVAL '75 days', '{"demo": "true"}', NULL, NULL),
    ('mc-api-stg', 'mc-api-stg', 'api.staging.example.com', ARRAY['api.staging.example.com'], 'staging', 'o-alice', 't-platform', 'iss-local', 'rp-standard', 'Active', NOW() + INTERVAL '35 days', '{"demo": "true"}', NULL, NULL),
    ('mc-auth-prod', 'mc-auth-prod', 'auth.example.com', ARRAY['auth.example.com'], 'production', 'o-bob', 't-security', 'iss-local', 'rp-urgent', 'Active', NOW() + INTERVAL '20 days', '{"demo": "true"}', NULL, NULL),
    ('mc-blog-prod', 'mc-blog-prod', 'blog.example.com', ARRAY['blog.example.com'], 'production', 'o-dave', 't-frontend', 'iss-acme-le', 'rp-standard', 'Active', NOW() + INTERVAL '50 days', '{"demo": "true"}', NULL, NULL),
    ('mc-cdn-prod', 'mc-cdn-prod', 'cdn.example.com', ARRAY['cdn.example.com'], 'production', 'o-dave', 't-frontend', 'iss-acme-le', 'rp-standard', 'Active', NOW() + INTERVAL '80 days', '{"demo": "true"}', NULL, NULL),
    ('mc-ci-prod', 'mc-ci-prod', 'ci.internal.example.com', ARRAY['ci.internal.example.com'], 'production', 'o-frank', 't-devops', 'iss-stepca', 'rp-standard', 'Active', NOW() + INTERVAL '40 days', '{"demo": "true"}', NULL, NULL),
    ('mc-compromised', 'mc-compromised', 'compromised.example.com', ARRAY['compromised.example.com'], 'production', 'o-bob', 't-security', 'iss-local', 'rp-urgent', 'Revoked', NOW() + INTERVAL '60 days', '{"demo": "true"}', NOW() - INTERVAL '2 days', 'keyCompromise'),
    ('mc-consul-prod', 'mc-consul-prod', 'consul.internal.example.com', ARRAY['consul.internal.example.com'], 'production', 'o-frank', 't-devops', 'iss-vault', 'rp-standard', 'Active', NOW() + INTERVAL '30 days', '{"demo": "true"}', NULL, NULL),
    ('mc-dash-prod', 'mc-dash-prod', 'dash.example.com', ARRAY['dash.example.com'], 'production', 'o-eve', 't-data', 'iss-local', 'rp-standard', 'Active', NOW() + INTERVAL '95 days', '{"demo": "true"}', NULL, NULL),
    ('mc-data-prod', 'mc-data-prod', 'data.internal.example.com', ARRAY['data.internal.example.com'], 'production', 'o-eve', 't-data', 'iss-stepca', 'rp-standard', 'Active', NOW() + INTERVAL '65 days', '{"demo": "true"}', NULL, NULL),
    ('mc-docs-prod', 'mc-docs-prod', 'docs.example.com', ARRAY['docs.example.com'], 'production', 'o-dave', 't-frontend', 'iss-acme-le', 'rp-standard', 'Active', NOW() + INTERVAL '110 days', '{"demo": "true"}', NULL, NULL),
    ('mc-edge-eu', 'mc-edge-eu', 'edge-eu.example.com', ARRAY['edge-eu.example.com'], 'production', 'o-alice', 't-platform', 'iss-acme-zs', 'rp-standard', 'Active', NOW() + INTERVAL '45 days', '{"demo": "true"}', NULL, NULL),
    ('mc-grafana-prod', 'mc-grafana-prod', 'grafana.example.com', ARRAY['grafana.example.com'], 'production', 'o-eve', 't-data', 'iss-local', 'rp-standard', 'Active', NOW() + INTERVAL '90 days', '{"demo": "true"}', NULL, NULL),
    ('mc-grpc-prod', 'mc-grpc-prod', 'grpc.internal.example.com', ARRAY['grpc.internal.example.com'], 'production', 'o-carol', 't-payments', 'iss-vault', 'rp-urgent', 'Expiring', NOW() + INTERVAL '12 days', '{"demo": "true"}', NULL, NULL),
    ('mc-k8s-ingress', 'mc-k8s-ingress', 'ingress.k8s.example.com', ARRAY['ingress.k8s.example.com'], 'production', 'o-frank', 't-devops', 'iss-acme-zs', 'rp-standard', 'Active', NOW() + INTERVAL '70 days', '{"demo": "true"}', NULL, NULL),
    ('mc-legacy-prod', 'mc-legacy-prod', 'legacy.example.com', ARRAY['legacy.example.com'], 'production', 'o-carol', 't-payments', 'iss-digicert', 'rp-manual', 'Expired', NOW() + INTERVAL '-10 days', '{"demo": "true"}', NULL, NULL),
    ('mc-mail-prod', 'mc-mail-prod', 'mail.example.com', ARRAY['mail.example.com'], 'production', 'o-frank', 't-devops', 'iss-sectigo', 'rp-standard', 'Active', NOW() + INTERVAL '120 days', '{"demo": "true"}', NULL, NULL),
    ('mc-old-api', 'mc-old-api', 'old-api.example.com', ARRAY['old-api.example.com'], 'production', 'o-alice', 't-platform', 'iss-digicert', 'rp-manual', 'Expired', NOW() + INTERVAL '-40 days', '{"demo": "true"}', NULL, NULL),
    ('mc-pay-prod', 'mc-pay-prod', 'pay.example.com', ARRAY['pay.example.com'], 'production', 'o-carol', 't-payments', 'iss-digicert', 'rp-urgent', 'Active', NOW() + INTERVAL '55 days', '{"demo": "true"}', NULL, NULL),
    ('mc-pay-stg', 'mc-pay-stg', 'pay.staging.example.com', ARRAY['pay.staging.example.com'], 'staging', 'o-carol', 't-payments', 'iss-local', 'rp-standard', 'Expiring', NOW() + INTERVAL '5 days', '{"demo": "true"}', NULL, NULL),
    ('mc-search-prod', 'mc-search-prod', 'search.example.com', ARRAY['search.example.com'], 'production', 'o-eve', 't-data', 'iss-local', 'rp-standard', 'Active', NOW() + INTERVAL '100 days', '{"demo": "true"}', NULL, NULL),
    ('mc-shop-prod', 'mc-shop-prod', 'shop.example.com', ARRAY['shop.example.com'], 'production', 'o-carol', 't-payments', 'iss-digicert', 'rp-standard', 'Active', NOW() + INTERVAL '150 days', '{"demo": "true"}', NULL, NULL),
    ('mc-smime-bob', 'mc-smime-bob', 'bob@example.test', ARRAY['bob@example.test'], 'production', 'o-bob', 't-security', 'iss-sectigo', 'rp-standard', 'Active', NOW() + INTERVAL '300 days', '{"demo": "true"}', NULL, NULL),
    ('mc-status-prod', 'mc-status-prod', 'status.example.com', ARRAY['status.example.com'], 'production', 'o-dave', 't-frontend', 'iss-acme-le', 'rp-standard', 'Failed', NOW() + INTERVAL '3 days', '{"demo": "true"}', NULL, NULL),
    ('mc-vault-prod', 'mc-vault-prod', 'vault.internal.example.com', ARRAY['vault.internal.example.com'], 'production', 'o-bob', 't-security', 'iss-vault', 'rp-urgent', 'Active', NOW() + INTERVAL '28 days', '{"demo": "true"}', NULL, NULL),
    ('mc-vpn-prod', 'mc-vpn-prod', 'vpn.example.com', ARRAY['vpn.example.com'], 'production', 'o-bob', 't-security', 'iss-vault', 'rp-standard', 'Expiring', NOW() + INTERVAL '9 days', '{"demo": "true"}', NULL, NULL),
    ('mc-web-prod', 'mc-web-prod', 'www.example.com', ARRAY['www.example.com'], 'production', 'o-dave', 't-frontend', 'iss-acme-le', 'rp-standard', 'Active', NOW() + INTERVAL '60 days', '{"demo": "true"}', NULL, NULL),
    ('mc-web-stg', 'mc-web-stg', 'www.staging.example.com', ARRAY['www.staging.example.com'], 'staging', 'o-dave', 't-frontend', 'iss-acme-le', 'rp-standard', 'Active', NOW() + INTERVAL '25 days', '{"demo": "true"}', NULL, NULL),
    ('mc-wiki-prod', 'mc-wiki-prod', 'wiki.example.com', ARRAY['wiki.example.com'], 'production', 'o-frank', 't-devops', 'iss-local', 'rp-manual', 'RenewalInProgress', NOW() + INTERVAL '15 days', '{"demo": "true"}', NULL, NULL),
    ('mc-wildcard-prod', 'mc-wildcard-prod', '*.example.com', ARRAY['*.example.com'], 'production', 'o-alice', 't-platform', 'iss-digicert', 'rp-standard', 'Active', NOW() + INTERVAL '180 days', '{"demo": "true"}', NULL, NULL)
ON CONFLICT DO NOTHING;

INSERT INTO certificate_target_mappings (certificate_id, target_id) VALUES
    ('mc-api-prod', 'tgt-nginx-prod'),
    ('mc-web-prod', 'tgt-nginx-prod'),
    ('mc-admin-prod', 'tgt-nginx-prod'),
    ('mc-pay-prod', 'tgt-haproxy-prod'),
    ('mc-shop-prod', 'tgt-haproxy-prod'),
    ('mc-auth-prod', 'tgt-apache-prod'),
    ('mc-blog-prod', 'tgt-apache-prod'),
    ('mc-cdn-prod', 'tgt-caddy-prod'),
    ('mc-edge-eu', 'tgt-caddy-prod'),
    ('mc-grafana-prod', 'tgt-nginx-data'),
    ('mc-data-prod', 'tgt-nginx-data'),
    ('mc-dash-prod', 'tgt-nginx-data'),
    ('mc-k8s-ingress', 'tgt-traefik-prod'),
    ('mc-legacy-prod', 'tgt-iis-prod'),
    ('mc-mail-prod', 'tgt-aws-acm-prod'),
    ('mc-vault-prod', 'tgt-azure-kv-prod'),
    ('mc-web-stg', 'tgt-nginx-staging'),
    ('mc-api-stg', 'tgt-nginx-staging'),
    ('mc-wildcard-prod', 'tgt-nginx-prod')
ON CONFLICT DO NOTHING;

-- Certificate versions for 15 certificates (bulk-revoke needs one). The PEM text is a
-- placeholder: these rows stand for certificates issued before the demo began. The cv-*
-- ids, serials and fingerprints are the double's own.
INSERT INTO certificate_versions (id, certificate_id, serial_number, not_before, not_after,
                                  fingerprint_sha256, pem_chain, key_algorithm, key_size) VALUES
    ('cv-api-prod', 'mc-api-prod', '095561f715506ad9223dbe9bf056762cb36709c4', NOW() - INTERVAL '30 days', NOW() + INTERVAL '75 days', '595baf6712192ff490f77701b90ded513f991558a536b9b06e6bd3c5016e0117', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-api-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-web-prod', 'mc-web-prod', '45ce4edd937c94e0e53ae9cdfc1ad4a0048a4947', NOW() - INTERVAL '30 days', NOW() + INTERVAL '60 days', '7f07e9d73a2aacb8e1fe8209784424d1b7f61a2013bbb950b40691f1c75ab89e', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-web-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-pay-prod', 'mc-pay-prod', '3802f7f7730cbf94b05cde3d217c19366d44bd5e', NOW() - INTERVAL '30 days', NOW() + INTERVAL '55 days', 'a5e6c7c0012eff20dc0e66d6bc2ca23c4663a6b7427c704d7e7be5ba97514920', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-pay-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-auth-prod', 'mc-auth-prod', '2d4c8032fd1829aa5bb3fda8b1bfb8f80dd1f362', NOW() - INTERVAL '30 days', NOW() + INTERVAL '20 days', '9c343277cf14f719e980b91635cfb205536612b59a700d9bc1658678f0aba98b', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-auth-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-cdn-prod', 'mc-cdn-prod', 'f6821c608ade0159fb0c14faf85809e942cb744b', NOW() - INTERVAL '30 days', NOW() + INTERVAL '80 days', '1644ad9e7416689d75dbada9606cae4784c52bf8f99c5e7c051fced5c642697c', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-cdn-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-mail-prod', 'mc-mail-prod', '02c78bca19ebc6dfd866d43fbf68f0a74e3e1f96', NOW() - INTERVAL '30 days', NOW() + INTERVAL '120 days', 'faa56dfd5b9c8e8e4400e05e48b4514cf31f5c17b5b64cda0c91d8c786a81de2', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-mail-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-vpn-prod', 'mc-vpn-prod', 'ebd1f8bb033c07718605125d2d6ca0efe9909153', NOW() - INTERVAL '30 days', NOW() + INTERVAL '9 days', 'e15faa6b67f7f2e2632899beff6922c4dc0c1edd91cbbbafbe99dcb1e5201521', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-vpn-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-grafana-prod', 'mc-grafana-prod', 'c6007091926717833a9f5305ba5df03608f8a637', NOW() - INTERVAL '30 days', NOW() + INTERVAL '90 days', '5405e01c3b3304e47258c7170bcd6a8210d6dea404d2fc56593c9b4e0812a42a', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-grafana-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-k8s-ingress', 'mc-k8s-ingress', '7dd3d7d83165001a2345a9c4fc1202fdf9f18700', NOW() - INTERVAL '30 days', NOW() + INTERVAL '70 days', '4bc5db8b0ef3e5385216f78168dc5ced8d6272aa45baa1f09354c96c5e024b19', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-k8s-ingress\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-admin-prod', 'mc-admin-prod', '0b68c947968a175c1dba68c375c5ecace14e118e', NOW() - INTERVAL '30 days', NOW() + INTERVAL '85 days', 'b34bb6e6f107ff8b1b447d9049f18ece77c67d699ab5f0407a66d9eaefda604c', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-admin-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-data-prod', 'mc-data-prod', '072e81686ffce068c6e020bf794ff7d2bb142791', NOW() - INTERVAL '30 days', NOW() + INTERVAL '65 days', 'd0ea37ec768780b1487bb817dde896b46e79601285aaa8421ef7830c0dac7fba', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-data-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-edge-eu', 'mc-edge-eu', 'be233bfcf6c8766d2dbe4affcd1c4bc2f6cc994d', NOW() - INTERVAL '30 days', NOW() + INTERVAL '45 days', '71fbcabe991f636603d80168707667dc8c4a3fdef384574042b0c7d3ec1bc18a', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-edge-eu\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-consul-prod', 'mc-consul-prod', 'ea8810b1202718fcbe99ae7218fa9aea70679ad2', NOW() - INTERVAL '30 days', NOW() + INTERVAL '30 days', 'dfd6767591f83bb61908fab2a93d9479a1cf873f1793330da77917d4ca2f7318', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-consul-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-search-prod', 'mc-search-prod', '5c0452d7e1aa522ced1c6b4c6447a77445cd782b', NOW() - INTERVAL '30 days', NOW() + INTERVAL '100 days', '3ab4671ccca8123926b61de0526eeda0a5b5d5c8c1ec8f8355b16c6f2a8ec813', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-search-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-shop-prod', 'mc-shop-prod', '721db6a70ceb2c76683515159c09ea5c5e8b0ea6', NOW() - INTERVAL '30 days', NOW() + INTERVAL '150 days', 'fab28f69fc148d84974400a42dbeed480a6a0e00e2203fa4b037058d3753e596', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-shop-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256)
ON CONFLICT DO NOTHING;

-- The job ids of certctl's demo seed (lowercase types, as there); their certificates,
-- agents, statuses and times are the double's own.
INSERT INTO jobs (id, type, certificate_id, agent_id, status, attempts, scheduled_at, completed_at) VALUES
    ('job-approval-01', 'renewal', 'mc-pay-prod', NULL, 'AwaitingApproval', 0, NOW() - INTERVAL '2 hours', NULL),
    ('job-approval-02', 'issuance', 'mc-shop-prod', NULL, 'AwaitingApproval', 0, NOW() - INTERVAL '1 hours', NULL),
    ('job-dep-001', 'deployment', 'mc-api-prod', 'ag-web-prod', 'completed', 1, NOW() - INTERVAL '1 hours', NOW() - INTERVAL '1 hours'),
    ('job-dep-010', 'deployment', 'mc-web-prod', 'ag-web-prod', 'completed', 1, NOW() - INTERVAL '10 hours', NOW() - INTERVAL '10 hours'),
    ('job-dep-011', 'deployment', 'mc-admin-prod', 'ag-web-prod', 'completed', 1, NOW() - INTERVAL '11 hours', NOW() - INTERVAL '11 hours'),
    ('job-dep-020', 'deployment', 'mc-pay-prod', 'ag-lb-prod', 'completed', 1, NOW() - INTERVAL '20 hours', NOW() - INTERVAL '20 hours'),
    ('job-dep-040', 'deployment', 'mc-auth-prod', 'ag-web-prod', 'completed', 1, NOW() - INTERVAL '40 hours', NOW() - INTERVAL '40 hours'),
    ('job-dep-041', 'deployment', 'mc-blog-prod', 'ag-web-prod', 'completed', 1, NOW() - INTERVAL '41 hours', NOW() - INTERVAL '41 hours'),
    ('job-dep-050', 'deployment', 'mc-cdn-prod', 'ag-edge-01', 'completed', 1, NOW() - INTERVAL '50 hours', NOW() - INTERVAL '50 hours'),
    ('job-dep-060', 'deployment', 'mc-grafana-prod', 'ag-data-prod', 'completed', 1, NOW() - INTERVAL '60 hours', NOW() - INTERVAL '60 hours'),
    ('job-dep-070', 'deployment', 'mc-k8s-ingress', 'ag-k8s-prod', 'completed', 1, NOW() - INTERVAL '70 hours', NOW() - INTERVAL '70 hours'),
    ('job-dep-075', 'deployment', 'mc-data-prod', 'ag-data-prod', 'completed', 1, NOW() - INTERVAL '75 hours', NOW() - INTERVAL '75 hours'),
    ('job-dep-080', 'deployment', 'mc-legacy-prod', 'ag-iis-prod', 'failed', 3, NOW() - INTERVAL '80 hours', NOW() - INTERVAL '80 hours'),
    ('job-dep-085', 'deployment', 'mc-edge-eu', 'ag-edge-01', 'completed', 1, NOW() - INTERVAL '85 hours', NOW() - INTERVAL '85 hours'),
    ('job-dep-090', 'deployment', 'mc-web-stg', 'ag-web-staging', 'completed', 1, NOW() - INTERVAL '90 hours', NOW() - INTERVAL '90 hours'),
    ('job-dep-091', 'deployment', 'mc-api-stg', 'ag-web-staging', 'completed', 1, NOW() - INTERVAL '91 hours', NOW() - INTERVAL '91 hours'),
    ('job-dep-093', 'deployment', 'mc-dash-prod', 'ag-data-prod', 'completed', 1, NOW() - INTERVAL '93 hours', NOW() - INTERVAL '93 hours'),
    ('job-dep-100', 'deployment', 'mc-shop-prod', 'ag-lb-prod', 'completed', 1, NOW() - INTERVAL '100 hours', NOW() - INTERVAL '100 hours'),
    ('job-dep-105', 'deployment', 'mc-mail-prod', 'cloud-aws-sm', 'completed', 1, NOW() - INTERVAL '105 hours', NOW() - INTERVAL '105 hours'),
    ('job-dep-110', 'deployment', 'mc-vault-prod', 'cloud-azure-kv', 'completed', 1, NOW() - INTERVAL '110 hours', NOW() - INTERVAL '110 hours'),
    ('job-dep-111', 'deployment', 'mc-wildcard-prod', 'ag-web-prod', 'running', 1, NOW() - INTERVAL '111 hours', NULL),
    ('job-dep-130', 'deployment', 'mc-status-prod', 'ag-web-prod', 'failed', 3, NOW() - INTERVAL '130 hours', NOW() - INTERVAL '130 hours'),
    ('job-iss-001', 'issuance', 'mc-api-prod', NULL, 'completed', 1, NOW() - INTERVAL '2 hours', NOW() - INTERVAL '2 hours'),
    ('job-iss-050', 'issuance', 'mc-cdn-prod', NULL, 'completed', 1, NOW() - INTERVAL '51 hours', NOW() - INTERVAL '51 hours'),
    ('job-iss-085', 'issuance', 'mc-edge-eu', NULL, 'completed', 1, NOW() - INTERVAL '86 hours', NOW() - INTERVAL '86 hours'),
    ('job-iss-093', 'issuance', 'mc-dash-prod', NULL, 'completed', 1, NOW() - INTERVAL '94 hours', NOW() - INTERVAL '94 hours'),
    ('job-iss-160', 'issuance', 'mc-api-dev', NULL, 'completed', 1, NOW() - INTERVAL '161 hours', NOW() - INTERVAL '161 hours'),
    ('job-ren-010', 'renewal', 'mc-web-prod', NULL, 'completed', 1, NOW() - INTERVAL '12 hours', NOW() - INTERVAL '12 hours'),
    ('job-ren-020', 'renewal', 'mc-pay-prod', NULL, 'completed', 1, NOW() - INTERVAL '22 hours', NOW() - INTERVAL '22 hours'),
    ('job-ren-030', 'renewal', 'mc-auth-prod', NULL, 'completed', 1, NOW() - INTERVAL '32 hours', NOW() - INTERVAL '32 hours'),
    ('job-ren-040', 'renewal', 'mc-ci-prod', NULL, 'completed', 1, NOW() - INTERVAL '42 hours', NOW() - INTERVAL '42 hours'),
    ('job-ren-060', 'renewal', 'mc-grafana-prod', NULL, 'completed', 1, NOW() - INTERVAL '62 hours', NOW() - INTERVAL '62 hours'),
    ('job-ren-070', 'renewal', 'mc-k8s-ingress', NULL, 'completed', 1, NOW() - INTERVAL '72 hours', NOW() - INTERVAL '72 hours'),
    ('job-ren-075', 'renewal', 'mc-data-prod', NULL, 'completed', 1, NOW() - INTERVAL '77 hours', NOW() - INTERVAL '77 hours'),
    ('job-ren-080', 'renewal', 'mc-legacy-prod', NULL, 'failed', 3, NOW() - INTERVAL '82 hours', NOW() - INTERVAL '82 hours'),
    ('job-ren-090', 'renewal', 'mc-web-stg', NULL, 'completed', 1, NOW() - INTERVAL '92 hours', NOW() - INTERVAL '92 hours'),
    ('job-ren-095', 'renewal', 'mc-vpn-prod', NULL, 'completed', 1, NOW() - INTERVAL '97 hours', NOW() - INTERVAL '97 hours'),
    ('job-ren-100', 'renewal', 'mc-shop-prod', NULL, 'completed', 1, NOW() - INTERVAL '102 hours', NOW() - INTERVAL '102 hours'),
    ('job-ren-105', 'renewal', 'mc-mail-prod', NULL, 'completed', 1, NOW() - INTERVAL '107 hours', NOW() - INTERVAL '107 hours'),
    ('job-ren-110', 'renewal', 'mc-vault-prod', NULL, 'completed', 1, NOW() - INTERVAL '112 hours', NOW() - INTERVAL '112 hours'),
    ('job-ren-130', 'renewal', 'mc-status-prod', NULL, 'failed', 3, NOW() - INTERVAL '132 hours', NOW() - INTERVAL '132 hours'),
    ('job-ren-140', 'renewal', 'mc-wiki-prod', NULL, 'running', 1, NOW() - INTERVAL '142 hours', NULL),
    ('job-ren-150', 'renewal', 'mc-grpc-prod', NULL, 'pending', 0, NOW() - INTERVAL '152 hours', NULL),
    ('job-rev-120', 'validation', 'mc-compromised', 'ag-web-prod', 'completed', 1, NOW() - INTERVAL '120 hours', NOW() - INTERVAL '120 hours')
ON CONFLICT DO NOTHING;

INSERT INTO certificate_revocations (id, certificate_id, serial_number, reason, revoked_by, issuer_id) VALUES
    ('rev-demo-compromised', 'mc-compromised', 'demo-compromised-serial', 'keyCompromise', 'o-bob', 'iss-local')
ON CONFLICT DO NOTHING;

INSERT INTO audit_events (id, actor, actor_type, action, resource_type, resource_id, details)
SELECT 'audit-demo-seed', 'system', 'System', 'demo_seed_applied', 'database', 'seed_demo', '{}'
WHERE NOT EXISTS (SELECT 1 FROM audit_events WHERE id = 'audit-demo-seed');
