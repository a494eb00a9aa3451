#!/usr/bin/env bash
# genworker from the shell with amqp-tools (Debian: amqp-tools).
#
#   examples/shell/genworker.sh submit ID TASK 'JSON params'   # prints the terminal result
#   examples/shell/genworker.sh cancel ID
#
# Environment: AMQP_URL (default amqp://guest:guest@127.0.0.1:5672), GENWORKER_PREFIX (genworker).
set -euo pipefail
url=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}
prefix=${GENWORKER_PREFIX:-genworker}

case "${1:-}" in
  submit)
    id=$2 task=$3 params=${4:-"{}"}
    reply="genworker.reply.$id"
    # A private reply queue: the worker sends the terminal result to reply_to.
    amqp-declare-queue -u "$url" -q "$reply" >/dev/null
    trap 'amqp-delete-queue -u "$url" -q "$reply" >/dev/null 2>&1 || true' EXIT
    amqp-publish -u "$url" -e "$prefix.jobs" -r "$task" -p -C application/json -t "$reply" \
      -b "{\"id\":\"$id\",\"task\":\"$task\",\"params\":$params}"
    echo "submitted $id" >&2
    # One message: the terminal result.
    amqp-consume -u "$url" -q "$reply" -c 1 cat
    echo
    ;;
  cancel)
    amqp-publish -u "$url" -e "$prefix.cancel" -r "" -p -C application/json -b "{\"id\":\"$2\"}"
    echo "cancel sent for $2" >&2
    ;;
  *)
    echo "usage: $0 submit ID TASK 'JSON params' | cancel ID" >&2
    exit 2
    ;;
esac
