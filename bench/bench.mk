# bench/bench.mk: `make bench` (included by the top Makefile). Builds the bench programs against the
# project's wolfSSL (build/wolfssl) and Debian's OpenSSL, then runs bench/run.py, which writes
# bench/results.md and the plots (bench/results*.png). BENCH_QUICK=1: 128 MiB transfers and fewer runs (< 8 min).
BENCH_BIN  = $(BUILD)/bench
BENCH_CC   = $(CC) -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wno-unused-parameter -Ibench
BENCH_WOLF = -I$(BUILD)/wolfssl/include
BENCH_PROGS = $(BENCH_BIN)/client $(BENCH_BIN)/server $(BENCH_BIN)/wolfclient $(BENCH_BIN)/osslclient \
              $(BENCH_BIN)/passthru $(BENCH_BIN)/scale

.PHONY: bench bench-build bench-deps
bench-deps:
	bash bench/install-deps.sh

bench-build: $(BENCH_PROGS)

$(BENCH_BIN)/client: bench/client.c bench/common.h
	@mkdir -p $(dir $@)
	$(BENCH_CC) -o $@ bench/client.c

$(BENCH_BIN)/passthru: bench/passthru.c bench/common.h
	@mkdir -p $(dir $@)
	$(BENCH_CC) -o $@ bench/passthru.c

$(BENCH_BIN)/scale: bench/scale.c bench/common.h
	@mkdir -p $(dir $@)
	$(BENCH_CC) -o $@ bench/scale.c -lpthread

$(BENCH_BIN)/server: bench/server.c bench/common.h $(BUILD)/wolfssl/lib/libwolfssl.a
	@mkdir -p $(dir $@)
	$(BENCH_CC) $(BENCH_WOLF) -o $@ bench/server.c $(BUILD)/wolfssl/lib/libwolfssl.a -lm -lpthread

$(BENCH_BIN)/wolfclient: bench/tlsclient.c bench/common.h $(BUILD)/wolfssl/lib/libwolfssl.a
	@mkdir -p $(dir $@)
	$(BENCH_CC) $(BENCH_WOLF) -DBENCH_WOLFSSL -o $@ bench/tlsclient.c $(BUILD)/wolfssl/lib/libwolfssl.a -lm -lpthread

$(BENCH_BIN)/osslclient: bench/tlsclient.c bench/common.h
	@mkdir -p $(dir $@)
	$(BENCH_CC) -DBENCH_OPENSSL -o $@ bench/tlsclient.c -lssl -lcrypto

bench: bench-deps $(BUILD)/libtlsshim.so
	$(MAKE) --no-print-directory bench-build
	python3 bench/run.py --build $(BUILD)

# Profile of the shim (perf + callgrind) into bench/results/ (not committed): see bench/README.md.
.PHONY: bench-profile
bench-profile: bench-deps $(BUILD)/libtlsshim.so
	$(MAKE) --no-print-directory bench-build
	bash bench/profile.sh $(BUILD) bench/results
