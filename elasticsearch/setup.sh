#!/usr/bin/env bash
# The es-setup one-shot service (docker-compose.yml), run in the Elasticsearch image:
#   1. waits for Elasticsearch,
#   2. sets the password Kibana uses (user kibana_system),
#   3. creates the role and user fluentd writes prediction events with (model-* only),
#   4. puts the index template for model-* (index-template.json beside this script),
#   5. puts the index template for cd4ml-monitoring, the summaries `monitor` indexes
#      (monitoring-template.json beside this script).
# Every step is idempotent: running it again changes nothing.
set -euo pipefail

ES_URL="${ES_URL:-http://elasticsearch:9200}"
: "${ELASTIC_PASSWORD:?ELASTIC_PASSWORD is not set}"
: "${KIBANA_SYSTEM_PASSWORD:?KIBANA_SYSTEM_PASSWORD is not set}"
: "${FLUENTD_ES_PASSWORD:?FLUENTD_ES_PASSWORD is not set}"
HERE="$(cd "$(dirname "$0")" && pwd)"
TIMEOUT_SECONDS="${TIMEOUT_SECONDS:-180}"

say() { printf 'es-setup: %s\n' "$*"; }

# A JSON string literal: backslashes and double quotes escaped.
json_string() {
  local escaped="${1//\\/\\\\}"
  printf '"%s"' "${escaped//\"/\\\"}"
}

# es METHOD PATH [BODY]: one request as the elastic user; prints the body, fails unless 2xx.
es() {
  local method="$1" path="$2" body="${3:-}" response status
  response="$(mktemp)"
  status="$(curl --silent --show-error --connect-timeout 5 --max-time 30 \
    --user "elastic:${ELASTIC_PASSWORD}" --request "$method" \
    --header 'Content-Type: application/json' \
    ${body:+--data-binary "$body"} \
    --output "$response" --write-out '%{http_code}' "${ES_URL}${path}")" || status=000
  cat "$response"
  echo
  rm -f "$response"
  if [[ "$status" != 2* ]]; then
    say "$method $path answered HTTP $status"
    return 1
  fi
}

for name in ELASTIC_PASSWORD KIBANA_SYSTEM_PASSWORD FLUENTD_ES_PASSWORD; do
  if [[ "${!name}" == "change-me" ]]; then
    say "warning: $name is still the placeholder from .env.example; replace it in .env"
  fi
done

say "waiting for Elasticsearch at $ES_URL (up to ${TIMEOUT_SECONDS}s)"
deadline=$((SECONDS + TIMEOUT_SECONDS))
until es GET "/_cluster/health?wait_for_status=yellow&timeout=5s" >/dev/null 2>&1; do
  if ((SECONDS >= deadline)); then
    say "Elasticsearch did not answer within ${TIMEOUT_SECONDS}s; is the elastic password in .env the one it was first started with?"
    exit 1
  fi
  sleep 3
done

say "setting the kibana_system password"
es POST /_security/user/kibana_system/_password "{\"password\": $(json_string "$KIBANA_SYSTEM_PASSWORD")}"

say "creating role cd4ml_event_writer and user cd4ml_fluentd"
es PUT /_security/role/cd4ml_event_writer '{
  "cluster": ["monitor"],
  "indices": [
    {"names": ["model-*"], "privileges": ["create_index", "write", "view_index_metadata"]}
  ]
}'
es PUT /_security/user/cd4ml_fluentd "{
  \"password\": $(json_string "$FLUENTD_ES_PASSWORD"),
  \"roles\": [\"cd4ml_event_writer\"],
  \"full_name\": \"fluentd (prediction events)\"
}"

say "putting index template model-events for model-*"
es PUT /_index_template/model-events "@${HERE}/index-template.json"

say "putting index template monitoring-reports for cd4ml-monitoring*"
es PUT /_index_template/monitoring-reports "@${HERE}/monitoring-template.json"

say "done"
