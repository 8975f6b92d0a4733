#!/bin/bash
# Build the request-parser fuzz target with clang's libFuzzer and run it for
# a bounded time (FUZZ_SECONDS, default 60). Prints a summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
out=build/fuzz
mkdir -p "$out"
PKGS="libcurl libarchive jansson libseccomp libcrypto yaml-0.1"
srcs=$(ls src/util/*.c src/image/*.c src/runtime/*.c src/bundle/*.c src/api/*.c src/preflight/*.c src/provision/*.c src/network/*.c | grep -v -e seccomp_gen -e tinyinit)
ld -r -b binary -z noexecstack -o "$out/seccomp.o" profiles/seccomp/default.json
ld -r -b binary -z noexecstack -o "$out/purposes.o" profiles/purposes.json
clang -g -O1 -std=c17 -DBERTH_SECCOMP_RUNTIME_ONLY -DBERTH_VERSION='"fuzz"' -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Iinclude -Isrc/util -Isrc/image -Isrc/runtime -Isrc/bundle -Isrc/api -Isrc/preflight -Isrc/cli -Isrc/provision -Isrc/network \
  $(pkg-config --cflags $PKGS) -o "$out/fuzz_request" tests/fuzz/fuzz_request.c $srcs "$out/seccomp.o" "$out/purposes.o" \
  $(pkg-config --libs $PKGS) -pthread
work=$(mktemp -d)
cp tests/fuzz/corpus/* "$work/"
status=0
"$out/fuzz_request" -max_total_time="$secs" -max_len=4096 -dict=tests/fuzz/request.dict -artifact_prefix="$out/" \
  "$work" tests/fuzz/crashes >"$out/fuzz.log" 2>&1 || status=$?
tail -n 5 "$out/fuzz.log"
runs=$(grep -o 'Done [0-9]* runs' "$out/fuzz.log" | awk '{print $2}' | tail -n1)
rm -rf "$work"
if [ $status = 0 ]; then
  echo "fuzz: ${runs:-?} inputs in ${secs}s, no crash"
  echo "1 passed, 0 failed"
else
  echo "fuzz: crash (see $out/fuzz.log and $out/crash-*; add the input to tests/fuzz/crashes/)"
  echo "0 passed, 1 failed"
  exit 1
fi
