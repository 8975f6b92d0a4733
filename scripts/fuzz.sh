#!/bin/bash
# Build the fuzz targets with clang's libFuzzer and run each for a bounded
# time: the request parser (FUZZ_SECONDS, default 60) and egress's DNS and
# entry parsers (FUZZ_DNS_SECONDS, default 30). Prints a summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
dns_secs=${FUZZ_DNS_SECONDS:-30}
out=build/fuzz
mkdir -p "$out"
PKGS="libcurl libarchive jansson libseccomp libcrypto yaml-0.1"
srcs=$(ls src/util/*.c src/image/*.c src/runtime/*.c src/bundle/*.c src/api/*.c src/preflight/*.c src/provision/*.c src/network/*.c | grep -v -e seccomp_gen -e tinyinit)
ld -r -b binary -z noexecstack -o "$out/seccomp.o" profiles/seccomp/default.json
ld -r -b binary -z noexecstack -o "$out/purposes.o" profiles/purposes.json
passed=0 failed=0
# fuzz TARGET SECONDS CORPUS [libFuzzer options...]
fuzz() {
  local t=$1 s=$2 corpus=$3
  shift 3
  clang -g -O1 -std=c17 -DBERTH_SECCOMP_RUNTIME_ONLY -DBERTH_VERSION='"fuzz"' -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -Iinclude -Isrc \
    $(pkg-config --cflags $PKGS) -o "$out/$t" "tests/fuzz/$t.c" $srcs "$out/seccomp.o" "$out/purposes.o" \
    $(pkg-config --libs $PKGS) -pthread
  local work status=0 runs
  work=$(mktemp -d)
  cp "$corpus"/* "$work/"
  mkdir -p tests/fuzz/crashes
  "$out/$t" -max_total_time="$s" "$@" -artifact_prefix="$out/" "$work" tests/fuzz/crashes >"$out/$t.log" 2>&1 || status=$?
  tail -n 5 "$out/$t.log"
  runs=$(grep -o 'Done [0-9]* runs' "$out/$t.log" | awk '{print $2}' | tail -n1)
  rm -rf "$work"
  if [ $status = 0 ]; then
    echo "fuzz: $t: ${runs:-?} inputs in ${s}s, no crash"
    passed=$((passed + 1))
  else
    echo "fuzz: $t: crash (see $out/$t.log and $out/crash-*; add the input to tests/fuzz/crashes/)"
    failed=$((failed + 1))
  fi
}
fuzz fuzz_request "$secs" tests/fuzz/corpus -max_len=4096 -dict=tests/fuzz/request.dict
fuzz fuzz_dns "$dns_secs" tests/fuzz/corpus_dns -max_len=1024
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
