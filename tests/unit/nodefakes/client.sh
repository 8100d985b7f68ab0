#!/bin/bash
# A stand-in for the command it is named as (aws, docker, curl) on the node script's PATH in
# the unit tests: the answer comes from the test process (server.py in this directory) over
# loopback TCP, port $FAKE_PORT. Sends a field count, then NUL-terminated: the server's
# $FAKE_TOKEN, its name, $FAKE_DIR, $PWD, $AWS_MAX_ATTEMPTS ("-" when unset) and its
# arguments; reads back the exit code, stdout and stderr, each NUL-terminated.
exec 3<>"/dev/tcp/127.0.0.1/${FAKE_PORT:?}" || exit 125
printf '%s\0' "$(($# + 5))" "${FAKE_TOKEN:?}" "${0##*/}" "${FAKE_DIR:?}" "$PWD" "${AWS_MAX_ATTEMPTS--}" "$@" >&3
IFS= read -r -d '' rc <&3
IFS= read -r -d '' out <&3
IFS= read -r -d '' err <&3
printf '%s' "$out"
printf '%s' "$err" >&2
exit "${rc:-125}"
