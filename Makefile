# libzinv - GNU make, no autotools.
#
#   make            build the libraries
#   make demo       build everything and run the POS demo
#   make check      build and run every test
#   make check-asan the suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make install    PREFIX, DESTDIR, LIBDIR, INCLUDEDIR, MANDIR honoured
#
# Objects and test programs go to $(BUILDDIR); the libraries to $(LIBOUT)
# (lib/ for the default build, so that lib/libzinv.so.1.0.0 is where the
# README says).  Sanitizer builds use their own BUILDDIR and LIBOUT.

VERSION_H := include/zinv/version.h
MAJOR := $(shell sed -n 's/^\#define INV_VERSION_MAJOR \([0-9]*\)$$/\1/p' $(VERSION_H))
MINOR := $(shell sed -n 's/^\#define INV_VERSION_MINOR \([0-9]*\)$$/\1/p' $(VERSION_H))
PATCH := $(shell sed -n 's/^\#define INV_VERSION_PATCH \([0-9]*\)$$/\1/p' $(VERSION_H))
VERSION := $(MAJOR).$(MINOR).$(PATCH)

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR ?=

CC ?= cc
CFLAGS ?= -O2 -g
LDFLAGS ?=
BUILDDIR ?= build
LIBOUT ?= lib

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wpointer-arith -Wformat=2 -Wvla -Wundef
ifeq ($(WERROR),1)
WARN += -Werror
endif

PKG_CONFIG ?= pkg-config
DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags jansson uuid 2>/dev/null)
DEP_LIBS := $(shell $(PKG_CONFIG) --libs jansson uuid 2>/dev/null || echo -ljansson -luuid)
CHECK_CFLAGS := $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS := $(shell $(PKG_CONFIG) --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt -lpthread)
SQLITE_LIBS := $(shell $(PKG_CONFIG) --libs sqlite3 2>/dev/null || echo -lsqlite3)
MHD_LIBS := $(shell $(PKG_CONFIG) --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)

# Internal code is C11; public headers are C99 (check-headers proves it).
ALL_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude -Ilib $(WARN) $(CFLAGS) $(DEP_CFLAGS)
LIB_CFLAGS := $(ALL_CFLAGS) -fPIC -fvisibility=hidden -DINV_BUILDING_LIBRARY -pthread

# ---------------------------------------------------------------- libzinv
SONAME := libzinv.so.$(MAJOR)
LIB_SRCS := $(filter-out lib/sqlite%.c,$(wildcard lib/*.c))
LIB_OBJS := $(LIB_SRCS:lib/%.c=$(BUILDDIR)/lib/%.o)
SHLIB := $(LIBOUT)/libzinv.so.$(VERSION)
STLIB := $(LIBOUT)/libzinv.a

# ---------------------------------------------------------- libzinv-sqlite
SQLITE_SONAME := libzinv-sqlite.so.$(MAJOR)
SQLITE_SRCS := $(wildcard lib/sqlite*.c)
SQLITE_OBJS := $(SQLITE_SRCS:lib/%.c=$(BUILDDIR)/lib/%.o)
SQLITE_SHLIB := $(LIBOUT)/libzinv-sqlite.so.$(VERSION)
SQLITE_STLIB := $(LIBOUT)/libzinv-sqlite.a

LIBS_ALL := $(SHLIB) $(STLIB)
PC_ALL := pkgconfig/zinv.pc
ifneq ($(SQLITE_SRCS),)
LIBS_ALL += $(SQLITE_SHLIB) $(SQLITE_STLIB)
PC_ALL += pkgconfig/zinv-sqlite.pc
endif
# The backend headers install with their own library, not with libzinv.
SQLITE_HEADERS := include/zinv/sqlite.h
CORE_HEADERS := $(filter-out $(SQLITE_HEADERS),$(wildcard include/zinv/*.h))

.PHONY: all deps demo check check-unit check-asan check-valgrind check-tsan \
        check-crash install uninstall clean
all: $(LIBS_ALL) $(PC_ALL)

$(BUILDDIR)/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) -MMD -MP -c -o $@ $<

$(SHLIB): $(LIB_OBJS) lib/libzinv.map
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=lib/libzinv.map \
	    -Wl,--no-undefined $(CFLAGS) $(LDFLAGS) -o $@ $(LIB_OBJS) $(DEP_LIBS) -pthread
	ln -sf libzinv.so.$(VERSION) $(LIBOUT)/$(SONAME)
	ln -sf $(SONAME) $(LIBOUT)/libzinv.so

$(STLIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

$(SQLITE_SHLIB): $(SQLITE_OBJS) lib/libzinv-sqlite.map $(SHLIB)
	$(CC) -shared -Wl,-soname,$(SQLITE_SONAME) -Wl,--version-script=lib/libzinv-sqlite.map \
	    -Wl,--no-undefined $(CFLAGS) $(LDFLAGS) -o $@ $(SQLITE_OBJS) \
	    -L$(LIBOUT) -lzinv $(SQLITE_LIBS) $(DEP_LIBS) -pthread
	ln -sf libzinv-sqlite.so.$(VERSION) $(LIBOUT)/$(SQLITE_SONAME)
	ln -sf $(SQLITE_SONAME) $(LIBOUT)/libzinv-sqlite.so

$(SQLITE_STLIB): $(SQLITE_OBJS)
	rm -f $@ && $(AR) rcs $@ $^

pkgconfig/%.pc: pkgconfig/%.pc.in $(VERSION_H)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

# ------------------------------------------------------------------ tests
# tests/check_<module>.c: one Check program per module.  Every other
# tests/*.c is shared support (conformance suite, fault wrapper, helpers)
# linked into each program.  check_sqlite*.c also link libzinv-sqlite.
TEST_SRCS := $(wildcard tests/check_*.c)
TEST_SUPPORT_SRCS := $(filter-out $(TEST_SRCS),$(wildcard tests/*.c))
TEST_SUPPORT_OBJS := $(TEST_SUPPORT_SRCS:tests/%.c=$(BUILDDIR)/tests/%.o)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILDDIR)/tests/%)
TEST_CFLAGS := $(ALL_CFLAGS) $(CHECK_CFLAGS) -Itests -pthread
TEST_LDLIBS = -L$(LIBOUT) -Wl,-rpath,$(abspath $(LIBOUT)) $(if $(findstring check_sqlite,$@),-lzinv-sqlite $(SQLITE_LIBS)) \
              -lzinv $(DEP_LIBS) $(CHECK_LIBS) -pthread

$(BUILDDIR)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILDDIR)/tests/check_%: $(BUILDDIR)/tests/check_%.o $(TEST_SUPPORT_OBJS) $(LIBS_ALL)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(TEST_SUPPORT_OBJS) $(TEST_LDLIBS)

# Check forks each test by default; CK_FORK=no makes one debuggable in gdb.
check-unit: $(TEST_BINS)
	@set -e; for t in $(TEST_BINS); do echo "== $$t"; $(TEST_ENV) $$t; done

check: deps
	$(MAKE) all
	$(MAKE) check-unit
	$(MAKE) bench-smoke

# The SQLite crash test with ten times the kills of `make check`.
CRASH_KILLS ?= 500
check-crash: all $(BUILDDIR)/tests/check_sqlite_crash
	CRASH_KILLS=$(CRASH_KILLS) $(BUILDDIR)/tests/check_sqlite_crash

SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
check-asan: deps
	$(MAKE) BUILDDIR=build/asan LIBOUT=build/asan/lib CFLAGS="$(SAN_FLAGS)" \
	    LDFLAGS="-fsanitize=address,undefined" \
	    TEST_ENV="ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1" \
	    check-unit

check-tsan: deps
	$(MAKE) BUILDDIR=build/tsan LIBOUT=build/tsan/lib CFLAGS="-O1 -g -fsanitize=thread" \
	    LDFLAGS="-fsanitize=thread" TEST_ENV="TSAN_OPTIONS=halt_on_error=1" \
	    $(BUILDDIR)/../build/tsan/tests/check_threads
	TSAN_OPTIONS=halt_on_error=1 CK_FORK=no build/tsan/tests/check_threads

check-valgrind: deps
	$(MAKE) all $(TEST_BINS)
	@set -e; for t in $(TEST_BINS); do echo "== valgrind $$t"; \
	    CK_FORK=no valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible \
	        --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=1 $$t; done

# ------------------------------------------------------------------ bench
# Benchmarks never run inside `make check` and never assert timings: check
# only builds them and runs each case once at tiny size (bench-smoke).
#   make bench            the full run (~5 min on 2 cores): a table on stdout
#                         and bench-results.json; BENCH_FLAGS passes flags
#                         (sizes: build/bench/zinv-bench --help, or the
#                         ZINV_BENCH_* environment variables)
#   make bench-callgrind  instructions per change of the batch-1,000 memory
#                         and codec cases under callgrind (stable when
#                         seconds are not)
#   make bench-smoke      every case once at tiny size
# zinv-bench is tests/bench/zinv-bench.c plus tests/bench/zb_*.c.  Until a
# piece it measures has landed, its libzinv column reads "-".
.PHONY: bench bench-callgrind bench-smoke
BENCH_DIR := $(BUILDDIR)/bench
BENCH_SRCS := tests/bench/zinv-bench.c $(wildcard tests/bench/zb_*.c)
BENCH_OBJS := $(BENCH_SRCS:tests/bench/%.c=$(BENCH_DIR)/%.o)
BENCH_BIN := $(BENCH_DIR)/zinv-bench
BENCH_HAVE := $(if $(wildcard lib/apply.c),-DZB_HAVE_CORE \
                  $(if $(wildcard include/zinv/sqlite.h),-DZB_HAVE_SQLITE))
BENCH_CFLAGS := $(ALL_CFLAGS) -Itests/bench $(BENCH_HAVE)
BENCH_LDLIBS := -L$(LIBOUT) -Wl,-rpath,$(abspath $(LIBOUT)) \
                $(if $(SQLITE_SRCS),-lzinv-sqlite) -lzinv \
                $(SQLITE_LIBS) $(DEP_LIBS) -pthread
BENCH_FLAGS ?=

$(BENCH_DIR)/%.o: tests/bench/%.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -MMD -MP -c -o $@ $<

$(BENCH_BIN): $(BENCH_OBJS) $(LIBS_ALL)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(BENCH_OBJS) $(BENCH_LDLIBS)

bench: $(BENCH_BIN)
	$(BENCH_BIN) $(BENCH_FLAGS)

bench-smoke: $(BENCH_BIN)
	$(BENCH_BIN) --smoke --json $(BENCH_DIR)/smoke-results.json >$(BENCH_DIR)/smoke.log \
	    || { cat $(BENCH_DIR)/smoke.log; exit 1; }
	@echo "bench-smoke: every case ran once (log: $(BENCH_DIR)/smoke.log)"

bench-callgrind: $(BENCH_BIN)
	rm -f $(BENCH_DIR)/callgrind.out*
	valgrind --tool=callgrind --collect-atstart=no \
	    --callgrind-out-file=$(BENCH_DIR)/callgrind.out \
	    $(BENCH_BIN) --callgrind --only memory,codec --batches 1000 \
	    --mem-moves 200000 --codec-reps 5 --json $(BENCH_DIR)/callgrind-results.json \
	    >$(BENCH_DIR)/callgrind.log
	@sh tests/bench/callgrind-summary.sh $(BENCH_DIR)/callgrind.out
	@echo "per-function profiles: callgrind_annotate $(BENCH_DIR)/callgrind.out.<n>"

# Installs the Debian packages the build needs when run as root, otherwise
# prints the exact command.
deps:
	@sh .ci/deps

# ---------------------------------------------------------------- install
install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/zinv $(DESTDIR)$(PKGCONFIGDIR) \
	    $(DESTDIR)$(MANDIR)/man3
	install -m 644 include/zinv.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(CORE_HEADERS) $(DESTDIR)$(INCLUDEDIR)/zinv/
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libzinv.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libzinv.so
	install -m 644 $(STLIB) $(DESTDIR)$(LIBDIR)/
	install -m 644 pkgconfig/zinv.pc $(DESTDIR)$(PKGCONFIGDIR)/
ifneq ($(SQLITE_SRCS),)
	install -m 644 $(SQLITE_HEADERS) $(DESTDIR)$(INCLUDEDIR)/zinv/
	install -m 755 $(SQLITE_SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libzinv-sqlite.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SQLITE_SONAME)
	ln -sf $(SQLITE_SONAME) $(DESTDIR)$(LIBDIR)/libzinv-sqlite.so
	install -m 644 $(SQLITE_STLIB) $(DESTDIR)$(LIBDIR)/
	install -m 644 pkgconfig/zinv-sqlite.pc $(DESTDIR)$(PKGCONFIGDIR)/
endif
	if ls man/man3/*.3 >/dev/null 2>&1; then install -m 644 man/man3/*.3 $(DESTDIR)$(MANDIR)/man3/; fi

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/zinv.h
	rm -rf $(DESTDIR)$(INCLUDEDIR)/zinv
	rm -f $(DESTDIR)$(LIBDIR)/libzinv.so* $(DESTDIR)$(LIBDIR)/libzinv.a
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/zinv.pc
	rm -f $(DESTDIR)$(LIBDIR)/libzinv-sqlite.so* $(DESTDIR)$(LIBDIR)/libzinv-sqlite.a
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/zinv-sqlite.pc
	for f in man/man3/*.3; do rm -f $(DESTDIR)$(MANDIR)/man3/$$(basename $$f); done

clean:
	rm -rf build lib/*.so lib/*.so.* lib/*.a pkgconfig/*.pc bench-results.json

-include $(LIB_OBJS:.o=.d) $(SQLITE_OBJS:.o=.d) $(TEST_SUPPORT_OBJS:.o=.d) $(TEST_BINS:=.d) \
         $(BENCH_OBJS:.o=.d)
