#!/bin/bash
# The OCI runtime conformance suite (opencontainers/runtime-tools
# validation, pinned; ../shared/oci-conformance/run.sh, tests/oci/suite/run.sh
# or $OCI_CONFORMANCE)
# against build/berth-oci, as root. A test fails this script when it fails
# and is not in the list of known failures below (each with its reason,
# also in docs/oci-runtime.md), or when fewer than OCI_MIN_PASS tests pass
# (crun 1.8.1 passes 40 of 58 on the reference host).
set -uo pipefail
cd "$(dirname "$0")/../.."
RT=${OCI_RUNTIME:-$PWD/build/berth-oci}
MIN=${OCI_MIN_PASS:-41}
RUN=${OCI_CONFORMANCE:-}
# the suite's harness: $OCI_CONFORMANCE, else the shared copy beside the
# repository, else the copy in tests/oci/suite (run.sh and the pinned
# runtime-tools sources, Apache-2.0, as shipped in ../shared/oci-conformance)
for c in "$RUN" ../shared/oci-conformance/run.sh tests/oci/suite/run.sh; do
  [ -n "$c" ] && [ -x "$c" ] && { RUN=$c; break; }
done
if [ "$(id -u)" != 0 ]; then echo "conformance: needs root (the suite makes real containers)" >&2; echo "0 passed, 1 failed"; exit 1; fi
if [ ! -x "$RUN" ]; then echo "conformance: run.sh not found; set OCI_CONFORMANCE=/path/to/oci-conformance/run.sh" >&2; echo "0 passed, 1 failed"; exit 1; fi
# test -> why it fails on this kind of host, for every runtime or by the suite's own fault
declare -A KNOWN=(
  [hooks]="the suite's expected string can never match (crun and runc fail it too)"
  [pidfile]="racy: it kills a container whose process (true) has already exited; the spec says that kill must fail"
  [prestart]="spec 1.0.2 ran prestart at start; berth-oci runs it at create, as runc and crun do and as engines expect"
  [start]="#7 expects start to succeed on a config without process; the spec says start must fail then"
  [misc_props]="#1: the suite does not copy /runtimetest into that bundle (crun and runc fail it too)"
  [process_rlimits]="#13: runtimetest is built with Go >= 1.19, which raises its own soft NOFILE limit"
  [linux_cgroups_memory]="kernel 6.18 keeps memory.kmem.limit_in_bytes unlimited whatever is written"
  [linux_cgroups_relative_memory]="the same kmem assertion"
  [linux_cgroups_blkio]="the host's blkio has no blkio.weight/leaf_weight (no CFQ) and no device 8:0"
  [linux_cgroups_relative_blkio]="the same host blkio"
  [linux_cgroups_hugetlb]="hugetlb exists only on cgroup2 here, with no v1 hierarchy"
  [linux_cgroups_relative_hugetlb]="the same"
  [linux_cgroups_network]="net_cls and net_prio are not mounted on this host"
  [linux_cgroups_relative_network]="the same"
  [poststart]="racy: the hook and the program append to one file, and the program (running) is not waited for"
  [killsig]="racy: the signal is sent right after start, and a shell that has not yet run its trap (PID 1) ignores it"
)
OUT=$(mktemp -d /var/tmp/berth-oci-conformance.XXXXXX)
"$RUN" "$RT" "$OUT" | tee "$OUT/run.log"
pass=$(awk -F'\t' '$2=="PASS"' "$OUT/summary.tsv" | wc -l)
fail=$(awk -F'\t' 'NR>1 && $2!="PASS" && $2!="SKIP"' "$OUT/summary.tsv" | wc -l)
unexpected=0
while IFS=$'\t' read -r t res _; do
  [ "$t" = test ] && continue
  [ "$res" = PASS ] || [ "$res" = SKIP ] && continue
  if [ -n "${KNOWN[$t]:-}" ]; then echo "known failure: $t: ${KNOWN[$t]}"
  else echo "UNEXPECTED FAILURE: $t ($res): see $OUT/$t.tap and $t.stderr"; unexpected=$((unexpected+1)); fi
done < "$OUT/summary.tsv"
for t in "${!KNOWN[@]}"; do
  r=$(awk -F'\t' -v t="$t" '$1==t {print $2}' "$OUT/summary.tsv")
  [ "$r" = PASS ] && echo "note: $t passed this time (it is in the known-failure list: ${KNOWN[$t]})"
done
echo "conformance: $pass of $((pass+fail)) passed (at least $MIN needed), $unexpected unexpected failure(s); TAP in $OUT"
rc=0
[ "$pass" -ge "$MIN" ] || { echo "conformance: fewer than $MIN tests passed" >&2; rc=1; }
[ "$unexpected" = 0 ] || rc=1
echo "$pass passed, $fail failed"
exit $rc
