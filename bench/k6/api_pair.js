// certctl's API pair as tests/load/k6.py runs it: issuance_acceptance (POST a new
// certificate, 201 expected) and list_certificates (GET a page of 50, 200 expected), each
// a constant-arrival-rate scenario of 50 iterations/s (preAllocatedVUs 50, maxVUs 200),
// list_certificates starting 5 s after issuance_acceptance.
//
// Driven by bench/k6_parity.py; every input comes from the environment (never from a
// -e flag, so the API key stays off the command line):
//   CERTLOAD_CERTCTL_URL    certctl's base URL, https://HOST:PORT
//   CERTLOAD_CERTCTL_TOKEN  certctl's API key
//   CERTLOAD_RATE           iterations per second of each scenario (50)
//   CERTLOAD_DURATION       each scenario's duration (20s)
//   CERTLOAD_LIST_START     list_certificates' startTime (5s)
//   CERTLOAD_RUN            a run id that makes this run's certificate names unique
//   CERTLOAD_SUMMARY        where handleSummary writes k6's summary as JSON (optional)
// Run k6 with SSL_CERT_FILE=<the stack's CA>, and GODEBUG=http2client=0 for HTTP/1.1.

import http from "k6/http";
import { check } from "k6";
import exec from "k6/execution";
import { Gauge, Rate } from "k6/metrics";

const CERTIFICATES = "/api/v1/certificates"; // also the requests' name tag, as ours
const SCENARIOS = ["issuance_acceptance", "list_certificates"];

const env = (name, fallback) => __ENV[name] || fallback;
const base = env("CERTLOAD_CERTCTL_URL", "").replace(/\/+$/, "");
const token = env("CERTLOAD_CERTCTL_TOKEN", "");
const run = env("CERTLOAD_RUN", `k6${Date.now().toString(36)}`);
const rate = Number(env("CERTLOAD_RATE", "50"));
const duration = env("CERTLOAD_DURATION", "20s");

// the demo seed's rows a certificate must point at, and an expiry outside every
// renewal window (pytest_certload/certctl/payloads.py: certificate_payload)
const FOREIGN_KEYS = {
  issuer_id: "iss-local",
  owner_id: "o-alice",
  team_id: "t-platform",
  renewal_policy_id: "rp-standard",
};
const FAR_FUTURE_EXPIRY = "2099-12-31T00:00:00Z";

const http1 = new Rate("certload_http1");
// when the scenario started (ms since the epoch): bench/k6_parity.py places each
// request of the --out json samples in time from it
const scenarioStart = new Gauge("certload_scenario_start_ms");

const always = {};
for (const scenario of SCENARIOS) {
  for (const trend of [
    "http_req_duration",
    "http_req_blocked",
    "http_req_connecting",
    "http_req_tls_handshaking",
    "http_req_sending",
    "http_req_waiting",
    "http_req_receiving",
  ]) {
    always[`${trend}{scenario:${scenario}}`] = ["max>=0"];
  }
  always[`http_reqs{scenario:${scenario}}`] = ["count>=0"];
  always[`http_req_failed{scenario:${scenario}}`] = ["rate>=0"];
  always[`certload_http1{scenario:${scenario}}`] = ["rate>=0"];
  always[`dropped_iterations{scenario:${scenario}}`] = ["count>=0"];
}

const arrivals = (fn, startTime) => ({
  executor: "constant-arrival-rate",
  exec: fn,
  rate,
  timeUnit: "1s",
  duration,
  preAllocatedVUs: 50,
  maxVUs: 200,
  startTime,
});

export const options = {
  scenarios: {
    issuance_acceptance: arrivals("createCertificate", "0s"),
    list_certificates: arrivals("listCertificates", env("CERTLOAD_LIST_START", "5s")),
  },
  summaryTrendStats: ["med", "p(95)", "p(99)", "count"],
  thresholds: always,
};

function sent(res) {
  http1.add(res.proto === "HTTP/1.1");
  return res;
}

function noteStart() {
  if (exec.vu.iterationInScenario === 0) {
    scenarioStart.add(exec.scenario.startTime);
  }
}

export function createCertificate() {
  noteStart();
  // certctl's certificate name is globally unique (a duplicate is a 500)
  const name = `loadtest-issuance-${run}-${exec.scenario.iterationInTest + 1}`;
  const commonName = `${name}.example.test`;
  const body = JSON.stringify({
    name,
    common_name: commonName,
    ...FOREIGN_KEYS,
    environment: "production",
    sans: [commonName],
    expires_at: FAR_FUTURE_EXPIRY,
  });
  const res = sent(
    http.post(`${base}${CERTIFICATES}`, body, {
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      tags: { name: CERTIFICATES },
      responseCallback: http.expectedStatuses(201),
    }),
  );
  check(res, { "certificate created (201)": (r) => r.status === 201 });
}

export function listCertificates() {
  noteStart();
  const res = sent(
    http.get(`${base}${CERTIFICATES}?per_page=50`, {
      headers: { Authorization: `Bearer ${token}` },
      tags: { name: CERTIFICATES },
      responseCallback: http.expectedStatuses(200),
    }),
  );
  check(res, { "certificates listed (200)": (r) => r.status === 200 });
}

export function handleSummary(data) {
  const out = { stdout: "" };
  const path = env("CERTLOAD_SUMMARY", "");
  if (path) {
    out[path] = JSON.stringify(data);
  }
  return out;
}
