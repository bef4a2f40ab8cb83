"""A stand-in for certctl in launcher tests: serves GET /ready over TLS from certctl's env.

FAKE_CERTCTL_DUMP=<path>: write the environment and cwd there as JSON first.
FAKE_CERTCTL_EXIT=<n>: print a line and exit with status n instead of serving.
"""

import http.server
import json
import os
import ssl
import sys

if os.environ.get("FAKE_CERTCTL_DUMP"):
    with open(os.environ["FAKE_CERTCTL_DUMP"], "w") as fh:
        json.dump({"env": dict(os.environ), "cwd": os.getcwd(), "ls": os.listdir(".")}, fh)
if os.environ.get("FAKE_CERTCTL_EXIT"):
    print("fake certctl: refusing to start on purpose", flush=True)
    sys.exit(int(os.environ["FAKE_CERTCTL_EXIT"]))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path == "/ready"
        body = b'{"status":"ready"}' if ok else b"not found"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


server = http.server.HTTPServer(
    (os.environ["CERTCTL_SERVER_HOST"], int(os.environ["CERTCTL_SERVER_PORT"])), Handler
)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_cert_chain(
    os.environ["CERTCTL_SERVER_TLS_CERT_PATH"], os.environ["CERTCTL_SERVER_TLS_KEY_PATH"]
)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("fake certctl: serving", flush=True)
server.serve_forever()
