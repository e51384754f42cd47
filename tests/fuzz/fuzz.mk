# tests/fuzz/fuzz.mk: libFuzzer targets for policy/ and for the dialogue reply parsers
# (preload/dlg_parse.c), included by the top-level Makefile.
#   make fuzz-build                 builds $(BUILD)/fuzz/fuzz_<target> for every target below
#   make fuzz [FUZZ_SECONDS=30]     builds them and runs each for FUZZ_SECONDS; fails on any crash,
#                                   leak, UB report, timeout or invariant failure
# Seeds come from tests/fuzz/corpus/<target>/ (read only); new inputs go to $(BUILD)/fuzz/corpus/<target>/
# and crash reproducers to $(BUILD)/fuzz/<target>-crash-*. Reproduce one with
#   $(BUILD)/fuzz/fuzz_policy_parse $(BUILD)/fuzz/policy_parse-crash-...
BUILD        ?= build
FUZZ_SECONDS ?= 30
FUZZ_MAX_LEN ?= 8192
FUZZ_CC      ?= clang
FUZZ_CFLAGS  ?= -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_WARN     = -std=c11 -D_GNU_SOURCE -I. -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
FUZZ_TARGETS  = policy_parse policy_match serve_allow
# The dialogue parsers (starttls=, proxy=): each target links preload/dlg_parse.c alone.
FUZZ_DLG      = dlg_smtp dlg_imap dlg_pop3 dlg_postgres dlg_ldap dlg_http dlg_socks5
FUZZ_TARGETS += $(FUZZ_DLG)
FUZZ_BINS     = $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)
FUZZ_POLICY   = $(wildcard policy/*.c)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

$(BUILD)/fuzz/fuzz_dlg_%: tests/fuzz/fuzz_dlg_%.c preload/dlg_parse.c preload/dlg_parse.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_WARN) $(FUZZ_CFLAGS) -o $@ $< preload/dlg_parse.c

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_POLICY) $(wildcard policy/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_WARN) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_POLICY)

fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(BUILD)/fuzz/corpus/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -timeout=10 \
	    $$(test -f tests/fuzz/$$t.dict && echo -dict=tests/fuzz/$$t.dict || \
	       case $$t in policy_*) echo -dict=tests/fuzz/policy.dict;; esac) -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/$$t- \
	    $(BUILD)/fuzz/corpus/$$t tests/fuzz/corpus/$$t; \
	done
