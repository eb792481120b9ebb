#!/bin/sh
# The page of a sample app: which app, which pod, which IP. The body is the same on every
# request to one pod (no counters, no clock), so tests and benchmarks can compare it.
# When $LOG_FILE's directory exists (an emptyDir shared with tuik8s/log-collector), one
# line per request is appended to it.
ip="${POD_IP:-}"
if [ -z "$ip" ]; then
    ip=$(ip -4 -o addr show scope global 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')
fi
pod="${POD_NAME:-$(hostname)}"
if [ -n "${LOG_FILE:-}" ] && [ -d "$(dirname "$LOG_FILE")" ]; then
    client="${REMOTE_ADDR#\[::ffff:}"
    client="${client%]}"
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $APP $client $REQUEST_METHOD $REQUEST_URI" >>"$LOG_FILE"
fi
printf 'Content-Type: text/plain\r\n\r\n'
printf 'app: %s\npod: %s\nip: %s\n' "$APP" "$pod" "$ip"
