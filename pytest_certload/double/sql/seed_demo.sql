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

INSERT INTO managed_certificates (id, name, common_name, sans, environment, owner_id, team_id,
                                  issuer_id, renewal_policy_id, status, expires_at, tags,
                                  revoked_at, revocation_reason) VALUES
    ('mc-api-prod', 'mc-api-prod', 'api.example.com', ARRAY['api.example.com'], 'production', 'o-alice', 't-platform', 'iss-local', 'rp-standard', 'Active', NOW() + INTERVAL '75 days', '{"demo": "true"}', NULL, NULL),
    ('mc-web-prod', 'mc-web-prod', 'www.example.com', ARRAY['www.example.com'], 'production', 'o-dave', 't-frontend', 'iss-acme-le', 'rp-standard', 'Active', NOW() + INTERVAL '60 days', '{"demo": "true"}', NULL, NULL),
    ('mc-pay-prod', 'mc-pay-prod', 'pay.example.com', ARRAY['pay.example.com'], 'production', 'o-carol', 't-payments', 'iss-digicert', 'rp-urgent', 'Active', NOW() + INTERVAL '45 days', '{"demo": "true"}', NULL, NULL),
    ('mc-auth-prod', 'mc-auth-prod', 'auth.example.com', ARRAY['auth.example.com'], 'production', 'o-bob', 't-security', 'iss-local', 'rp-urgent', 'Active', NOW() + INTERVAL '20 days', '{"demo": "true"}', NULL, NULL),
    ('mc-cdn-prod', 'mc-cdn-prod', 'cdn.example.com', ARRAY['cdn.example.com'], 'production', 'o-dave', 't-frontend', 'iss-acme-le', 'rp-standard', 'Active', NOW() + INTERVAL '80 days', '{"demo": "true"}', NULL, NULL),
    ('mc-mail-prod', 'mc-mail-prod', 'mail.example.com', ARRAY['mail.example.com'], 'production', 'o-frank', 't-devops', 'iss-sectigo', 'rp-standard', 'Active', NOW() + INTERVAL '120 days', '{"demo": "true"}', NULL, NULL),
    ('mc-vpn-prod', 'mc-vpn-prod', 'vpn.example.com', ARRAY['vpn.example.com'], 'production', 'o-bob', 't-security', 'iss-vault', 'rp-standard', 'Expiring', NOW() + INTERVAL '12 days', '{"demo": "true"}', NULL, NULL),
    ('mc-grafana-prod', 'mc-grafana-prod', 'grafana.example.com', ARRAY['grafana.example.com'], 'production', 'o-eve', 't-data', 'iss-local', 'rp-standard', 'Active', NOW() + INTERVAL '90 days', '{"demo": "true"}', NULL, NULL),
    ('mc-kafka-prod', 'mc-kafka-prod', 'kafka.internal.example.com', ARRAY['kafka.internal.example.com'], 'production', 'o-eve', 't-data', 'iss-stepca', 'rp-standard', 'Active', NOW() + INTERVAL '30 days', '{"demo": "true"}', NULL, NULL),
    ('mc-db-prod', 'mc-db-prod', 'db.internal.example.com', ARRAY['db.internal.example.com'], 'production', 'o-eve', 't-data', 'iss-vault', 'rp-urgent', 'Active', NOW() + INTERVAL '15 days', '{"demo": "true"}', NULL, NULL),
    ('mc-k8s-ingress', 'mc-k8s-ingress', 'ingress.k8s.example.com', ARRAY['ingress.k8s.example.com'], 'production', 'o-frank', 't-devops', 'iss-acme-zs', 'rp-standard', 'Active', NOW() + INTERVAL '70 days', '{"demo": "true"}', NULL, NULL),
    ('mc-iis-prod', 'mc-iis-prod', 'intranet.example.com', ARRAY['intranet.example.com'], 'production', 'o-frank', 't-devops', 'iss-digicert', 'rp-manual', 'Active', NOW() + INTERVAL '200 days', '{"demo": "true"}', NULL, NULL),
    ('mc-lb-prod', 'mc-lb-prod', 'lb.example.com', ARRAY['lb.example.com'], 'production', 'o-alice', 't-platform', 'iss-local', 'rp-standard', 'Active', NOW() + INTERVAL '50 days', '{"demo": "true"}', NULL, NULL),
    ('mc-edge-prod', 'mc-edge-prod', 'edge.example.com', ARRAY['edge.example.com'], 'production', 'o-alice', 't-platform', 'iss-local', 'rp-standard', 'Active', NOW() + INTERVAL '40 days', '{"demo": "true"}', NULL, NULL),
    ('mc-aws-prod', 'mc-aws-prod', 'aws.example.com', ARRAY['aws.example.com'], 'production', 'o-frank', 't-devops', 'iss-sectigo', 'rp-standard', 'Active', NOW() + INTERVAL '100 days', '{"demo": "true"}', NULL, NULL),
    ('mc-azure-prod', 'mc-azure-prod', 'azure.example.com', ARRAY['azure.example.com'], 'production', 'o-frank', 't-devops', 'iss-sectigo', 'rp-standard', 'Active', NOW() + INTERVAL '110 days', '{"demo": "true"}', NULL, NULL),
    ('mc-web-staging', 'mc-web-staging', 'www.staging.example.com', ARRAY['www.staging.example.com'], 'staging', 'o-dave', 't-frontend', 'iss-acme-le', 'rp-standard', 'Active', NOW() + INTERVAL '25 days', '{"demo": "true"}', NULL, NULL),
    ('mc-api-staging', 'mc-api-staging', 'api.staging.example.com', ARRAY['api.staging.example.com'], 'staging', 'o-alice', 't-platform', 'iss-local', 'rp-standard', 'Active', NOW() + INTERVAL '35 days', '{"demo": "true"}', NULL, NULL),
    ('mc-pay-staging', 'mc-pay-staging', 'pay.staging.example.com', ARRAY['pay.staging.example.com'], 'staging', 'o-carol', 't-payments', 'iss-local', 'rp-standard', 'Expiring', NOW() + INTERVAL '5 days', '{"demo": "true"}', NULL, NULL),
    ('mc-auth-staging', 'mc-auth-staging', 'auth.staging.example.com', ARRAY['auth.staging.example.com'], 'staging', 'o-bob', 't-security', 'iss-stepca', 'rp-standard', 'Active', NOW() + INTERVAL '55 days', '{"demo": "true"}', NULL, NULL),
    ('mc-data-staging', 'mc-data-staging', 'data.staging.example.com', ARRAY['data.staging.example.com'], 'staging', 'o-eve', 't-data', 'iss-stepca', 'rp-standard', 'Active', NOW() + INTERVAL '65 days', '{"demo": "true"}', NULL, NULL),
    ('mc-dev-portal', 'mc-dev-portal', 'portal.dev.example.com', ARRAY['portal.dev.example.com'], 'development', 'o-dave', 't-frontend', 'iss-local', 'rp-manual', 'Active', NOW() + INTERVAL '150 days', '{"demo": "true"}', NULL, NULL),
    ('mc-dev-api', 'mc-dev-api', 'api.dev.example.com', ARRAY['api.dev.example.com'], 'development', 'o-alice', 't-platform', 'iss-local', 'rp-manual', 'Active', NOW() + INTERVAL '160 days', '{"demo": "true"}', NULL, NULL),
    ('mc-dev-mac', 'mc-dev-mac', 'mac.dev.example.com', ARRAY['mac.dev.example.com'], 'development', 'o-alice', 't-platform', 'iss-local', 'rp-manual', 'Active', NOW() + INTERVAL '170 days', '{"demo": "true"}', NULL, NULL),
    ('mc-legacy-app', 'mc-legacy-app', 'legacy.example.com', ARRAY['legacy.example.com'], 'production', 'o-carol', 't-payments', 'iss-digicert', 'rp-manual', 'Expired', NOW() + INTERVAL '-10 days', '{"demo": "true"}', NULL, NULL),
    ('mc-old-intranet', 'mc-old-intranet', 'old-intranet.example.com', ARRAY['old-intranet.example.com'], 'production', 'o-frank', 't-devops', 'iss-digicert', 'rp-manual', 'Expired', NOW() + INTERVAL '-40 days', '{"demo": "true"}', NULL, NULL),
    ('mc-wildcard-prod', 'mc-wildcard-prod', '*.example.com', ARRAY['*.example.com'], 'production', 'o-alice', 't-platform', 'iss-digicert', 'rp-standard', 'Active', NOW() + INTERVAL '180 days', '{"demo": "true"}', NULL, NULL),
    ('mc-mtls-payments', 'mc-mtls-payments', 'payments-client.internal.example.com', ARRAY['payments-client.internal.example.com'], 'production', 'o-carol', 't-payments', 'iss-local', 'rp-urgent', 'Active', NOW() + INTERVAL '28 days', '{"demo": "true"}', NULL, NULL),
    ('mc-mtls-ledger', 'mc-mtls-ledger', 'ledger.internal.example.com', ARRAY['ledger.internal.example.com'], 'production', 'o-carol', 't-payments', 'iss-local', 'rp-urgent', 'RenewalInProgress', NOW() + INTERVAL '9 days', '{"demo": "true"}', NULL, NULL),
    ('mc-compromised', 'mc-compromised', 'compromised.example.com', ARRAY['compromised.example.com'], 'production', 'o-bob', 't-security', 'iss-local', 'rp-urgent', 'Revoked', NOW() + INTERVAL '60 days', '{"demo": "true"}', NOW() - INTERVAL '2 days', 'keyCompromise'),
    ('mc-failed-renew', 'mc-failed-renew', 'flaky.example.com', ARRAY['flaky.example.com'], 'production', 'o-dave', 't-frontend', 'iss-acme-le', 'rp-standard', 'Failed', NOW() + INTERVAL '3 days', '{"demo": "true"}', NULL, NULL),
    ('mc-smime-bob', 'mc-smime-bob', 'bob@example.test', ARRAY['bob@example.test'], 'production', 'o-bob', 't-security', 'iss-sectigo', 'rp-standard', 'Active', NOW() + INTERVAL '300 days', '{"demo": "true"}', NULL, NULL)
ON CONFLICT DO NOTHING;

INSERT INTO certificate_target_mappings (certificate_id, target_id) VALUES
    ('mc-api-prod', 'tgt-nginx-prod'),
    ('mc-web-prod', 'tgt-nginx-prod'),
    ('mc-pay-prod', 'tgt-haproxy-prod'),
    ('mc-auth-prod', 'tgt-apache-prod'),
    ('mc-cdn-prod', 'tgt-caddy-prod'),
    ('mc-grafana-prod', 'tgt-nginx-data'),
    ('mc-kafka-prod', 'tgt-nginx-data'),
    ('mc-k8s-ingress', 'tgt-traefik-prod'),
    ('mc-iis-prod', 'tgt-iis-prod'),
    ('mc-lb-prod', 'tgt-haproxy-prod'),
    ('mc-edge-prod', 'tgt-caddy-prod'),
    ('mc-aws-prod', 'tgt-aws-acm-prod'),
    ('mc-azure-prod', 'tgt-azure-kv-prod'),
    ('mc-web-staging', 'tgt-nginx-staging'),
    ('mc-api-staging', 'tgt-nginx-staging'),
    ('mc-wildcard-prod', 'tgt-nginx-prod')
ON CONFLICT DO NOTHING;

-- Certificate versions for 15 certificates (bulk-revoke needs one). The PEM text is a
-- placeholder: these rows stand for certificates issued before the demo began.
INSERT INTO certificate_versions (id, certificate_id, serial_number, not_before, not_after,
                                  fingerprint_sha256, pem_chain, key_algorithm, key_size) VALUES
    ('cv-api-prod', 'mc-api-prod', 'a42deadc94ba640aa09a359e4917cd731359ef6b', NOW() - INTERVAL '30 days', NOW() + INTERVAL '75 days', '469bbf5f802968011f47a4d8a47358343b7d5cf5958ac06adc8887d371376578', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-api-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-web-prod', 'mc-web-prod', '1d2cf8725a339fabdd89c73b590228705569ebb4', NOW() - INTERVAL '30 days', NOW() + INTERVAL '60 days', 'd58fa637448d775a132b9bc32b7446234647c7ac5ea1d0523177c3bf2fabdb62', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-web-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-pay-prod', 'mc-pay-prod', '448141ba0cc7c03c0c07bd7aa8007ecdf1634e7d', NOW() - INTERVAL '30 days', NOW() + INTERVAL '45 days', '9c5a7ef47dbf6134a9c2d3c6b790af072812d596b0b087bc27ae11fab71d7737', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-pay-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-auth-prod', 'mc-auth-prod', 'eeac90139b6c8a6d44df3b591a23b1416b5b61e3', NOW() - INTERVAL '30 days', NOW() + INTERVAL '20 days', 'e42d66b42df4bc1f2bda7af010e4ab6017f2d8852599d3c85a208ac623cd469d', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-auth-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-cdn-prod', 'mc-cdn-prod', '55f29159609bc0b1efd45ca3365fd9aabc8cbc7d', NOW() - INTERVAL '30 days', NOW() + INTERVAL '80 days', '668341e02a4926b766cfc4cdd30e73c43cd1c02cb6b68ec85b54a528606c5697', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-cdn-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-mail-prod', 'mc-mail-prod', '10d241c6728615163e626a9bd89e4b7961f61fa1', NOW() - INTERVAL '30 days', NOW() + INTERVAL '120 days', '4ed62ef0bd7a902add6a9e450c2c33eb6d0e6c3b24fc0d18ababa994f0b469c0', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-mail-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-vpn-prod', 'mc-vpn-prod', 'fb02e9feed0a7a1ba7a5b666e01900608e4d983f', NOW() - INTERVAL '30 days', NOW() + INTERVAL '12 days', '67d939c61f772a6ec021be2a3b7cedf449875f254348ded834cee30b952c88ad', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-vpn-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-grafana-prod', 'mc-grafana-prod', '8a63615761b0b7a3bb77384a393425cac5bf75fd', NOW() - INTERVAL '30 days', NOW() + INTERVAL '90 days', '5ab8203e06b69c7cb67531923dafb999426398ec976050cfa23bbc555ec0e6d2', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-grafana-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-kafka-prod', 'mc-kafka-prod', '0e41e63fd53e6cab779a8ef8e685c4e66d7ea702', NOW() - INTERVAL '30 days', NOW() + INTERVAL '30 days', '798d01ef67fdcf7d4dfc215347123cadf4a48a33bdecce7f0ccc6263d23ee7d2', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-kafka-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-db-prod', 'mc-db-prod', 'adbaea98b352f04045a2afddd7bd703fe96bba0f', NOW() - INTERVAL '30 days', NOW() + INTERVAL '15 days', 'fd93cdf5b8b3b8afac97fff09aaa8b3343cc67d9679eab18e1b34f6b562c2766', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-db-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-k8s-ingress', 'mc-k8s-ingress', '1502afe15b899900e45ccb7d0c746d7a73bfcfbd', NOW() - INTERVAL '30 days', NOW() + INTERVAL '70 days', '15a5904df4bed6ffa93f9054b66dac761bcbe46b63e8fcf2a9600905b2c14ae6', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-k8s-ingress\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-iis-prod', 'mc-iis-prod', '85484b358053c5d1d8fd09197ecde288f4eecadf', NOW() - INTERVAL '30 days', NOW() + INTERVAL '200 days', '08ad728b5946a00bb8d6e7c05d83c3e7db58ccbe1a8867c01a6e50490c11763e', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-iis-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-lb-prod', 'mc-lb-prod', 'ae7610aa400a08fb7b51c84940063f4e7771361f', NOW() - INTERVAL '30 days', NOW() + INTERVAL '50 days', '64d60e84f8dcf1dafa8538b70158250f014127c4ec2821575bffb3a573badda4', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-lb-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-edge-prod', 'mc-edge-prod', '8bc20d44aba00c9e9c2bb3f831c954db60752a4b', NOW() - INTERVAL '30 days', NOW() + INTERVAL '40 days', 'a5b03fddb64c910fff7b57f25cb60ed564de0060f8c29f45894c60f2906b935e', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-edge-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256),
    ('cv-aws-prod', 'mc-aws-prod', '5cbaa0463a316b76e0d28a5e36bb03f5f270041b', NOW() - INTERVAL '30 days', NOW() + INTERVAL '100 days', '6311d11711893d4d4048e7c4b8e3832d03c6d06d576e56715b49188bcdd70ea4', '-----BEGIN CERTIFICATE-----\ndemo placeholder for mc-aws-prod\n-----END CERTIFICATE-----\n', 'ECDSA', 256)
ON CONFLICT DO NOTHING;

INSERT INTO jobs (id, type, certificate_id, agent_id, status, attempts, scheduled_at, completed_at) VALUES
    ('job-demo-issue-api', 'issuance', 'mc-api-prod', 'ag-web-prod', 'completed', 1, NOW() - INTERVAL '30 days', NOW() - INTERVAL '30 days'),
    ('job-demo-renew-ledger', 'renewal', 'mc-mtls-ledger', NULL, 'pending', 0, NOW(), NULL),
    ('job-demo-deploy-web', 'deployment', 'mc-web-prod', 'ag-web-prod', 'completed', 1, NOW() - INTERVAL '5 days', NOW() - INTERVAL '5 days'),
    ('job-demo-renew-flaky', 'renewal', 'mc-failed-renew', NULL, 'failed', 3, NOW() - INTERVAL '1 day', NOW() - INTERVAL '1 day')
ON CONFLICT DO NOTHING;

INSERT INTO certificate_revocations (id, certificate_id, serial_number, reason, revoked_by, issuer_id) VALUES
    ('rev-demo-compromised', 'mc-compromised', 'demo-compromised-serial', 'keyCompromise', 'o-bob', 'iss-local')
ON CONFLICT DO NOTHING;

INSERT INTO audit_events (id, actor, actor_type, action, resource_type, resource_id, details)
SELECT 'audit-demo-seed', 'system', 'System', 'demo_seed_applied', 'database', 'seed_demo', '{}'
WHERE NOT EXISTS (SELECT 1 FROM audit_events WHERE id = 'audit-demo-seed');
