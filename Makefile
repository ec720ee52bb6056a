# lemon: one binary, one layer per folder. `make` builds build/lemon;
# `make test` builds and runs unit and integration tests; `make test-asan`
# runs the same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
CC ?= cc
PKGS := libpci libkmod libcjson libcurl libarchive openssl libisal
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
# libcurl and libarchive are dlopen'ed on first use
# (util/lazylib.h): linking them would make every command, doctor included,
# pay for relocating some forty libraries they pull in
LAZY_PKGS := libcurl libarchive
PKG_LIBS := $(shell pkg-config --libs $(filter-out $(LAZY_PKGS),$(PKGS)))
PREFIX ?= /usr/local
DATADIR ?= $(CURDIR)/compat

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
BUILD ?= build
WERROR ?=
SAN ?=
OPT ?= -O2
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wformat=2 \
	-Wno-missing-field-initializers -g $(OPT) $(WERROR) $(SAN) -I. \
	-DLEMON_DATADIR='"$(DATADIR)"' -DLEMON_VERSION='"$(VERSION)"'
LDLIBS := $(PKG_LIBS) -ldl -lm
override CFLAGS := $(CFLAGS_BASE) $(PKG_CFLAGS) $(CFLAGS)

LAYERS := util detect compat doctor provision backends server
LIB_SRCS := $(foreach d,$(LAYERS),$(wildcard $(d)/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
# the web app's files, embedded into the binary (scripts/embed-ui.sh)
UI_FILES := $(sort $(wildcard server/ui/*.html server/ui/*.css server/ui/*.js server/ui/*.svg))
LIB_OBJS += $(BUILD)/obj/gen/ui_files.o
CLI_SRCS := $(wildcard cli/*.c)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

all: $(BUILD)/lemon

$(BUILD)/lemon: $(CLI_OBJS) $(BUILD)/liblemon.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJS) $(BUILD)/liblemon.a $(LDLIBS)

$(BUILD)/liblemon.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/gen/ui_files.c: scripts/embed-ui.sh $(UI_FILES)
	@mkdir -p $(dir $@)
	scripts/embed-ui.sh $@ $(UI_FILES)

$(BUILD)/obj/gen/ui_files.o: $(BUILD)/gen/ui_files.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/liblemon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/liblemon.a $(LDLIBS) -lcmocka \
		$(shell pkg-config --libs $(LAZY_PKGS))

unit: $(UNIT_BINS)

test: all unit
	LEMON=$(BUILD)/lemon BUILD=$(BUILD) tests/run.sh $(UNIT_BINS)

test-asan:
	$(MAKE) BUILD=build-asan OPT=-O1 WERROR=-Werror \
		SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

check:
	scripts/check.sh

# `make install PREFIX=/usr DESTDIR=...`: the binary, built apart with
# LEMON_DATADIR at $(PREFIX)/share/lemon (the dev build keeps the tree's
# compat/), its data, man page, completions and systemd user unit
INSTALL_BUILD ?= $(BUILD)/install
BINDIR ?= $(PREFIX)/bin
SHAREDIR ?= $(PREFIX)/share
USERUNITDIR ?= $(PREFIX)/lib/systemd/user

install:
	@# objects built for another data directory are rebuilt
	@if [ "$$(cat $(INSTALL_BUILD)/datadir 2>/dev/null)" != "$(SHAREDIR)/lemon" ]; then \
		rm -rf $(INSTALL_BUILD); mkdir -p $(INSTALL_BUILD); \
		echo "$(SHAREDIR)/lemon" > $(INSTALL_BUILD)/datadir; fi
	$(MAKE) BUILD=$(INSTALL_BUILD) DATADIR=$(SHAREDIR)/lemon $(INSTALL_BUILD)/lemon
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SHAREDIR)/lemon $(DESTDIR)$(SHAREDIR)/man/man1 \
		$(DESTDIR)$(SHAREDIR)/bash-completion/completions \
		$(DESTDIR)$(SHAREDIR)/zsh/vendor-completions $(DESTDIR)$(USERUNITDIR)
	install -m 755 $(INSTALL_BUILD)/lemon $(DESTDIR)$(BINDIR)/lemon
	install -m 644 compat/*.json $(DESTDIR)$(SHAREDIR)/lemon/
	install -m 644 packaging/lemon.1 $(DESTDIR)$(SHAREDIR)/man/man1/lemon.1
	install -m 644 packaging/lemon.bash $(DESTDIR)$(SHAREDIR)/bash-completion/completions/lemon
	install -m 644 packaging/_lemon $(DESTDIR)$(SHAREDIR)/zsh/vendor-completions/_lemon
	sed 's|@BINDIR@|$(BINDIR)|' packaging/lemon.service > $(DESTDIR)$(USERUNITDIR)/lemon.service
	chmod 644 $(DESTDIR)$(USERUNITDIR)/lemon.service

clean:
	rm -rf build-fuzz
	rm -rf build build-asan

.PHONY: all unit test test-asan check clean install
-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d)

# bounded fuzzing of the detect parsers with libFuzzer (clang)
FUZZ_SECONDS ?= 30
FUZZ_SRCS := util/err.c util/str.c detect/kfd.c detect/gpu.c detect/cpu.c \
	detect/user.c detect/iommu.c detect/firmware.c detect/kmsg.c detect/root.c \
	detect/detect.c detect/pci.c detect/xdna.c detect/kmod.c detect/nodes.c \
	detect/host.c detect/vulkan.c detect/cuda.c detect/libdrm.c
fuzz: build-fuzz/fuzz_detect_parsers build-fuzz/fuzz_backends_gguf build-fuzz/fuzz_util_http1 \
	build-fuzz/fuzz_server_http1_request build-fuzz/fuzz_server_body \
	build-fuzz/fuzz_provision_manifest build-fuzz/fuzz_compat_models \
	build-fuzz/fuzz_backends_fault build-fuzz/fuzz_provision_github build-fuzz/fuzz_server_prom \
	build-fuzz/fuzz_server_ollama_tools
	mkdir -p build-fuzz/corpus build-fuzz/corpus-gguf build-fuzz/corpus-http1 \
		build-fuzz/corpus-http1-request build-fuzz/corpus-body \
		build-fuzz/corpus-manifest build-fuzz/corpus-models
	build-fuzz/fuzz_detect_parsers -max_total_time=$(FUZZ_SECONDS) -max_len=8192 build-fuzz/corpus
	build-fuzz/fuzz_backends_gguf -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build-fuzz/corpus-gguf
	build-fuzz/fuzz_util_http1 -max_total_time=$(FUZZ_SECONDS) -max_len=20000 build-fuzz/corpus-http1
	build-fuzz/fuzz_server_body -max_total_time=$(FUZZ_SECONDS) -max_len=8192 build-fuzz/corpus-body
	build-fuzz/fuzz_server_http1_request -max_total_time=$(FUZZ_SECONDS) -max_len=40000 \
		build-fuzz/corpus-http1-request
	build-fuzz/fuzz_provision_manifest -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		build-fuzz/corpus-manifest
	cp compat/models.json build-fuzz/corpus-models/
	build-fuzz/fuzz_compat_models -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
		build-fuzz/corpus-models
	mkdir -p build-fuzz/corpus-fault
	build-fuzz/fuzz_backends_fault -max_total_time=$(FUZZ_SECONDS) -max_len=2048 \
		build-fuzz/corpus-fault
	mkdir -p build-fuzz/corpus-github
	build-fuzz/fuzz_provision_github -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
		build-fuzz/corpus-github
	mkdir -p build-fuzz/corpus-prom
	build-fuzz/fuzz_server_prom -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
		build-fuzz/corpus-prom
	mkdir -p build-fuzz/corpus-ollama-tools
	build-fuzz/fuzz_server_ollama_tools -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		build-fuzz/corpus-ollama-tools

# a client's Ollama messages and a child's tool-call deltas (server/ollama_tools.c)
build-fuzz/fuzz_server_ollama_tools: tests/fuzz/fuzz_server_ollama_tools.c server/ollama_tools.c \
	server/ollama_images.c util/str.c util/err.c
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. $(shell pkg-config --cflags libcjson) \
		-fsanitize=fuzzer,address,undefined -o $@ $^ $(shell pkg-config --libs libcjson)

# a child's /metrics text, re-exported by lemon's /metrics (server/prom.c)
build-fuzz/fuzz_server_prom: tests/fuzz/fuzz_server_prom.c server/prom.c
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. -fsanitize=fuzzer,address,undefined -o $@ $^

# a mirror's manifest.json and a user's models.json: untrusted JSON
FUZZ_JSON_SRCS := util/err.c util/str.c util/fs.c util/buf.c compat/schema.c
build-fuzz/fuzz_provision_manifest: tests/fuzz/fuzz_provision_manifest.c provision/manifest.c \
	compat/backends.c $(FUZZ_JSON_SRCS)
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. -DLEMON_DATADIR='"$(DATADIR)"' \
		$(shell pkg-config --cflags libcjson) -fsanitize=fuzzer,address,undefined \
		-o $@ $^ $(shell pkg-config --libs libcjson)

# GitHub's release listing (provision/release.c): untrusted JSON from the network
build-fuzz/fuzz_provision_github: tests/fuzz/fuzz_provision_github.c provision/release.c \
	util/err.c util/str.c
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. $(shell pkg-config --cflags libcjson) \
		-fsanitize=fuzzer,address,undefined -o $@ $^ $(shell pkg-config --libs libcjson)

build-fuzz/fuzz_compat_models: tests/fuzz/fuzz_compat_models.c compat/models.c $(FUZZ_JSON_SRCS)
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. -DLEMON_DATADIR='"$(DATADIR)"' \
		$(shell pkg-config --cflags libcjson) -fsanitize=fuzzer,address,undefined \
		-o $@ $^ $(shell pkg-config --libs libcjson)

build-fuzz/fuzz_server_http1_request: tests/fuzz/fuzz_server_http1_request.c server/http1_request.c \
	util/http1.c
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. $(shell pkg-config --cflags libcjson) \
		-fsanitize=fuzzer,address,undefined -o $@ $^

build-fuzz/fuzz_backends_gguf: tests/fuzz/fuzz_backends_gguf.c util/err.c util/str.c backends/gguf.c
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. -fsanitize=fuzzer,address,undefined -o $@ $^

# llama-server's log lines: which blame the model (backends/fault.c)
build-fuzz/fuzz_backends_fault: tests/fuzz/fuzz_backends_fault.c backends/fault.c
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. -fsanitize=fuzzer,address,undefined -o $@ $^

build-fuzz/fuzz_util_http1: tests/fuzz/fuzz_util_http1.c util/http1.c
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. -fsanitize=fuzzer,address,undefined -o $@ $^

# the body validator calls the model-name check of backends/, so this
# target links a clang-built library (the archive pulls in only what is used)
fuzz-lib:
	$(MAKE) BUILD=build-fuzz/lib CC=clang OPT=-O1 \
		SAN="-fsanitize=fuzzer-no-link,address,undefined" build-fuzz/lib/liblemon.a

build-fuzz/fuzz_server_body: tests/fuzz/fuzz_server_body.c fuzz-lib
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined \
		-o $@ $< build-fuzz/lib/liblemon.a $(LDLIBS)

build-fuzz/fuzz_detect_parsers: tests/fuzz/fuzz_detect_parsers.c $(FUZZ_SRCS)
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. $(shell pkg-config --cflags libpci libkmod) \
		-fsanitize=fuzzer,address,undefined -o $@ $^ $(shell pkg-config --libs libpci libkmod) -ldl

# kernel-log lines against the shipped patterns (compat/lookup.c); part of fuzz
fuzz: fuzz-kmsg
fuzz-kmsg: build-fuzz/fuzz_compat_kmsg
	mkdir -p build-fuzz/corpus-kmsg
	cat tests/fixtures/*/dev/kmsg > build-fuzz/corpus-kmsg/fixtures-kmsg
	build-fuzz/fuzz_compat_kmsg -max_total_time=$(FUZZ_SECONDS) -max_len=1024 \
		build-fuzz/corpus-kmsg

build-fuzz/fuzz_compat_kmsg: tests/fuzz/fuzz_compat_kmsg.c compat/lookup.c compat/load.c \
	compat/load-npu.c compat/flm.c compat/nvidia.c compat/backends.c $(FUZZ_JSON_SRCS)
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. -DLEMON_DATADIR='"$(DATADIR)"' \
		$(shell pkg-config --cflags libcjson) -fsanitize=fuzzer,address,undefined \
		-o $@ $^ $(shell pkg-config --libs libcjson)

# `flm version` output (detect/flm.c); part of fuzz
fuzz: fuzz-flm
fuzz-flm: build-fuzz/fuzz_detect_flm
	mkdir -p build-fuzz/corpus-flm
	build-fuzz/fuzz_detect_flm -max_total_time=$(FUZZ_SECONDS) -max_len=512 build-fuzz/corpus-flm

build-fuzz/fuzz_detect_flm: tests/fuzz/fuzz_detect_flm.c detect/flm.c util/str.c util/err.c
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. -fsanitize=fuzzer,address,undefined -o $@ $^

.PHONY: fuzz-kmsg fuzz-flm

.PHONY: fuzz fuzz-lib

# a `lemon worker`'s answer (backends/worker_json.c): untrusted JSON from the network
fuzz: fuzz-workers
fuzz-workers: build-fuzz/fuzz_backends_workers
	mkdir -p build-fuzz/corpus-workers
	build-fuzz/fuzz_backends_workers -max_total_time=$(FUZZ_SECONDS) -max_len=8192 build-fuzz/corpus-workers
build-fuzz/fuzz_backends_workers: tests/fuzz/fuzz_backends_workers.c backends/worker_json.c \
	util/err.c util/str.c
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. $(shell pkg-config --cflags libcjson) \
		-fsanitize=fuzzer,address,undefined -o $@ $^ $(shell pkg-config --libs libcjson) -lm
.PHONY: fuzz-workers
