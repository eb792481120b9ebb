#!/bin/sh
# Wait for the file to appear, then follow it across rotation (tail -F).
set -eu
mkdir -p "$(dirname "$LOG_FILE")"
touch "$LOG_FILE"
exec tail -n +1 -F "$LOG_FILE"
