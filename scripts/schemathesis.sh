#!/usr/bin/env bash
# Fuzzes `atq serve` against its own OpenAPI document (/openapi.json) with schemathesis, on the
# real engine: no response may be a 5xx, and every status code, content type and body must be
# the one the document declares. Bounded: a few dozen examples per operation, at most 150 s.
# The token used may run only the test images, so a fuzzed task can never run anything else.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet schemathesis
cargo build --locked -p atq-cli
atq=$PWD/target/debug/atq

token=$("$atq" token add schemathesis --scopes runs:read,runs:write,data:write --tokens "$work/tokens.json")
python3 - "$work/tokens.json" <<'PY'
import json, sys
path = sys.argv[1]
tokens = json.load(open(path))
tokens["policy"] = {"images": ["atq-test/*"], "maxReplicas": 2, "maxConcurrentRuns": 4}
json.dump(tokens, open(path, "w"))
PY

"$atq" serve --listen 127.0.0.1:0 --tokens "$work/tokens.json" --state "$work/state" 2> "$work/serve.log" &
server_pid=$!
for _ in $(seq 100); do
  grep -q 'serving on' "$work/serve.log" && break
  sleep 0.1
done
url=$(sed -n 's/^atq: serving on \(http:[^ ]*\).*/\1/p' "$work/serve.log")
[ -n "$url" ] || { cat "$work/serve.log"; echo "error: atq serve did not start" >&2; exit 1; }

# From the scratch directory: schemathesis writes its cache (.schemathesis/) where it runs.
(cd "$work" && timeout 150 "$work/venv/bin/schemathesis" run "$url/openapi.json" \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples 30)
echo "schemathesis: no 5xx, every answer as documented"
