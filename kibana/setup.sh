#!/usr/bin/env bash
# The kibana-setup one-shot service (docker-compose.yml), run in the Kibana image:
#   1. waits for Kibana to be available,
#   2. creates the data views of data-view*.json (unless their id exists already): model-*,
#      the prediction events, and cd4ml-monitoring*, the summaries of `monitor`'s reports,
#   3. imports dashboard.ndjson (the "Predictions" dashboard) with overwrite=true.
# The files sit beside this script; running it again changes nothing.
set -eu

KIBANA_URL="${KIBANA_URL:-http://kibana:5601}"
: "${ELASTIC_PASSWORD:?ELASTIC_PASSWORD is not set}"
HERE="$(cd "$(dirname "$0")" && pwd)"
TIMEOUT_SECONDS="${TIMEOUT_SECONDS:-300}"
RESPONSE="$(mktemp)"
trap 'rm -f "$RESPONSE"' EXIT

say() { printf 'kibana-setup: %s\n' "$*"; }

# kibana METHOD PATH [curl options...]: one API call as the elastic user; the body is left in
# $RESPONSE and the HTTP status printed.
kibana() {
  local method="$1" path="$2"
  shift 2
  curl --silent --show-error --connect-timeout 5 --max-time 60 \
    --user "elastic:${ELASTIC_PASSWORD}" --header 'kbn-xsrf: true' \
    --request "$method" --output "$RESPONSE" --write-out '%{http_code}' \
    "$@" "${KIBANA_URL}${path}" || echo 000
}

for file in "$HERE"/data-view*.json; do
  if [ -z "$(sed -n 's/^ *"id": *"\([^"]*\)".*/\1/p' "$file" | head -n 1)" ]; then
    say "no data view id found in $file"
    exit 1
  fi
done

say "waiting for Kibana at $KIBANA_URL (up to ${TIMEOUT_SECONDS}s)"
deadline=$(($(date +%s) + TIMEOUT_SECONDS))
# Kibana as a whole (status.overall.level), not any core service or plugin that is available.
until [ "$(kibana GET /api/status)" = 200 ] && grep -Eq '"overall": *\{[^{}]*"level": *"available"' "$RESPONSE"; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    say "Kibana was not available within ${TIMEOUT_SECONDS}s"
    exit 1
  fi
  sleep 3
done

for file in "$HERE"/data-view*.json; do
  DATA_VIEW_ID="$(sed -n 's/^ *"id": *"\([^"]*\)".*/\1/p' "$file" | head -n 1)"
  status="$(kibana GET "/api/data_views/data_view/${DATA_VIEW_ID}")"
  if [ "$status" = 200 ]; then
    say "data view $DATA_VIEW_ID exists"
  else
    say "creating data view $DATA_VIEW_ID"
    status="$(kibana POST /api/data_views/data_view --header 'Content-Type: application/json' \
      --data-binary "@$file")"
    if [ "$status" != 200 ]; then
      say "creating the data view $DATA_VIEW_ID answered HTTP $status: $(cat "$RESPONSE")"
      exit 1
    fi
  fi
done

say "importing the dashboard (overwrite=true)"
status="$(kibana POST '/api/saved_objects/_import?overwrite=true' --form "file=@$HERE/dashboard.ndjson")"
if [ "$status" != 200 ] || ! grep -Eq '"success": *true' "$RESPONSE"; then
  say "the import answered HTTP $status: $(cat "$RESPONSE")"
  exit 1
fi

say "done: open ${KIBANA_PUBLIC_URL:-http://localhost:5601}/app/dashboards#/view/cd4ml-predictions"
