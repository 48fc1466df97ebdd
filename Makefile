# libzinv - GNU make, no autotools.
#
#   make            build the libraries
#   make demo       build everything and run the POS demo
#   make check      build and run every test
#   make check-asan the suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make install    PREFIX, DESTDIR, LIBDIR, INCLUDEDIR, MANDIR honoured
#
# Sources: lib/*.c is libzinv; lib/sqlite/ (and each other lib/<backend>/)
# holds one backend library's source, internal header and version script.
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
PG_CFLAGS := $(shell $(PKG_CONFIG) --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
PG_LIBS := $(shell $(PKG_CONFIG) --libs libpq 2>/dev/null || echo -lpq)
WEBHOOK_LIBS := $(shell $(PKG_CONFIG) --libs libcurl libcrypto 2>/dev/null || echo -lcurl -lcrypto)

# Internal code is C11; public headers are C99 (check-headers proves it).
ALL_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude -Ilib $(WARN) $(CFLAGS) $(DEP_CFLAGS)
LIB_CFLAGS := $(ALL_CFLAGS) -fPIC -fvisibility=hidden -DINV_BUILDING_LIBRARY -pthread

# ---------------------------------------------------------------- libzinv
SONAME := libzinv.so.$(MAJOR)
LIB_SRCS := $(wildcard lib/*.c)
LIB_OBJS := $(LIB_SRCS:lib/%.c=$(BUILDDIR)/lib/%.o)
SHLIB := $(LIBOUT)/libzinv.so.$(VERSION)
STLIB := $(LIBOUT)/libzinv.a

# ---------------------------------------------------------- libzinv-sqlite
SQLITE_SONAME := libzinv-sqlite.so.$(MAJOR)
SQLITE_SRCS := $(wildcard lib/sqlite/*.c)
SQLITE_OBJS := $(SQLITE_SRCS:lib/%.c=$(BUILDDIR)/lib/%.o)
SQLITE_SHLIB := $(LIBOUT)/libzinv-sqlite.so.$(VERSION)
SQLITE_STLIB := $(LIBOUT)/libzinv-sqlite.a

# -------------------------------------------------------- libzinv-postgres
PG_SONAME := libzinv-postgres.so.$(MAJOR)
PG_SRCS := $(wildcard lib/postgres/*.c)
PG_OBJS := $(PG_SRCS:lib/%.c=$(BUILDDIR)/lib/%.o)
PG_SHLIB := $(LIBOUT)/libzinv-postgres.so.$(VERSION)
PG_STLIB := $(LIBOUT)/libzinv-postgres.a

# Public headers: each backend's goes with its library, all others with
# libzinv.
SQLITE_HEADERS := include/zinv/sqlite.h
PG_HEADERS := include/zinv/postgres.h
LIBZINV_HEADERS := $(filter-out $(SQLITE_HEADERS) $(PG_HEADERS),$(wildcard include/zinv/*.h))

LIBS_ALL := $(SHLIB) $(STLIB)
PC_FILES := pkgconfig/zinv.pc
ifneq ($(SQLITE_SRCS),)
LIBS_ALL += $(SQLITE_SHLIB) $(SQLITE_STLIB)
PC_FILES += pkgconfig/zinv-sqlite.pc
endif
ifneq ($(PG_SRCS),)
LIBS_ALL += $(PG_SHLIB) $(PG_STLIB)
PC_FILES += pkgconfig/zinv-postgres.pc
endif

.PHONY: all deps demo check check-unit check-asan check-valgrind check-tsan \
        check-crash install uninstall clean fuzz check-install check-abi check-exports \
        check-map check-headers check-soname abi-check abi-dump check-man check-compat
all: $(LIBS_ALL) $(PC_FILES)

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

$(SQLITE_SHLIB): $(SQLITE_OBJS) lib/sqlite/libzinv-sqlite.map $(SHLIB)
	$(CC) -shared -Wl,-soname,$(SQLITE_SONAME) -Wl,--version-script=lib/sqlite/libzinv-sqlite.map \
	    -Wl,--no-undefined $(CFLAGS) $(LDFLAGS) -o $@ $(SQLITE_OBJS) \
	    -L$(LIBOUT) -lzinv $(SQLITE_LIBS) $(DEP_LIBS) -pthread
	ln -sf libzinv-sqlite.so.$(VERSION) $(LIBOUT)/$(SQLITE_SONAME)
	ln -sf $(SQLITE_SONAME) $(LIBOUT)/libzinv-sqlite.so

$(SQLITE_STLIB): $(SQLITE_OBJS)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILDDIR)/lib/postgres/%.o: lib/postgres/%.c
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) $(PG_CFLAGS) -MMD -MP -c -o $@ $<

$(PG_SHLIB): $(PG_OBJS) lib/postgres/libzinv-postgres.map $(SHLIB)
	$(CC) -shared -Wl,-soname,$(PG_SONAME) -Wl,--version-script=lib/postgres/libzinv-postgres.map \
	    -Wl,--no-undefined $(CFLAGS) $(LDFLAGS) -o $@ $(PG_OBJS) \
	    -L$(LIBOUT) -lzinv $(PG_LIBS) $(DEP_LIBS) -pthread
	ln -sf libzinv-postgres.so.$(VERSION) $(LIBOUT)/$(PG_SONAME)
	ln -sf $(PG_SONAME) $(LIBOUT)/libzinv-postgres.so

$(PG_STLIB): $(PG_OBJS)
	rm -f $@ && $(AR) rcs $@ $^

pkgconfig/%.pc: pkgconfig/%.pc.in $(VERSION_H)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

# ------------------------------------------------------------------ tests
# tests/check_<module>.c: one Check program per module.  Every other
# tests/*.c is shared support (conformance suite, fault wrapper, helpers)
# linked into each program.  check_sqlite*.c also link libzinv-sqlite;
# check_handles.c links libzinv.a, whose internals it reads.
TEST_SRCS := $(wildcard tests/check_*.c)
TEST_SUPPORT_SRCS := $(filter-out $(TEST_SRCS),$(wildcard tests/*.c))
TEST_SUPPORT_OBJS := $(TEST_SUPPORT_SRCS:tests/%.c=$(BUILDDIR)/tests/%.o)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILDDIR)/tests/%)
TEST_CFLAGS := $(ALL_CFLAGS) $(CHECK_CFLAGS) $(PG_CFLAGS) -Itests -pthread
TEST_LDLIBS = -L$(LIBOUT) -Wl,-rpath,$(abspath $(LIBOUT)) $(if $(findstring check_sqlite,$@),-lzinv-sqlite $(SQLITE_LIBS)) \
              $(if $(findstring check_postgres,$@),-lzinv-postgres $(PG_LIBS)) \
              $(if $(findstring check_handles,$@),$(STLIB)) -lzinv $(DEP_LIBS) $(CHECK_LIBS) -pthread

$(BUILDDIR)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -MMD -MP -c -o $@ $<

# Keep the objects of the test programs: make would delete them as
# intermediates and rebuild them on every run.
.SECONDARY: $(TEST_BINS:=.o) $(TEST_SUPPORT_OBJS)

$(BUILDDIR)/tests/check_%: $(BUILDDIR)/tests/check_%.o $(TEST_SUPPORT_OBJS) $(LIBS_ALL)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(TEST_SUPPORT_OBJS) $(TEST_LDLIBS)

# Check forks each test by default; CK_FORK=no makes one debuggable in gdb.
# The PostgreSQL tests run under a throwaway cluster (tests/pg/with-cluster.sh).
PG_CLUSTER := sh tests/pg/with-cluster.sh
check-unit: $(TEST_BINS)
	@set -e; for t in $(TEST_BINS); do echo "== $$t"; \
	    case $$t in *check_postgres*) $(TEST_ENV) $(PG_CLUSTER) $$t;; *) $(TEST_ENV) $$t;; esac; done

check: deps
	$(MAKE) all
	$(MAKE) check-unit
	$(MAKE) check-abi
	$(MAKE) check-install
	$(MAKE) check-examples
	$(MAKE) sim-smoke
	$(MAKE) bench-smoke

# The SQLite and PostgreSQL crash tests with ten times the kills of `make check`.
CRASH_KILLS ?= 500
check-crash: all $(BUILDDIR)/tests/check_sqlite_crash $(BUILDDIR)/tests/check_postgres_crash
	CRASH_KILLS=$(CRASH_KILLS) $(BUILDDIR)/tests/check_sqlite_crash
	CRASH_KILLS=$(CRASH_KILLS) $(PG_CLUSTER) $(BUILDDIR)/tests/check_postgres_crash

SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
check-asan: deps
	$(MAKE) BUILDDIR=build/asan LIBOUT=build/asan/lib CFLAGS="$(SAN_FLAGS)" \
	    LDFLAGS="-fsanitize=address,undefined" \
	    TEST_ENV="ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 CK_TIMEOUT_MULTIPLIER=5" \
	    check-unit check-demo sim-smoke

# The thread test and the SQLite suite (group commit, shared fsyncs,
# readers beside writers) under ThreadSanitizer: their own build of the
# libraries and the test programs (the paths must match the sub-make's
# BUILDDIR exactly).
TSAN_FLAGS := -O1 -g -fsanitize=thread -fno-omit-frame-pointer
TSAN_TESTS := build/tsan/tests/check_threads build/tsan/tests/check_sqlite
check-tsan: deps
	$(MAKE) BUILDDIR=build/tsan LIBOUT=build/tsan/lib CFLAGS="$(TSAN_FLAGS)" \
	    LDFLAGS="-fsanitize=thread" $(TSAN_TESTS)
	@set -e; for t in $(TSAN_TESTS); do echo "== $$t"; \
	    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" CK_FORK=no $$t; done

# Every test program, and the 1.0 compatibility program, under memcheck: any
# error or leak fails.  check_*_crash are left out: they SIGKILL a writer
# on a timer, and under memcheck's slowdown the writer rarely gets past its
# setup, so it would measure valgrind, not libzinv; check_sqlite runs the
# same SQLite code under memcheck.
VALGRIND_SKIP := $(BUILDDIR)/tests/check_sqlite_crash $(BUILDDIR)/tests/check_postgres_crash
VALGRIND := valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible \
	--errors-for-leak-kinds=definite,indirect,possible --error-exitcode=1
check-valgrind: deps
	$(MAKE) all $(TEST_BINS) check-compat
	@set -e; for t in $(filter-out $(VALGRIND_SKIP),$(TEST_BINS)) $(COMPAT_BIN); do \
	    echo "== valgrind $$t"; case $$t in *check_postgres*) pg="$(PG_CLUSTER)";; *) pg=;; esac; \
	    CK_FORK=no LD_LIBRARY_PATH=$(LIBOUT) $$pg $(VALGRIND) $$t; done

# ------------------------------------------------------------------- fuzz
# tests/fuzz/fuzz_<name>.c: libFuzzer targets (one per decoder, one for the
# dispatcher), built with clang into their own BUILDDIR and run for
# FUZZ_SECONDS each, seeded from tests/data and tests/fuzz/seeds/<name>.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_DIR := build/fuzz
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_DIR)/%)
FUZZ_LIB_OBJS := $(LIB_SRCS:lib/%.c=$(FUZZ_DIR)/lib/%.o)
FUZZ_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude -Ilib -g -O1 \
               -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined $(DEP_CFLAGS) -pthread

$(FUZZ_DIR)/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -DINV_BUILDING_LIBRARY -MMD -MP -c -o $@ $<

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJS) $(DEP_LIBS)

.PRECIOUS: $(FUZZ_DIR)/lib/%.o

fuzz: $(FUZZ_BINS)
	@set -e; for b in $(FUZZ_BINS); do n=$$(basename $$b .c); n=$${n#fuzz_}; \
	    mkdir -p $(FUZZ_DIR)/corpus/$$n; \
	    seeds=tests/data; [ -d tests/fuzz/seeds/$$n ] && seeds=tests/fuzz/seeds/$$n; \
	    echo "== $$b ($(FUZZ_SECONDS)s)"; \
	    $$b -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_DIR)/crash-$$n- $(FUZZ_DIR)/corpus/$$n $$seeds \
	        > $(FUZZ_DIR)/$$n.log 2>&1 || { tail -n 60 $(FUZZ_DIR)/$$n.log; exit 1; }; \
	    grep -E "^Done|stat::number_of_executed_units" $(FUZZ_DIR)/$$n.log; \
	done

# ------------------------------------------------------------------- ABI
# Mechanical checks of what the libraries promise; tests/abi/abi.sh does the
# work, one subcommand per target.  Per library: the built .so, its
# committed export list and abidw baseline, its version script, its headers
# and its soname.  `make abi-dump` rewrites the committed lists, and the
# baselines where the ABI differs, from the freshly built libraries: run it
# only for an intended change, and commit the result with that change.
ABI_SH := sh tests/abi/abi.sh
ABI_LIBS := libzinv
libzinv_SO := $(SHLIB)
libzinv_MAP := lib/libzinv.map
libzinv_HEADERS := include/zinv.h $(LIBZINV_HEADERS)
libzinv_SONAME := $(SONAME)
ifneq ($(SQLITE_SRCS),)
ABI_LIBS += libzinv-sqlite
libzinv-sqlite_SO := $(SQLITE_SHLIB)
libzinv-sqlite_MAP := lib/sqlite/libzinv-sqlite.map
libzinv-sqlite_HEADERS := $(SQLITE_HEADERS)
libzinv-sqlite_SONAME := $(SQLITE_SONAME)
endif
# Registered once its baseline and man page are committed (not yet).
ifneq ($(and $(PG_SRCS),$(wildcard tests/abi/libzinv-postgres.symbols)),)
ABI_LIBS += libzinv-postgres
libzinv-postgres_SO := $(PG_SHLIB)
libzinv-postgres_MAP := lib/postgres/libzinv-postgres.map
libzinv-postgres_HEADERS := $(PG_HEADERS)
libzinv-postgres_SONAME := $(PG_SONAME)
endif
ABI_SUPPR := tests/abi/libzinv.suppr
CXX ?= c++

# Fast ones first; abidw/abidiff take a second or two per library.
check-abi: check-headers check-map check-soname check-exports check-man abi-check check-compat

check-exports: all
	@set -e; $(foreach l,$(ABI_LIBS),$(ABI_SH) exports $($(l)_SO) tests/abi/$(l).symbols;)

check-map:
	@set -e; $(foreach l,$(ABI_LIBS),$(ABI_SH) map $($(l)_MAP) $($(l)_HEADERS);)

check-headers:
	@$(ABI_SH) headers "$(CC)" "$(CXX)" include/zinv.h $(wildcard include/zinv/*.h)

check-soname: all
	@set -e; $(foreach l,$(ABI_LIBS),$(ABI_SH) soname $($(l)_SO) $($(l)_SONAME);)

abi-check: all
	@set -e; $(foreach l,$(ABI_LIBS),$(ABI_SH) diff $($(l)_SO) tests/abi/$(l).abi $(ABI_SUPPR);)

abi-dump: all
	@set -e; $(foreach l,$(ABI_LIBS),$(ABI_SH) dump $($(l)_SO) tests/abi/$(l).abi; \
	    $(ABI_SH) symbols $($(l)_SO) > tests/abi/$(l).symbols;)

check-man: all
	@$(ABI_SH) man man $(foreach l,$(ABI_LIBS),$($(l)_SO))

# A program compiled against a copy of the 1.0 headers (tests/abi/compat/
# include, never updated) must run unchanged against today's library.
COMPAT_BIN := $(BUILDDIR)/tests/abi/compat
check-compat: all
	@mkdir -p $(dir $(COMPAT_BIN))
	$(CC) -std=c99 -Wall -Wextra -Werror $(CFLAGS) -Itests/abi/compat/include \
	    -o $(COMPAT_BIN) tests/abi/compat/compat.c $(LDFLAGS) -L$(LIBOUT) -lzinv
	LD_LIBRARY_PATH=$(LIBOUT) $(COMPAT_BIN)

# make install into a scratch DESTDIR, then build and run a program against
# it with pkg-config alone.
check-install: all
	@MAKE="$(MAKE)" CC="$(CC)" PKG_CONFIG="$(PKG_CONFIG)" sh tests/install-test.sh

# --------------------------------------------------------------- examples
# Owned by examples/: the POS demo, the custom-backend template (tested as a
# backend by tests/check_custom_backend.c) and the Python ctypes binding.
# pos-demo uses the embedded SQLite store when libzinv-sqlite is built.
POS_DEMO := $(BUILDDIR)/examples/pos-demo
ifneq ($(SQLITE_SRCS),)
POS_DEMO_CFLAGS := -DZINV_DEMO_SQLITE
POS_DEMO_LIBS := -lzinv-sqlite $(SQLITE_LIBS)
endif

$(POS_DEMO): examples/pos-demo/pos-demo.c $(LIBS_ALL)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(POS_DEMO_CFLAGS) $(LDFLAGS) -o $@ $< \
	    -L$(LIBOUT) -Wl,-rpath,$(abspath $(LIBOUT)) $(POS_DEMO_LIBS) -lzinv $(DEP_LIBS)

# The demo's database lives in $(BUILDDIR) so that `make clean` removes it.
demo: deps
	$(MAKE) all $(POS_DEMO)
	$(POS_DEMO) --db $(BUILDDIR)/zinv-demo.db

# Smoke test: exit status, key lines, and the same story on every store.
check-demo: $(POS_DEMO)
	sh examples/pos-demo/smoke.sh $(POS_DEMO) $(BUILDDIR)/examples

check-python: $(LIBS_ALL)
	cd examples/python && ZINV_LIBRARY=$(abspath $(LIBOUT))/$(SONAME) \
	    python3 -B -m unittest -v test_zinv

check-examples: check-demo check-python check-server check-webhooks check-sync check-fleet

# The demo under valgrind, on both stores (check-asan runs it under ASan).
check-demo-valgrind: $(POS_DEMO)
	DEMO_WRAPPER="valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=1" \
	    sh examples/pos-demo/smoke.sh $(POS_DEMO) $(BUILDDIR)/examples

.PHONY: check-demo check-demo-valgrind check-python check-examples

# ----------------------------------------------------------------- server
# examples/zinv-server: the whole REST API over HTTP (libmicrohttpd), glue
# around inv_rest_handle().  `make serve` runs it on the defaults;
# check-server drives a scenario over real HTTP with Python's stdlib.
ZINV_SERVER := $(BUILDDIR)/examples/zinv-server

# Only the server links libcurl and libcrypto (webhook delivery and signing).
# With a PostgreSQL store it links libpq itself for its webhook tables.
ZINV_SERVER_SRCS := examples/zinv-server/zinv-server.c examples/zinv-server/webhooks.c \
    examples/zinv-server/webhooks_pg.c examples/zinv-server/metrics.c
$(ZINV_SERVER): $(ZINV_SERVER_SRCS) examples/zinv-server/webhooks.h \
    examples/zinv-server/webhooks_pg.h examples/zinv-server/metrics.h $(LIBS_ALL)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(PG_CFLAGS) $(LDFLAGS) -o $@ $(ZINV_SERVER_SRCS) -L$(LIBOUT) \
	    -Wl,-rpath,$(abspath $(LIBOUT)) -lzinv-postgres -lzinv-sqlite -lzinv $(PG_LIBS) \
	    $(SQLITE_LIBS) $(MHD_LIBS) \
	    $(WEBHOOK_LIBS) $(DEP_LIBS) -pthread

serve: deps
	$(MAKE) all $(ZINV_SERVER)
	$(ZINV_SERVER)

check-server: $(ZINV_SERVER)
	python3 -B examples/zinv-server/test_server.py $(ZINV_SERVER)
	python3 -B examples/zinv-server/test_operating.py $(ZINV_SERVER)

check-webhooks: $(ZINV_SERVER)
	python3 -B examples/zinv-server/test_webhooks.py $(ZINV_SERVER)

# The server on PostgreSQL, on a throwaway cluster: the webhook checks again,
# then several processes on one database (test_fleet.py).
check-fleet: $(ZINV_SERVER)
	$(PG_CLUSTER) sh -c 'ZINV_TEST_WEBHOOKS_DB="$$ZINV_TEST_PG" \
	    python3 -B examples/zinv-server/test_webhooks.py $(ZINV_SERVER) && \
	    python3 -B examples/zinv-server/test_fleet.py $(ZINV_SERVER)'

.PHONY: serve check-server check-webhooks check-fleet

# ------------------------------------------------------------------- sync
# examples/zinv-sync: a till's store kept in sync with an upstream server
# (inv_sync(3) driven by libcurl).  demo-sync: an upstream zinv-server and
# two tills; check-sync: the end-to-end test (kills, faults, convergence).
ZINV_SYNC := $(BUILDDIR)/examples/zinv-sync
$(ZINV_SYNC): examples/zinv-sync/zinv-sync.c $(LIBS_ALL)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< -L$(LIBOUT) -Wl,-rpath,$(abspath $(LIBOUT)) \
	    -lzinv-sqlite -lzinv $(SQLITE_LIBS) $(WEBHOOK_LIBS) $(DEP_LIBS) -pthread

demo-sync: deps
	$(MAKE) all $(ZINV_SERVER) $(ZINV_SYNC)
	python3 -B examples/zinv-sync/test_sync.py --demo $(ZINV_SERVER) $(ZINV_SYNC)

check-sync: $(ZINV_SERVER) $(ZINV_SYNC)
	ZINV_LIBRARY=$(abspath $(LIBOUT))/$(SONAME) \
	    python3 -B examples/zinv-sync/test_sync.py $(ZINV_SERVER) $(ZINV_SYNC)

.PHONY: demo-sync check-sync

# -------------------------------------------------------------------- sim
# Deterministic simulation (tests/sim/README.md): libzinv checked against a
# reference model under random workloads, injected faults and crashes.
#   make sim SEED=7 STEPS=2000 BACKEND=memory|sqlite|postgres [FAULTS=1] [CRASH=1|KILL=1] [V=1]
#   make sim-smoke (part of check), sim-ci (200+ seeds per embedded backend, 50 on
#   a throwaway PostgreSQL cluster), sim-long
SIM_SRCS := $(wildcard tests/sim/*.c) tests/fault_backend.c
SIM_OBJS := $(patsubst tests/%.c,$(BUILDDIR)/sim/%.o,$(SIM_SRCS:tests/sim/%=tests/%))
SIM_BIN := $(BUILDDIR)/sim/zinv-sim
SIM_SQLITE := $(if $(and $(SQLITE_SRCS),$(wildcard include/zinv/sqlite.h)),1)
SIM_PG := $(if $(PG_SRCS),1)
SIM_CFLAGS := $(ALL_CFLAGS) -Itests -pthread $(if $(SIM_SQLITE),-DSIM_HAVE_SQLITE) \
              $(if $(SIM_PG),-DSIM_HAVE_POSTGRES $(PG_CFLAGS))
SIM_LDLIBS := -L$(LIBOUT) -Wl,-rpath,$(abspath $(LIBOUT)) \
              $(if $(SIM_SQLITE),-lzinv-sqlite $(SQLITE_LIBS)) \
              $(if $(SIM_PG),-lzinv-postgres $(PG_LIBS)) -lzinv $(DEP_LIBS) -pthread
SIM_RUN = $(TEST_ENV) $(SIM_BIN)
# BACKEND=postgres runs on a throwaway cluster
SIM_PG_RUN = $(TEST_ENV) $(PG_CLUSTER) $(SIM_BIN)
SEED ?= 1
STEPS ?= 2000
BACKEND ?= memory

.PHONY: sim sim-smoke sim-ci sim-long
$(BUILDDIR)/sim/%.o: tests/sim/%.c
	@mkdir -p $(@D)
	$(CC) $(SIM_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILDDIR)/sim/fault_backend.o: tests/fault_backend.c
	@mkdir -p $(@D)
	$(CC) $(SIM_CFLAGS) -MMD -MP -c -o $@ $<

$(SIM_BIN): $(SIM_OBJS) $(LIBS_ALL)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(SIM_OBJS) $(SIM_LDLIBS)

sim: $(SIM_BIN)
	$(if $(filter postgres,$(BACKEND)),$(SIM_PG_RUN),$(SIM_RUN)) --seed $(SEED) --steps $(STEPS) --backend $(BACKEND) \
	    $(if $(FAULTS),--faults) $(if $(CRASH),--crash) $(if $(KILL),--kill) $(if $(V),--verbose)

sim-smoke: $(SIM_BIN)
	$(SIM_RUN) --seed 1 --seeds 4 --steps 300 --backend all
	$(SIM_RUN) --seed 101 --seeds 3 --steps 300 --backend all --faults
	$(SIM_RUN) --sync --seed 501 --seeds 3 --steps 300
	$(if $(SIM_SQLITE),$(SIM_RUN) --seed 201 --seeds 3 --steps 300 --backend sqlite --crash)

sim-ci: $(SIM_BIN)
	$(SIM_RUN) --seed 1000 --seeds 200 --steps 500 --backend memory
	$(SIM_RUN) --seed 2000 --seeds 200 --steps 400 --backend memory --faults
	$(SIM_RUN) --sync --seed 5000 --seeds 100 --steps 300
	$(if $(SIM_SQLITE),$(SIM_RUN) --seed 1000 --seeds 200 --steps 300 --backend sqlite)
	$(if $(SIM_SQLITE),$(SIM_RUN) --seed 2000 --seeds 200 --steps 200 --backend sqlite --faults)
	$(if $(SIM_SQLITE),$(SIM_RUN) --seed 3000 --seeds 200 --steps 200 --backend sqlite --crash)
	$(if $(SIM_SQLITE),$(SIM_RUN) --seed 4000 --seeds 40 --steps 300 --backend sqlite --kill)
	$(if $(SIM_PG),$(TEST_ENV) $(PG_CLUSTER) sh -c '$(SIM_BIN) --seed 6000 --seeds 20 --steps 200 --backend postgres && \
	    $(SIM_BIN) --seed 6100 --seeds 10 --steps 200 --backend postgres --faults && \
	    $(SIM_BIN) --seed 6200 --seeds 10 --steps 200 --backend postgres --crash && \
	    $(SIM_BIN) --seed 6300 --seeds 10 --steps 200 --backend postgres --kill')

sim-long: $(SIM_BIN)
	$(SIM_RUN) --seed 100000 --seeds 5000 --steps 1000 --backend all
	$(SIM_RUN) --seed 200000 --seeds 2000 --steps 1000 --backend all --faults
	$(if $(SIM_SQLITE),$(SIM_RUN) --seed 300000 --seeds 2000 --steps 1000 --backend sqlite --crash)
	$(if $(SIM_SQLITE),$(SIM_RUN) --seed 400000 --seeds 500 --steps 1000 --backend sqlite --kill)
# ------------------------------------------------------------------ end sim

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
# zinv-bench is tests/bench/zinv-bench.c plus tests/bench/zb_*.c.
.PHONY: bench bench-callgrind bench-smoke
BENCH_DIR := $(BUILDDIR)/bench
BENCH_SRCS := tests/bench/zinv-bench.c $(wildcard tests/bench/zb_*.c)
BENCH_OBJS := $(BENCH_SRCS:tests/bench/%.c=$(BENCH_DIR)/%.o)
BENCH_BIN := $(BENCH_DIR)/zinv-bench
BENCH_CFLAGS := $(ALL_CFLAGS) $(PG_CFLAGS) -Itests/bench
BENCH_LDLIBS := -L$(LIBOUT) -Wl,-rpath,$(abspath $(LIBOUT)) \
                -lzinv-sqlite -lzinv-postgres -lzinv \
                $(SQLITE_LIBS) $(PG_LIBS) $(DEP_LIBS) -pthread
BENCH_FLAGS ?=

$(BENCH_DIR)/%.o: tests/bench/%.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -MMD -MP -c -o $@ $<

$(BENCH_BIN): $(BENCH_OBJS) $(LIBS_ALL)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(BENCH_OBJS) $(BENCH_LDLIBS)

# The postgres case runs on a throwaway cluster (tests/pg/with-cluster.sh).
bench: $(BENCH_BIN)
	$(PG_CLUSTER) $(BENCH_BIN) $(BENCH_FLAGS)

bench-smoke: $(BENCH_BIN)
	$(PG_CLUSTER) $(BENCH_BIN) --smoke --json $(BENCH_DIR)/smoke-results.json >$(BENCH_DIR)/smoke.log \
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
# The real name, soname and link name chain of each library, the headers, a
# .pc file generated with the install-time PREFIX/LIBDIR/INCLUDEDIR (so that
# `make && make install PREFIX=/usr` never installs a stale one), and the
# man pages (.so stubs included).  libzinv-sqlite, its header and its .pc go
# in only when it is built.
MAN_PAGES := $(wildcard man/man3/*.3)
INSTALL ?= install
PC_SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g'

install: all
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/zinv $(DESTDIR)$(PKGCONFIGDIR)
	$(INSTALL) -m 644 include/zinv.h $(DESTDIR)$(INCLUDEDIR)/
	$(INSTALL) -m 644 $(LIBZINV_HEADERS) $(DESTDIR)$(INCLUDEDIR)/zinv/
	$(INSTALL) -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libzinv.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libzinv.so
	$(INSTALL) -m 644 $(STLIB) $(DESTDIR)$(LIBDIR)/
	$(PC_SUBST) pkgconfig/zinv.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/zinv.pc
ifneq ($(SQLITE_SRCS),)
	$(INSTALL) -m 644 $(SQLITE_HEADERS) $(DESTDIR)$(INCLUDEDIR)/zinv/
	$(INSTALL) -m 755 $(SQLITE_SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libzinv-sqlite.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SQLITE_SONAME)
	ln -sf $(SQLITE_SONAME) $(DESTDIR)$(LIBDIR)/libzinv-sqlite.so
	$(INSTALL) -m 644 $(SQLITE_STLIB) $(DESTDIR)$(LIBDIR)/
	$(PC_SUBST) pkgconfig/zinv-sqlite.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/zinv-sqlite.pc
endif
ifneq ($(PG_SRCS),)
	$(INSTALL) -m 644 $(PG_HEADERS) $(DESTDIR)$(INCLUDEDIR)/zinv/
	$(INSTALL) -m 755 $(PG_SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libzinv-postgres.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(PG_SONAME)
	ln -sf $(PG_SONAME) $(DESTDIR)$(LIBDIR)/libzinv-postgres.so
	$(INSTALL) -m 644 $(PG_STLIB) $(DESTDIR)$(LIBDIR)/
	$(PC_SUBST) pkgconfig/zinv-postgres.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/zinv-postgres.pc
endif
ifneq ($(MAN_PAGES),)
	$(INSTALL) -d $(DESTDIR)$(MANDIR)/man3
	$(INSTALL) -m 644 $(MAN_PAGES) $(DESTDIR)$(MANDIR)/man3/
endif

# Removes exactly what install put there, whichever parts were built.
uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/zinv.h
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/zinv/,$(notdir $(LIBZINV_HEADERS) $(SQLITE_HEADERS) $(PG_HEADERS)))
	-rmdir $(DESTDIR)$(INCLUDEDIR)/zinv 2>/dev/null
	rm -f $(addprefix $(DESTDIR)$(LIBDIR)/,libzinv.so.$(VERSION) $(SONAME) libzinv.so libzinv.a \
	    libzinv-sqlite.so.$(VERSION) $(SQLITE_SONAME) libzinv-sqlite.so libzinv-sqlite.a \
	    libzinv-postgres.so.$(VERSION) $(PG_SONAME) libzinv-postgres.so libzinv-postgres.a)
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/zinv.pc $(DESTDIR)$(PKGCONFIGDIR)/zinv-sqlite.pc \
	    $(DESTDIR)$(PKGCONFIGDIR)/zinv-postgres.pc
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man3/,$(notdir $(MAN_PAGES)))

clean:
	rm -rf build lib/*.so lib/*.so.* lib/*.a pkgconfig/*.pc bench-results.json

-include $(FUZZ_LIB_OBJS:.o=.d)
-include $(LIB_OBJS:.o=.d) $(SQLITE_OBJS:.o=.d) $(PG_OBJS:.o=.d) $(TEST_SUPPORT_OBJS:.o=.d) $(TEST_BINS:=.d) \
         $(SIM_OBJS:.o=.d) $(BENCH_OBJS:.o=.d)
