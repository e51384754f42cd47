# tools/tools.mk: included by the Makefile. Installs the `tlsshim` command, the library it preloads
# and the man pages; checks the man pages render.
#   make install [PREFIX=/usr/local] [DESTDIR=/staging]
#   make uninstall [PREFIX=...] [DESTDIR=...]
# The command finds the library "beside" itself: $(bindir)/libtlsshim.so (the build tree), then
# $(bindir)/../lib/tlsshim/libtlsshim.so (an installed tree), then $(bindir)/../lib/MULTIARCH/tlsshim/
# (the Debian package, which sets TLSSHIM_LIBDIR), so bin/ and lib/ must share a prefix. The man pages
# get the version from debian/changelog.
PREFIX  ?= /usr/local
DESTDIR ?=
INSTALL ?= install
TLSSHIM_BINDIR = $(DESTDIR)$(PREFIX)/bin
TLSSHIM_LIBDIR ?= $(DESTDIR)$(PREFIX)/lib/tlsshim
TLSSHIM_MANDIR = $(DESTDIR)$(PREFIX)/share/man
TLSSHIM_MAN1   = tools/man/tlsshim.1
TLSSHIM_MAN5   = tools/man/tlsshim-policy.5

.PHONY: install uninstall man-check

install: $(BUILD)/libtlsshim.so $(BUILD)/tlsshim $(TLSSHIM_MAN1) $(TLSSHIM_MAN5)
	$(INSTALL) -d $(TLSSHIM_BINDIR) $(TLSSHIM_LIBDIR) $(TLSSHIM_MANDIR)/man1 $(TLSSHIM_MANDIR)/man5
	$(INSTALL) -m 0755 $(BUILD)/tlsshim $(TLSSHIM_BINDIR)/tlsshim
	$(INSTALL) -m 0644 $(BUILD)/libtlsshim.so $(TLSSHIM_LIBDIR)/libtlsshim.so
	sed 's/"tlsshim [0-9][^"]*"/"tlsshim $(VERSION)"/' $(TLSSHIM_MAN1) >$(TLSSHIM_MANDIR)/man1/tlsshim.1
	sed 's/"tlsshim [0-9][^"]*"/"tlsshim $(VERSION)"/' $(TLSSHIM_MAN5) >$(TLSSHIM_MANDIR)/man5/tlsshim-policy.5
	chmod 0644 $(TLSSHIM_MANDIR)/man1/tlsshim.1 $(TLSSHIM_MANDIR)/man5/tlsshim-policy.5

uninstall:
	rm -f $(TLSSHIM_BINDIR)/tlsshim $(TLSSHIM_LIBDIR)/libtlsshim.so \
	  $(TLSSHIM_MANDIR)/man1/tlsshim.1 $(TLSSHIM_MANDIR)/man5/tlsshim-policy.5
	-rmdir $(TLSSHIM_LIBDIR) 2>/dev/null

# Renders both pages and fails on groff warnings (bad macros, unknown escapes).
man-check: $(TLSSHIM_MAN1) $(TLSSHIM_MAN5)
	@for m in $^; do \
	  out=$$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l $$m 2>&1 >/dev/null); \
	  if [ -n "$$out" ]; then echo "$$m: $$out"; exit 1; fi; \
	done; echo "man pages render cleanly"
