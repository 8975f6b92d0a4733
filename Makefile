# berth — see README.md. `make`, `make test`, `make demo`.
CC ?= cc
PKGS := libcurl libarchive jansson libseccomp libcrypto yaml-0.1
VERSION := 0.1.0
CFLAGS ?= -O2 -g
# -Wjump-misses-init: a goto past a cleanup variable would free garbage
CFLAGS += -std=c17 -Wall -Wextra -Werror -Wjump-misses-init -DBERTH_VERSION='"$(VERSION)"' \
          -Iinclude -Isrc -pthread -fPIC -MMD -MP \
          $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libcurl, libarchive, libcrypto, libseccomp and libyaml are loaded on first use (src/util/lazylib.c): not
# linked; capabilities are set with capset(2), without libcap.
# pkg-config is quiet: before `make deps` (make demo and make test run it first)
# the packages are not there yet, and a real lack shows as the compiler's error
LDLIBS := $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson) -pthread -ldl
BUILD := build

LIB_SRC := $(filter-out src/runtime/seccomp_gen.c src/runtime/tinyinit.c,$(wildcard src/util/*.c src/image/*.c src/runtime/*.c src/api/*.c \
                      src/bundle/*.c src/network/*.c src/provision/*.c src/preflight/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/profiles/seccomp/default.o $(BUILD)/profiles/purposes.o $(BUILD)/seccomp_bpf.o
CLI_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard src/cli/*.c)) $(BUILD)/completion.o
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

all: $(BUILD)/berth $(BUILD)/berth-oci $(BUILD)/libberth.a $(BUILD)/libberth.so

# berth-oci: runc's command line, the same binary (dispatched on argv[0]); a hard
# link, so a caller that resolves links (readlink -f) still runs berth-oci
$(BUILD)/berth-oci: $(BUILD)/berth
	ln -f $< $@

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# data files linked in as-is (symbols _binary_profiles_<name>_json_start/_end)
$(BUILD)/profiles/%.o: profiles/%.json
	@mkdir -p $(dir $@)
	ld -r -b binary -z noexecstack -o $@ $<

# bash completion, printed by `berth completion bash`
$(BUILD)/completion.o: scripts/completion/berth.bash
	@mkdir -p $(BUILD)
	ld -r -b binary -z noexecstack -o $@ $<

# the seccomp profile compiled to BPF at build time (loaded as is at run time);
# through lazylib's libseccomp shims, as berth's own run-time fallback
$(BUILD)/gen-seccomp: src/runtime/seccomp_gen.c src/util/security.c $(BUILD)/src/util/util.o $(BUILD)/src/util/lazylib.o \
                      $(BUILD)/profiles/seccomp/default.o
	$(CC) $(CFLAGS) -DBERTH_SECCOMP_RUNTIME_ONLY -o $@ $^ $(LDLIBS)

$(BUILD)/seccomp.bpf: $(BUILD)/gen-seccomp
	$(BUILD)/gen-seccomp $@

$(BUILD)/seccomp_bpf.o: $(BUILD)/seccomp.bpf
	cd $(BUILD) && ld -r -b binary -z noexecstack -o seccomp_bpf.o seccomp.bpf

# berth-tiny: the resident part of an idle container (PID 1 and monitor),
# without a C library; x86_64 only (elsewhere berth keeps its own loops)
ifeq ($(shell uname -m),x86_64)
LIB_OBJ += $(BUILD)/tiny_bin.o
CFLAGS += -DBERTH_HAVE_TINY
endif
$(BUILD)/berth-tiny: src/runtime/tinyinit.c
	@mkdir -p $(dir $@)
	$(CC) -static -nostdlib -fno-builtin -fno-tree-loop-distribute-patterns -Os -fno-stack-protector -fno-asynchronous-unwind-tables -fno-pie -no-pie -Wall -Wextra -Werror -s -o $@ $<

$(BUILD)/tiny_bin.o: $(BUILD)/berth-tiny
	cd $(BUILD) && ld -r -b binary -z noexecstack -o tiny_bin.o berth-tiny

$(BUILD)/libberth.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BUILD)/libberth.so: $(LIB_OBJ)
	$(CC) -shared -o $@ $^ $(LDLIBS)

$(BUILD)/berth: $(CLI_OBJ) $(BUILD)/libberth.a
	$(CC) -o $@ $(CLI_OBJ) $(BUILD)/libberth.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libberth.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-missing-field-initializers -o $@ $< $(BUILD)/libberth.a $(LDLIBS) -lcriterion

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t --jobs 2; done

deps:
	scripts/install-deps.sh

fixtures: all
	scripts/fixtures.sh

integration: all
	tests/integration/run.sh

# the suites on pure cgroup v2 in a throwaway VM per kernel (Debian 6.1 and 6.12; qemu TCG)
test-vm: all
	scripts/vmtest/vmtest.sh

# no module includes a header of a module above it (the layers: scripts/check-deps.sh)
check-deps:
	scripts/check-deps.sh

# the C style of .clang-format (clang-format 14): `make format` applies it,
# check-format fails on any file that differs (make test runs it)
FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null | grep -v '^tests/oci/suite/')
format:
	clang-format -i $(FORMAT_FILES)

check-format:
	@clang-format --dry-run --Werror $(FORMAT_FILES) && echo "check-format: $(words $(FORMAT_FILES)) files in the style of .clang-format"

# scripts/test.sh installs the packages first, then builds and runs
# check-deps, check-format and every suite
test:
	scripts/test.sh

# the OCI runtime conformance suite against build/berth-oci (root; make test runs it)
test-oci: all
	tests/oci/conformance.sh

demo:
	scripts/demo.sh

clean:
	rm -rf $(BUILD)

.PHONY: all unit deps fixtures integration test-vm check-deps format check-format test demo clean
-include $(LIB_OBJ:.o=.d) $(filter-out $(BUILD)/completion.d,$(CLI_OBJ:.o=.d))
