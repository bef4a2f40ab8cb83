// acme_flow as the shipped test runs it (tests/load/test_acme.py, the walk of
// pytest_certload/certctl/acme/surface.py): 100 closed-model VUs, each iteration reads
// the profile's ACME directory, HEADs its newNonce URL, probes renewal-info with an id
// that names no certificate (400 or 404 is the expected answer) and thinks for 1 s.
//
// Driven by bench/k6_parity.py; every input comes from the environment (never from a
// -e flag, so the API key stays off the command line):
//   CERTLOAD_DIRECTORY_URL  the profile's directory, https://HOST:PORT/acme/profile/ID/directory
//   CERTLOAD_CERTCTL_TOKEN  certctl's API key (ACME routes need it when certctl has no dashboard)
//   CERTLOAD_VUS            closed-model VUs (100)
//   CERTLOAD_DURATION       load duration (20s)
//   CERTLOAD_SUMMARY        where handleSummary writes k6's summary as JSON (optional)
// Run k6 with SSL_CERT_FILE=<the stack's CA> (Go's crypto/x509 reads it): no
// insecureSkipTLSVerify; with GODEBUG=http2client=0 for HTTP/1.1 (bench/k6_parity.py
// --http-version 1.1, its default), else it negotiates HTTP/2 as the engine's "auto" does.

import http from "k6/http";
import { check, sleep } from "k6";
import exec from "k6/execution";
import { Gauge, Rate } from "k6/metrics";

const SCENARIO = "acme_flow";
// the name tags of pytest_certload/certctl/routes.py, so the series line up with ours
const DIRECTORY = "/acme/profile/{profile}/directory";
const NEW_NONCE = "/acme/profile/{profile}/new-nonce";
const RENEWAL_INFO = "/acme/profile/{profile}/renewal-info/{id}";
const ARI_PROBE_ID = "aaaa.bbbb";

const env = (name, fallback) => __ENV[name] || fallback;
const directoryUrl = env("CERTLOAD_DIRECTORY_URL", "");
const headers = { Authorization: `Bearer ${env("CERTLOAD_CERTCTL_TOKEN", "")}` };

// share of responses that came back over HTTP/1.1: proves which protocol was spoken
const http1 = new Rate("certload_http1");
// when the scenario started (ms since the epoch): bench/k6_parity.py places each
// request of the --out json samples in time from it
const scenarioStart = new Gauge("certload_scenario_start_ms");

// k6 only puts a sub-metric into the summary when a threshold names it: these always
// pass and exist to report the scenario's own figures and its connection phases
const always = {};
for (const trend of [
  "http_req_duration",
  "http_req_blocked",
  "http_req_connecting",
  "http_req_tls_handshaking",
  "http_req_sending",
  "http_req_waiting",
  "http_req_receiving",
]) {
  always[`${trend}{scenario:${SCENARIO}}`] = ["max>=0"];
}
always[`http_reqs{scenario:${SCENARIO}}`] = ["count>=0"];
always[`http_req_failed{scenario:${SCENARIO}}`] = ["rate>=0"];
always[`certload_http1{scenario:${SCENARIO}}`] = ["rate>=0"];

export const options = {
  scenarios: {
    [SCENARIO]: {
      executor: "constant-vus",
      exec: "acmeFlow",
      vus: Number(env("CERTLOAD_VUS", "100")),
      duration: env("CERTLOAD_DURATION", "20s"),
      gracefulStop: "30s",
    },
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

function walk() {
  const dir = sent(http.get(directoryUrl, { headers, tags: { name: DIRECTORY } }));
  if (!check(dir, { "directory 200": (r) => r.status === 200 })) {
    return;
  }
  let body;
  try {
    body = dir.json();
  } catch (e) {
    body = null;
  }
  if (!body || !body.newNonce || !body.renewalInfo) {
    check(null, { "directory lists newNonce and renewalInfo": () => false });
    return;
  }
  const nonce = sent(http.head(body.newNonce, { headers, tags: { name: NEW_NONCE } }));
  if (nonce.status === 429) {
    return;
  }
  check(nonce, {
    "new-nonce 200 with Replay-Nonce": (r) => r.status === 200 && !!r.headers["Replay-Nonce"],
  });
  const ari = sent(
    http.get(`${body.renewalInfo.replace(/\/+$/, "")}/${ARI_PROBE_ID}`, {
      headers,
      tags: { name: RENEWAL_INFO },
      responseCallback: http.expectedStatuses(400, 404),
    }),
  );
  if (ari.status !== 429) {
    check(ari, { "renewal-info 400 or 404": (r) => r.status === 400 || r.status === 404 });
  }
}

export function acmeFlow() {
  noteStart();
  walk(); // stops early at a 429 or an unusable directory, as the surface's walk does
  sleep(1);
}

export function handleSummary(data) {
  const out = { stdout: "" };
  const path = env("CERTLOAD_SUMMARY", "");
  if (path) {
    out[path] = JSON.stringify(data);
  }
  return out;
}
