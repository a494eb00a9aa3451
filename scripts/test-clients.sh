#!/usr/bin/env bash
# The HTTP API and its client libraries against a real stack (scripts/api-stack.sh: the
# private broker, a worker on the stand-in generator, the API): schemathesis runs the OpenAPI
# document against the live API, then the Python client's tests (pytest) and the TypeScript
# client's (tsc, node --test). Part of `make test`; nothing here is skipped.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv=$root/.run/venv-api
if [ ! -x "$venv/bin/schemathesis" ] || [ clients/python/pyproject.toml -nt "$venv/.installed" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q schemathesis pytest ./clients/python
  touch "$venv/.installed"
fi
command -v tsc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq node-typescript >/dev/null; }

export GENWORKER_STACK_DIR=${GENWORKER_STACK_DIR:-$root/.run/api-stack-test}
export GENWORKER_API_PORT=${GENWORKER_API_PORT:-8098}
export GENWORKER_STACK_METRICS_PORT=${GENWORKER_STACK_METRICS_PORT:-9478}
trap 'scripts/api-stack.sh stop >/dev/null 2>&1 || true' EXIT
scripts/api-stack.sh start > /dev/null
set -a
# shellcheck disable=SC1091
. "$GENWORKER_STACK_DIR/env"
set +a

echo "== schemathesis: the OpenAPI document against the live API"
curl -fsS "$GENWORKER_API_URL/v1/openapi.yaml" > "$GENWORKER_STACK_DIR/openapi.yaml"
"$venv/bin/schemathesis" --config-file scripts/schemathesis.toml run "$GENWORKER_STACK_DIR/openapi.yaml" \
  --url "$GENWORKER_API_URL" -H "Authorization: Bearer $GENWORKER_API_TOKEN_ADMIN"

echo "== genworker status and workers through the API (--api)"
bin=${GENWORKER_BIN:-$root/.build/debug/genworker}
id=cli-$$-$RANDOM
curl -fsS -o /dev/null -H "Authorization: Bearer $GENWORKER_API_TOKEN" \
  -d "{\"id\":\"$id\",\"task\":\"t2v-A14B\",\"params\":{\"prompt\":\"x [[step_s=0.01]]\",\"size\":\"832*480\",\"sample_steps\":2}}" \
  "$GENWORKER_API_URL/v1/jobs"
"$bin" status --api "$GENWORKER_API_URL" "$id" | grep -q "\"id\":\"$id\"" || { echo "status --api: no $id" >&2; exit 1; }
rc=0; "$bin" status --api "$GENWORKER_API_URL" "unknown-$id" 2>/dev/null || rc=$?
[ "$rc" -eq 3 ] || { echo "status --api of an unknown id: exit $rc, not 3" >&2; exit 1; }
"$bin" workers --api "$GENWORKER_API_URL" | grep -q '"online":true' || { echo "workers --api: no worker online" >&2; exit 1; }
"$bin" jobs --api "$GENWORKER_API_URL" --since 1h | grep -q "\"id\":\"$id\"" || { echo "jobs --api: no $id" >&2; exit 1; }

echo "== a result's secrets (a presigned URL, the log tail) only for its submitter and admins"
for _ in $(seq 50); do curl -fsS "$GENWORKER_API_URL/v1/jobs/$id" | grep -q '"state":"completed"' && break; sleep 0.2; done
curl -fsS -H "Authorization: Bearer $GENWORKER_API_TOKEN" "$GENWORKER_API_URL/v1/jobs/$id" | grep -q '"log_tail"' \
  || { echo "the submitter does not see the log tail" >&2; exit 1; }
if curl -fsS "$GENWORKER_API_URL/v1/jobs/$id" | grep -q '"log_tail"'; then echo "an anonymous reader sees the log tail" >&2; exit 1; fi
if curl -fsS -H "Authorization: Bearer $GENWORKER_API_TOKEN_READ" "$GENWORKER_API_URL/v1/jobs?limit=5" | grep -q '"log_tail"'; then
  echo "a read token sees others' log tails" >&2; exit 1
fi

echo "== demand for autoscaling (GET /v1/demand): the worker and its slot counted"
curl -fsS "$GENWORKER_API_URL/v1/demand" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["demand"] == d["queued"] + d["running"] and d["workers"] >= 1 and d["slots"] >= 1, d
print("demand:", d)'

echo "== a browser session (basic auth): state changes from this origin only"
code=$(curl -s -o /dev/null -w '%{http_code}' -u "browser:$GENWORKER_API_BROWSER_PASSWORD" -H "Origin: http://evil.example" \
  -X POST "$GENWORKER_API_URL/v1/jobs/$id/cancel")
[ "$code" = 403 ] || { echo "a cross-origin cancel with basic auth answered $code, not 403" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -u "browser:$GENWORKER_API_BROWSER_PASSWORD" -H "Origin: $GENWORKER_API_URL" \
  -d '{"task":"t2v-A14B","params":{"prompt":"x [[step_s=0.01]]","size":"832*480","sample_steps":2}}' "$GENWORKER_API_URL/v1/jobs")
[ "$code" = 202 ] || { echo "a same-origin submit with basic auth answered $code, not 202" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -u "browser:wrong" "$GENWORKER_API_URL/v1/jobs/$id")
[ "$code" = 401 ] || { echo "a wrong password answered $code, not 401" >&2; exit 1; }

echo "== the Python client (clients/python)"
(cd clients/python && GENWORKER_REQUIRE_INTEGRATION=1 "$venv/bin/python" -m pytest -q -rs tests)

echo "== the TypeScript client (clients/typescript)"
(cd clients/typescript && rm -rf dist && tsc -p . && node --test dist/test/) | tee "$GENWORKER_STACK_DIR/node-test.log"
# A skipped integration test is a failure here: the stack is running.
if ! grep -q "^# skipped 0$" "$GENWORKER_STACK_DIR/node-test.log"; then echo "test-clients: a TypeScript test was skipped" >&2; exit 1; fi
