#!/bin/sh
# The docker compose demo, end to end: a workload token from the broker's dev issuer, the RFC 8693 exchange,
# and a call through Tyk to the echo service with the broker's token. Runs in the `demo` service
# (curlimages/curl), which shares the broker container's network namespace: the dev-mode broker listens on
# 127.0.0.1:8080 only, and Tyk listens on 8081 of the same namespace.
#
#   docker compose up              # runs it once, after the broker is ready
#   docker compose run --rm demo   # runs it again
set -eu

BROKER=${BROKER:-http://127.0.0.1:8080}
TYK=${TYK:-http://127.0.0.1:8081}
LISTEN_PATH=${LISTEN_PATH:-/demo/}

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'demo: FAILED: %s\n' "$*" >&2; exit 1; }

# Waits up to 60 s for a URL to answer 2xx (Tyk's image has no shell for a compose health check).
wait_for() {
  tries=0
  until curl -fs -o /dev/null --max-time 2 "$2"; do
    tries=$((tries + 1))
    [ "$tries" -lt 60 ] || fail "$1 did not answer $2 within 60 s (docker compose logs $1)"
    sleep 1
  done
}

# The payload of a JWT, decoded for display only (base64url without padding -> base64).
claims() {
  payload=$(printf '%s' "$1" | cut -d. -f2 | tr '_-' '/+')
  case $(( ${#payload} % 4 )) in
    2) payload="$payload==" ;;
    3) payload="$payload=" ;;
  esac
  printf '%s' "$payload" | base64 -d 2>/dev/null || printf '(cannot decode)'
  printf '\n'
}

say "waiting for the broker ($BROKER/readyz) and Tyk ($TYK/hello)"
wait_for broker "$BROKER/readyz"
wait_for tyk "$TYK/hello"
echo "both answer"

say "1. a workload token from the dev issuer (shaped like a projected service-account token)"
SUBJECT_TOKEN=$(curl -fsS "$BROKER/dev/workload-token" -H 'content-type: application/json' \
  -d '{"namespace":"payments","serviceAccount":"argo-runner"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
[ -n "$SUBJECT_TOKEN" ] || fail "the dev issuer returned no token"
claims "$SUBJECT_TOKEN"

say "2. exchange it at the broker (RFC 8693 token exchange)"
RESPONSE=$(curl -sS "$BROKER/token" \
  -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
  -d subject_token_type=urn:ietf:params:oauth:token-type:jwt \
  -d "subject_token=$SUBJECT_TOKEN")
ACCESS_TOKEN=$(printf '%s' "$RESPONSE" | sed -n -E 's/.*"access_token":"([^"]+)".*/\1/p')
[ -n "$ACCESS_TOKEN" ] || fail "the exchange was refused: $RESPONSE"
printf '%s\n' "$RESPONSE" | sed -E 's/"access_token":"[^"]+"/"access_token":"<below>"/'
echo "access token claims:"
claims "$ACCESS_TOKEN"

say "3. call the API through Tyk with the broker's token: GET $TYK$LISTEN_PATH"
OUTPUT=$(curl -sS -w '\n%{http_code}' "$TYK$LISTEN_PATH" -H "Authorization: Bearer $ACCESS_TOKEN")
STATUS=$(printf '%s\n' "$OUTPUT" | tail -n 1)
printf '%s\n' "$OUTPUT" | sed '$d'
[ "$STATUS" = 200 ] || fail "Tyk answered $STATUS with the broker's token"

say "4. and without it, Tyk refuses"
printf 'no token:            %s\n' "$(curl -sS -o /dev/null -w '%{http_code}' "$TYK$LISTEN_PATH")"
printf 'the subject token:   %s\n' "$(curl -sS -o /dev/null -w '%{http_code}' "$TYK$LISTEN_PATH" -H "Authorization: Bearer $SUBJECT_TOKEN")"

say "OK: workload token -> broker -> Tyk -> echo"
