#!/bin/sh
# Harbor Satellite release wrapper: runs lib/@ENTRY@ on the Node runtime shipped beside it.
# ROOT is found from this script's own path, following symlinks (e.g. /usr/local/bin/satellite ->
# /opt/harbor-satellite/bin/satellite, and /opt/harbor-satellite/bin -> current/bin). Only shell
# built-ins and readlink (for a symlinked script) are used, so an empty PATH still works.
set -e
self=$0
case $self in */*) ;; *) self=$(command -v -- "$self") ;; esac
while [ -h "$self" ]; do
  link=$(readlink -- "$self")
  case $link in /*) self=$link ;; *) self=${self%/*}/$link ;; esac
done
ROOT=$(cd -P -- "${self%/*}/.." && pwd -P)
# Memory settings for a small board, measured in docs/benchmarks.md ("Memory"), from
# scripts/release/runtime.ts: V8 flags for this command and glibc malloc tunables. NODE_OPTIONS adds
# to the flags (e.g. --enable-source-maps); a MALLOC_* variable set outside wins.
@RUNTIME_ENV@
exec "$ROOT/node/bin/node" @NODE_FLAGS@"$ROOT/lib/@ENTRY@" "$@"
