# tlsshim build. `make` builds build/libtlsshim.so and build/tlsshim (and the wolfSSL they link, once).
# `make WOLFSSL=system` links Debian's libwolfssl with Debian's headers instead.
BUILD    ?= build
WOLFSSL  ?= static
CC       ?= gcc
CFLAGS   ?= -O2 -g
WARN      = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
# The version is written in one place: the first line of debian/changelog (without the Debian revision).
VERSION  := $(shell sed -n '1s/^[^(]*(\([^)-]*\)[-)].*/\1/p' debian/changelog)
# The multiarch triplet names the packaged library's directory, /usr/lib/$(MULTIARCH)/tlsshim.
MULTIARCH ?= $(shell $(CC) -print-multiarch 2>/dev/null)
BASEFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden -I. $(WARN)

ifeq ($(WOLFSSL),system)
  WOLF_CFLAGS = -DTLSSHIM_WOLFSSL_SYSTEM
  WOLF_LIBS   = -lwolfssl
  WOLF_DEP    = /usr/include/wolfssl/options.h
  WOLF_DESC   = system
else
  WOLF_DIR    = $(BUILD)/wolfssl
  WOLF_CFLAGS = -I$(WOLF_DIR)/include
  WOLF_LIBS   = $(WOLF_DIR)/lib/libwolfssl.a -lm
  WOLF_DEP    = $(WOLF_DIR)/lib/libwolfssl.a
  WOLF_DESC   = static
  # preload/wolf_quiet.c: no message formatted for wolfSSL's would-block errors.
  WOLF_SO_LDFLAGS = -Wl,--wrap=WOLFSSL_ERROR_LINE
endif

POLICY_SRC  = $(wildcard policy/*.c)
PRELOAD_SRC = $(wildcard preload/*.c)
TOOLS_SRC   = $(wildcard tools/*.c)
# The pieces of preload/ the CLI reuses (the same TLS setup the library applies).
# `probe` runs the dialogue engine (dialogue.c, dlg_*.c); tools/probe_dialogue.c gives it its I/O.
SHARED_SRC  = preload/tlsctx.c preload/tlsctx_server.c preload/tlsctx_selftest.c preload/verify.c preload/chain.c preload/der.c preload/log.c preload/ownfd.c preload/peer.c \
              preload/dialogue.c preload/dlg_mail.c preload/dlg_db.c preload/dlg_proxy.c preload/dlg_parse.c

OBJ = $(BUILD)/obj
policy_objs  = $(POLICY_SRC:%.c=$(OBJ)/%.o)
preload_objs = $(PRELOAD_SRC:%.c=$(OBJ)/%.o)
tools_objs   = $(TOOLS_SRC:%.c=$(OBJ)/%.o) $(SHARED_SRC:%.c=$(OBJ)/cli/%.o)

.PHONY: deb test-binaries deps compat all check check-fresh unit integration demo asan valgrind fuzz bench clean format install
all: $(BUILD)/libtlsshim.so $(BUILD)/tlsshim

/usr/include/wolfssl/options.h:
	bash scripts/install-deps.sh
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libwolfssl-dev >/dev/null

$(WOLF_DIR)/lib/libwolfssl.a: scripts/build-wolfssl.sh
	bash scripts/build-wolfssl.sh $(patsubst %/wolfssl,%,$(WOLF_DIR))
	touch $@

$(OBJ)/%.o: %.c $(WOLF_DEP) $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(WOLF_CFLAGS) $(TOOL_DEFS) $(CFLAGS) $(EXTRA_CFLAGS) -MMD -MP -c $< -o $@

# Only the command needs the version and where the packaged library lives.
$(OBJ)/tools/%.o: TOOL_DEFS = -DTLSSHIM_VERSION='"$(VERSION)"' -DTLSSHIM_MULTIARCH='"$(MULTIARCH)"'
$(OBJ)/tools/cmd_version.o $(OBJ)/tools/cli.o: debian/changelog

$(OBJ)/cli/%.o: %.c $(WOLF_DEP) $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(WOLF_CFLAGS) -DTLSSHIM_CLI $(CFLAGS) $(EXTRA_CFLAGS) -MMD -MP -c $< -o $@

# Only the hooks are exported (preload/exports.map); wolfSSL stays inside, hidden.
$(BUILD)/libtlsshim.so: $(preload_objs) $(policy_objs) $(WOLF_DEP) preload/exports.map
	$(CC) -shared -o $@ $(preload_objs) $(policy_objs) $(WOLF_LIBS) -ldl -lpthread \
	  -Wl,--version-script=preload/exports.map -Wl,--exclude-libs,ALL -Wl,-z,now -Wl,-z,relro -Wl,-z,defs $(WOLF_SO_LDFLAGS) $(LDFLAGS)

$(BUILD)/tlsshim: $(tools_objs) $(policy_objs) $(WOLF_DEP)
	$(CC) -o $@ $(tools_objs) $(policy_objs) $(WOLF_LIBS) -lpthread $(LDFLAGS)

# ---- tests ----
UNIT_SRC = $(wildcard tests/unit/*.c)
UNIT_PRELOAD = preload/fdtab.c preload/forkgate.c preload/names.c preload/choose.c preload/verify.c preload/chain.c preload/der.c preload/dlg_parse.c
$(BUILD)/unit-tests: $(UNIT_SRC) $(POLICY_SRC) $(UNIT_PRELOAD) $(wildcard */*.h) $(WOLF_DEP)
	$(CC) $(BASEFLAGS) $(WOLF_CFLAGS) $(CFLAGS) -DTLSSHIM_UNIT_TEST -o $@ $(UNIT_SRC) $(POLICY_SRC) $(UNIT_PRELOAD) \
	  -lcriterion $(WOLF_LIBS) -lpthread

CLIENT_SRC = $(wildcard tests/clients/*.c)
CLIENTS = $(CLIENT_SRC:tests/clients/%.c=$(BUILD)/clients/%)
CLIENT_HDR = tests/integration/clientlib.h tests/clients/ev_common.h
# The test clients are always built with gcc, also under `make asan` (CC=clang): Debian 12's glibc
# fortifies (iovclient's __read_chk) only under gcc. They are the programs the shim is loaded into.
CLIENT_CC ?= gcc
$(BUILD)/clients/%: tests/clients/%.c $(CLIENT_HDR)
	@mkdir -p $(dir $@)
	$(CLIENT_CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o $@ $< -lpthread

test-binaries: $(BUILD)/unit-tests $(CLIENTS)

deps:
	bash scripts/install-deps.sh

unit: deps $(BUILD)/unit-tests
	$(BUILD)/unit-tests --jobs 2

check: deps all $(BUILD)/unit-tests $(CLIENTS)
	bash tests/run-all.sh $(BUILD)

# The Debian package (scripts/make-deb.sh): build/deb/tlsshim_VERSION_ARCH.deb, checked with lintian.
deb:
	bash scripts/make-deb.sh $(BUILD)

demo: deps all
	bash scripts/demo.sh $(BUILD)

# The sanitizer runtime's directory, so the sanitized CLI and test binaries find it at run time.
ASAN_RT_DIR = $(shell dirname $$(clang -print-file-name=libclang_rt.asan-x86_64.so 2>/dev/null) 2>/dev/null)

asan: deps
	$(MAKE) BUILD=build/asan CC=clang CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
	  LDFLAGS="-fsanitize=address,undefined -shared-libsan -Wl,-rpath,$(ASAN_RT_DIR)" WOLF_DIR=build/wolfssl all test-binaries
	TLSSHIM_ASAN=1 TLSSHIM_TESTS="$(ASAN_GATE)" bash tests/run-all.sh build/asan

# The files `make asan` runs (words matched against tests/integration/test_*.sh; README, "Tests"): the
# C clients, the leak tests and the event-loop, thread and process tests. Left out, by construction:
# cli and exports (they test the installed, self-contained binaries: a sanitized build needs the
# sanitizer runtime and libstdc++), compat (curl, wget, node and the JVM under the ASan runtime; the
# container case needs one self-contained .so), hostile (its setuid cases preload the library without
# the ASan runtime; the parser it stresses runs under ASan+UBSan in the fuzz targets), fuzz (the
# libFuzzer targets are sanitized builds already and run in `make check`).
ASAN_GATE = basic errors verify versions logging sni_alpn policy early harness noplaintext matrix \
	eventloop threads process leak_ names readiness epoll

# The README's two commands (make demo, make check) on a fresh Debian 12 minbase root made by debootstrap
# (cached under build/fresh-rootfs), from a clone of the committed tree (HEAD). Needs root and the
# Debian archive; for developers before they stop, not for .ci/run.
check-fresh:
	bash scripts/check-fresh.sh $(BUILD)

compat: deps all test-binaries
	TLSSHIM_WRITE_COMPAT=1 bash tests/integration/test_compat.sh $(BUILD)

valgrind: all $(CLIENTS)
	TLSSHIM_VALGRIND=1 bash tests/integration/valgrind.sh $(BUILD)

format:
	clang-format -i $(POLICY_SRC) $(PRELOAD_SRC) $(TOOLS_SRC) $(wildcard */*.h) $(UNIT_SRC) $(CLIENT_SRC)

clean:
	rm -rf $(BUILD)/obj $(BUILD)/libtlsshim.so $(BUILD)/tlsshim $(BUILD)/unit-tests $(BUILD)/clients

# Fragments owned by their directories: fuzz targets, the CLI's install rules, benchmarks.
-include tests/fuzz/fuzz.mk tools/tools.mk bench/bench.mk

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)
