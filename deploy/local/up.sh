#!/usr/bin/env bash
# `make up`: infrastructure, the services, the example flow, then what a user needs to know.
# Running it again reuses what runs and keeps the example's deployed version.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$DEPLOY_DIR/infra.sh" up
"$DEPLOY_DIR/services.sh" start

GATEWAY=http://127.0.0.1:${HOOKFLOW_GATEWAY_PORT:-8080}
ENGINE=http://127.0.0.1:${HOOKFLOW_ENGINE_PORT:-8081}
AUTH=http://127.0.0.1:${HOOKFLOW_AUTH_PORT:-8082}
EXAMPLE=$LOCAL_DIR/example-flow.json
PY=$HOOKFLOW_ROOT/.venv/bin/python
ADMIN_KEY=$("$DEPLOY_DIR/services.sh" admin-key)

flow_id=""
if [ -s "$EXAMPLE" ]; then
  flow_id=$("$PY" -c 'import json,sys;print(json.load(open(sys.argv[1]))["flowId"])' "$EXAMPLE")
  KEY=$ADMIN_KEY python3 -c 'import os,sys,urllib.request
request = urllib.request.Request(sys.argv[1], headers={"x-admin-key": os.environ["KEY"]})
urllib.request.urlopen(request, timeout=5)' "$ENGINE/api/automation/flows/$flow_id" 2>/dev/null \
    || flow_id=""
fi
if [ -z "$flow_id" ]; then
  KEY=$ADMIN_KEY python3 - "$ENGINE/api/automation/flows" "$HOOKFLOW_ROOT/examples/order-flow.json" "$EXAMPLE" <<'PY'
import os, sys, urllib.request
url, flow, out = sys.argv[1:]
request = urllib.request.Request(url, data=open(flow, "rb").read(),
                                 headers={"content-type": "application/json",
                                          "x-admin-key": os.environ["KEY"]})
with urllib.request.urlopen(request, timeout=30) as response:
    open(out, "wb").write(response.read())
PY
fi
read -r flow_id callback < <("$PY" -c 'import json,sys
d=json.load(open(sys.argv[1])); print(d["flowId"], d["triggers"][0]["callbackUrl"])' "$EXAMPLE")

cat <<TEXT

hookflow is up on one origin: $GATEWAY
  everything a FlowRunner client calls answers there: callbacks, starts by id and name,
  execution status and results, blocking calls, /api/users/*, the management API and
  the console ($GATEWAY/console/, sign in with the admin key below); the Backendless SDK
  takes it as is: Backendless.initApp('$GATEWAY')
  behind it: gateway $GATEWAY, engine $ENGINE, auth $AUTH

The example order flow is deployed: flow $flow_id
  "Payment Confirmed" callback URL: $callback
  start an order:  curl -X POST $GATEWAY/api/automation/flow/$flow_id/execute \\
                     -H "X-Admin-Key: \$HOOKFLOW_ADMIN_KEY" -H 'content-type: application/json' \\
                     -d '{"order": {"id": "o-1", "total": 25, "customer": "ann@example.com"}}'
  The management API (engine, and the gateway's /execute) and roles take the admin key:
    export HOOKFLOW_ADMIN_KEY=$ADMIN_KEY
  (the CLI reads it; curl sends it as X-Admin-Key; also: deploy/local/services.sh admin-key)
  the SDK's order scenario:  node examples/sdk-order/order.mjs $GATEWAY
                              (after deploying examples/sdk-order/flow.json: its README)
  the README walks through the rest.

Logs: make logs   (files in $LOCAL_DIR/logs)     Stop: make down
TEXT
