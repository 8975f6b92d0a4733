#!/bin/bash
# `make check-deps`: fail when a module includes a header of a module above
# it. The layers, bottom to top (a module may include its own headers and
# those of the layers below; modules of one layer are peers):
#
#   util (and include/berth.h) < image, bundle < network < runtime
#     < provision, preflight < api < cli
#
# Headers of the tree are included by module ("runtime/state.h"; the
# Makefile has -Isrc), and a bare "state.h" is refused too.
# Each `#include "module/x.h"` of a file under src/ is resolved as the compiler
# resolves it: the including file's own directory first, then the -I
# directories of the Makefile's CFLAGS, in their order. Includes that
# resolve to no file of the tree (system headers, generated files) are not
# checked. A module under src/ that has no layer here fails too: give it one.
#
# Prints each violation as FILE: includes MODULE/HEADER (LAYER > LAYER) and
# exits 1 when there is one not in the allow-list below.
set -uo pipefail
cd "$(dirname "$0")/.."

declare -A LAYER=([include]=0 [util]=0 [image]=1 [bundle]=1 [network]=2 [runtime]=3
                  [provision]=4 [preflight]=4 [api]=5 [cli]=6)

# Upward includes there are today, each with the reason it stays for now.
# FILE:HEADER, one a line; anything after `#` is the reason. Remove an entry
# once its include is gone (a stale entry is reported).
ALLOW='
src/bundle/spec.h:runtime/cgroup.h  # struct limits (spec_input.limits) and cgroup_default_devices() (the devices allow-list spec.c writes into the spec) live in runtime/cgroup.h; moving them down renames API the runtime (and work in progress) uses
src/runtime/container.c:preflight/preflight.h  # preflight_gpu_check() at create (--gpus): the GPU probe belongs to preflight; should become a check the caller (api/cli) passes down
'

# the -I directories, in the Makefile's order
mapfile -t INC_DIRS < <(grep -o -- '-I[^ ]*' Makefile | sed 's/^-I//' | awk '!seen[$0]++')

# resolve HEADER included from DIR: prints the path, or nothing
resolve() {
  local h=$1 dir=$2 d
  if [ -f "$dir/$h" ]; then echo "$dir/$h"; return; fi
  for d in "${INC_DIRS[@]}"; do
    if [ -f "$d/$h" ]; then echo "$d/$h"; return; fi
  done
}

# the module of a path: src/<module>/... or include/...
module_of() {
  case $1 in
    include/*) echo include ;;
    src/*) local r=${1#src/}; echo "${r%%/*}" ;;
  esac
}

declare -A allowed=() used=()
while read -r entry _; do
  [ -n "$entry" ] && allowed[$entry]=1
done < <(sed 's/#.*//' <<<"$ALLOW")

fail=0
bad=0
known=0
while IFS= read -r f; do
  m=$(module_of "$f")
  if [ -z "${LAYER[$m]+x}" ]; then
    echo "check-deps: $f: module \`$m\` has no layer in scripts/check-deps.sh" >&2
    fail=1
    continue
  fi
  while IFS= read -r h; do
    p=$(resolve "$h" "$(dirname "$f")")
    [ -n "$p" ] || continue
    t=$(module_of "$p")
    [ -n "$t" ] && [ -n "${LAYER[$t]+x}" ] || continue
    # a header of the tree is named by its module, so the direction shows
    # where it is included
    if [ "$t" != include ] && [ "$h" != "$t/${p##*/}" ]; then
      echo "check-deps: $f: #include \"$h\": write it as \"$t/${p##*/}\"" >&2
      bad=$((bad + 1))
      fail=1
      continue
    fi
    if [ "${LAYER[$t]}" -gt "${LAYER[$m]}" ]; then
      if [ -n "${allowed[$f:$h]+x}" ]; then
        used[$f:$h]=1
        known=$((known + 1))
        echo "allowed: $f: includes $p ($m, layer ${LAYER[$m]}, includes $t, layer ${LAYER[$t]})"
      else
        echo "check-deps: $f: includes $p: $m (layer ${LAYER[$m]}) must not include $t (layer ${LAYER[$t]})" >&2
        bad=$((bad + 1))
        fail=1
      fi
    fi
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done < <(find src include -name '*.[ch]' | sort)

for e in "${!allowed[@]}"; do
  if [ -z "${used[$e]+x}" ]; then
    echo "check-deps: allow-list entry $e matches no include any more: remove it from scripts/check-deps.sh" >&2
    fail=1
  fi
done
echo "check-deps: $bad violation(s), $known upward include(s) allowed"
exit $fail
