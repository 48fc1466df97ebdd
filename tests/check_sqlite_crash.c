/*
 * check_sqlite_crash.c - libzinv-sqlite through the public API under the
 * failures a durable store must survive: SIGKILL at any moment, two
 * processes writing one organization, a full disk.
 *
 * After each failure the file is reopened and checked the same way: every
 * acknowledged batch is there, no batch is there in part, the journal has
 * no gap, and every balance equals the replay of the journal's records.
 *
 * CRASH_KILLS (default 50) sets how many times the writer is killed;
 * `make check-crash` runs 500.  The timeout grows with it (CRASH_TIMEOUT
 * seconds overrides).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <zinv.h>
#include <zinv/sqlite.h>

enum { VARIANTS = 8, MAX_BATCH = 40 };

static char tmpdir[64];
static char dbpath[128];

static void setup_dir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/zinv-crash-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(dbpath, sizeof(dbpath), "%s/store.db", tmpdir);
}

static void remove_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

static inv_uuid uuid_n(unsigned n)
{
	inv_uuid u;

	memset(&u, 0, sizeof(u));
	u.bytes[0] = 0x5a;
	u.bytes[14] = (uint8_t)(n >> 8);
	u.bytes[15] = (uint8_t)n;
	return u;
}

/* The organization the workload and the checker use: 1, or one of the
 * group-commit test's (GROUP_ORG + thread) in turn. */
static unsigned org_number = 1;

/* ------------------------------------------------------------ the workload */

/* Everything a writer needs, opened through the public API. */
struct world {
	inv_store *store;
	inv_org *org;
	const inv_location *loc[4]; /* STORE, SOLD, BIN, SUPPLIER */
	const inv_variant *variant[VARIANTS];
};

/* Open organization `org` on an open store. */
static int world_org_open(struct world *w, unsigned org)
{
	inv_uuid product = uuid_n(2), ou = uuid_n(org);
	int rc, i;

	if ((rc = inv_org_open(&w->org, w->store, &ou)))
		return rc;
	for (i = 0; i < 4; i++)
		if ((rc = inv_location_by_type(&w->loc[i], w->org, (inv_location_type)(i + 1))))
			return rc;
	for (i = 0; i < VARIANTS; i++) {
		inv_uuid v = uuid_n(100 + (unsigned)i);

		if ((rc = inv_variant_get(&w->variant[i], w->org, &product, &v)))
			return rc;
	}
	return 0;
}

static int world_open(struct world *w, const inv_sqlite_options *opts)
{
	int rc;

	memset(w, 0, sizeof(*w));
	if ((rc = inv_store_open_sqlite(&w->store, dbpath, opts, NULL)))
		return rc;
	return world_org_open(w, org_number);
}

static void world_close(struct world *w)
{
	inv_org_close(w->org);
	inv_store_close(w->store);
}

/* With no busy timeout, opening can meet another process's write lock too:
 * INV_EBUSY is retryable there as everywhere. */
static int world_open_retrying(struct world *w, const inv_sqlite_options *opts)
{
	int rc, tries;

	for (tries = 0; tries < 10000; tries++) {
		rc = world_open(w, opts);
		if (rc != INV_EBUSY)
			return rc;
		world_close(w);
		nanosleep(&(struct timespec){ 0, 1000 * 1000 }, NULL);
	}
	return rc;
}

/* The batch that gets sequence `seq`: its size and moves follow from the
 * sequence alone, so the checker knows what a whole batch looks like. */
static size_t batch_size(int64_t seq)
{
	return 1 + (size_t)((seq * 7919) % MAX_BATCH);
}

/* The two-writer test's batch: one unit of every variant into STORE, the
 * same whatever sequence it gets. */
static size_t make_fixed_batch(struct world *w, inv_change *out)
{
	size_t i;

	for (i = 0; i < VARIANTS; i++) {
		out[i].variant = w->variant[i];
		out[i].from = w->loc[3];
		out[i].to = w->loc[0];
		out[i].quantity = 1;
	}
	return VARIANTS;
}

static size_t make_batch(struct world *w, int64_t seq, inv_change *out)
{
	size_t n = batch_size(seq), i;

	for (i = 0; i < n; i++) {
		unsigned r = (unsigned)(seq * 31 + (int64_t)i * 17);
		int other = 1 + (int)(r % 3); /* SOLD, BIN or SUPPLIER */

		out[i].variant = w->variant[r % VARIANTS];
		out[i].quantity = 1 + (int64_t)(r % 5);
		if ((r / 3) % 2) {
			out[i].from = w->loc[other];
			out[i].to = w->loc[0];
		} else {
			out[i].from = w->loc[0];
			out[i].to = w->loc[other];
		}
	}
	return n;
}

/* Sequences up to this one are the setup's, not the writers' batches. */
static int64_t setup_sequence;

/* Create the organization and track the product, once, before writers. */
static void world_setup(void)
{
	struct world w;
	inv_uuid product = uuid_n(2);
	int rc = world_open(&w, NULL);

	ck_assert_msg(rc == 0, "open: %d (%s)", rc, inv_error_last()->message);
	ck_assert_int_eq(inv_tracking_start(w.org, &product), 0);
	ck_assert_int_eq(inv_journal_last_sequence(&setup_sequence, w.org), 0);
	world_close(&w);
}

/* ------------------------------------------------------------ the checker */

struct journal_check {
	int64_t expect_seq;         /* next sequence the journal must hold */
	int64_t balance[VARIANTS];  /* replayed STORE balances */
	const char *fail;
	int64_t fail_seq;
};

static int variant_index(const inv_uuid *v)
{
	int i;

	for (i = 0; i < VARIANTS; i++) {
		inv_uuid u = uuid_n(100 + (unsigned)i);

		if (inv_uuid_compare(&u, v) == 0)
			return i;
	}
	return -1;
}

/*
 * Read the whole journal and the balances; return the last sequence, or
 * fail the test with what was wrong.
 */
/* What a previous check verified: entries up to `sequence`, and the
 * balances their replay gives.  Zeroed: verify from the start. */
struct replay {
	int64_t sequence;
	int64_t balance[VARIANTS];
};

/*
 * Check the journal entries after r->sequence and every balance, extending
 * the replay; return the last sequence, or fail the test with what was
 * wrong.  A zeroed replay checks the whole journal.
 */
static int64_t check_since(const char *when, size_t (*moves_of)(int64_t seq), struct replay *rp)
{
	inv_journal_query q = INV_JOURNAL_QUERY_INIT;
	struct world w;
	inv_journal *j = NULL;
	int64_t last = -1;
	size_t i, k;
	int rc = world_open(&w, NULL);

	ck_assert_msg(rc == 0, "%s: reopen: %d (%s)", when, rc, inv_error_last()->message);
	ck_assert_int_eq(inv_journal_last_sequence(&last, w.org), 0);
	ck_assert_msg(last >= rp->sequence, "%s: last sequence %lld went back from %lld", when,
	              (long long)last, (long long)rp->sequence);
	q.after_sequence = rp->sequence;
	ck_assert_int_eq(inv_journal_read(&j, w.org, &q), 0);
	ck_assert_msg(inv_journal_count(j) == (size_t)(last - rp->sequence),
	              "%s: journal has %zu entries after %lld, last sequence is %lld", when,
	              inv_journal_count(j), (long long)rp->sequence, (long long)last);
	for (i = 0; i < inv_journal_count(j); i++) {
		const inv_journal_entry *e = inv_journal_at(j, i);
		const inv_journal_record *r = inv_journal_entry_records(e);
		size_t n = inv_journal_entry_record_count(e), moves = 0;
		int64_t seq = inv_journal_entry_sequence(e);

		ck_assert_msg(seq == rp->sequence + 1, "%s: gap: sequence %lld after %lld", when,
		              (long long)seq, (long long)rp->sequence);
		for (k = 0; k < n; k++) {
			int64_t *bal;
			int v;

			if (r[k].kind != INV_RECORD_MOVE)
				continue;
			moves++;
			v = variant_index(&r[k].variant);
			ck_assert_int_ge(v, 0);
			bal = &rp->balance[v];
			ck_assert_msg(r[k].before == *bal,
			              "%s: seq %lld record %zu: before %lld, replay says %lld", when,
			              (long long)seq, k, (long long)r[k].before, (long long)*bal);
			if (inv_uuid_compare(&r[k].to, inv_location_uuid(w.loc[0])) == 0)
				*bal += r[k].quantity;
			else
				*bal -= r[k].quantity;
			ck_assert_int_eq(r[k].after, *bal);
		}
		if (seq > setup_sequence)
			ck_assert_msg(moves == moves_of(seq),
			              "%s: partial batch: seq %lld has %zu moves, expected %zu",
			              when, (long long)seq, moves, moves_of(seq));
		rp->sequence = seq;
	}
	for (k = 0; k < VARIANTS; k++) {
		int64_t got = 0;

		ck_assert_int_eq(inv_balance_get(&got, w.org, w.variant[k], NULL), 0);
		ck_assert_msg(got == rp->balance[k], "%s: variant %zu: balance %lld, replay %lld",
		              when, k, (long long)got, (long long)rp->balance[k]);
	}
	inv_journal_free(j);
	world_close(&w);
	return last;
}

/* The whole journal, from the first entry. */
static int64_t check_consistent(const char *when, size_t (*moves_of)(int64_t seq))
{
	struct replay r;

	memset(&r, 0, sizeof(r));
	return check_since(when, moves_of, &r);
}

/* ------------------------------------------------------------ writers */

static void write_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(3);
		p = (const char *)p + w;
		n -= (size_t)w;
	}
}

static size_t fixed_batch_size(int64_t seq)
{
	(void)seq;
	return VARIANTS;
}

/*
 * Apply batches forever (or `max` of them, then return), writing each
 * acknowledged sequence to `ack_fd`.  INV_EBUSY is retried and counted in
 * *busy_out; any other error exits with status 100 + the code's magnitude.
 * `fixed`: every batch is make_fixed_batch() rather than one that follows
 * from its sequence (two writers cannot know their next sequence).
 */
static void writer(int ack_fd, const inv_sqlite_options *opts, long max, int fixed,
                   int *busy_out)
{
	static inv_change changes[MAX_BATCH];
	struct world w;
	int64_t seq;
	long done = 0;
	int busy = 0;

	if (world_open_retrying(&w, opts) != 0)
		_exit(10);
	seq = 0; /* "ready": opened, about to write */
	write_all(ack_fd, &seq, sizeof(seq));
	while (max < 0 || done < max) {
		inv_result *res = NULL;
		size_t n;
		int rc;

		if (inv_journal_last_sequence(&seq, w.org) != 0)
			_exit(11);
		seq++;
		n = fixed ? make_fixed_batch(&w, changes) : make_batch(&w, seq, changes);
		rc = inv_apply_changes(&res, w.org, changes, n, NULL);
		if (rc == INV_EBUSY) {
			busy++;
			continue;
		}
		if (rc != 0) {
			fprintf(stderr, "writer: apply: %d (%s)\n", rc, inv_error_last()->message);
			_exit(100 - rc);
		}
		if (fixed)
			seq = inv_result_sequence(res);
		else if (inv_result_sequence(res) != seq)
			_exit(12);
		inv_result_free(res);
		write_all(ack_fd, &seq, sizeof(seq));
		done++;
	}
	world_close(&w);
	if (busy_out)
		*busy_out = busy;
}

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 10) : def;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * Read acknowledgements until `deadline_us` (-1: EOF), or until the writer
 * says it is ready when `until_ready`; returns the last sequence.
 */
static int64_t read_acks_or_ready(int fd, int64_t last, int64_t deadline_us, int until_ready)
{
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int64_t left = deadline_us - now_us(), seq;
		ssize_t n;

		if (deadline_us >= 0 && left <= 0)
			return last;
		if (poll(&p, 1, deadline_us < 0 ? -1 : (int)(left / 1000) + 1) <= 0)
			continue;
		n = read(fd, &seq, sizeof(seq));
		if (n == 0)
			return last;
		if (n != (ssize_t)sizeof(seq))
			continue;
		if (seq > 0)
			last = seq;
		else if (until_ready)
			return last;
	}
}

static int64_t read_acks(int fd, int64_t last, int64_t deadline_us)
{
	return read_acks_or_ready(fd, last, deadline_us, 0);
}

/* ------------------------------------------------------------ tests */

START_TEST(test_sigkill_never_loses_an_acknowledged_batch_nor_keeps_a_partial_one)
{
	long kills = env_long("CRASH_KILLS", 50), k;
	int64_t acked = 0, last;
	struct replay replay;
	unsigned seed = (unsigned)time(NULL);

	fprintf(stderr, "crash: %ld kills, seed %u\n", kills, seed);
	srand(seed);
	world_setup();
	memset(&replay, 0, sizeof(replay));
	for (k = 0; k < kills; k++) {
		inv_sqlite_options opts = INV_SQLITE_OPTIONS_INIT;
		int fds[2], status;
		pid_t pid;
		char when[64];

		/* both sync modes survive the death of the process */
		opts.sync = k % 2 ? INV_SQLITE_SYNC_NORMAL : INV_SQLITE_SYNC_FULL;
		ck_assert_int_eq(pipe(fds), 0);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(fds[0]);
			writer(fds[1], &opts, -1, 0, NULL);
			_exit(0);
		}
		close(fds[1]);
		/* One kill in four lands anywhere from the open on; the others
		 * once the writer is writing, however slowly it started (a
		 * sanitizer build, a loaded machine). */
		if (k % 4 != 0)
			acked = read_acks_or_ready(fds[0], acked, -1, 1);
		acked = read_acks(fds[0], acked, now_us() + rand() % 40000);
		kill(pid, SIGKILL);
		acked = read_acks(fds[0], acked, -1);
		close(fds[0]);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		              "writer died on its own (status %d, kill %ld)", status, k);
		snprintf(when, sizeof(when), "after kill %ld", k + 1);
		/* the new entries after each kill; everything again now and then,
		 * so that a kill can be seen to damage nothing older either */
		if (k % 25 == 24)
			last = check_consistent(when, batch_size);
		else
			last = check_since(when, batch_size, &replay);
		ck_assert_msg(last >= acked, "%s: last sequence %lld < acknowledged %lld", when,
		              (long long)last, (long long)acked);
		acked = last;
	}
	fprintf(stderr, "crash: %lld batches committed across %ld kills\n", (long long)acked,
	        kills);
	ck_assert_int_gt(acked, setup_sequence);
}
END_TEST

/* ------------------------------------------------------------ group commit */

enum { GROUP_THREADS = 4, GROUP_ORG = 10 };

struct group_thread {
	inv_store *store;
	int ack_fd;
	unsigned org;
};

/* An acknowledgement from the group writer: organization and sequence,
 * one write() each (atomic on a pipe). */
struct group_ack {
	int64_t org;
	int64_t seq;
};

/* One thread of the group writer: batches on its own organization of the
 * shared store forever, acknowledging each once inv_apply_changes() said
 * it is durable. */
static void *group_thread_main(void *p)
{
	struct group_thread *t = p;
	static _Thread_local inv_change changes[MAX_BATCH];
	struct world w;

	memset(&w, 0, sizeof(w));
	w.store = t->store;
	if (world_org_open(&w, t->org) != 0)
		_exit(20);
	for (;;) {
		struct group_ack ack = { t->org, 0 };
		inv_result *res = NULL;
		size_t n;
		int rc;

		if (inv_journal_last_sequence(&ack.seq, w.org) != 0)
			_exit(21);
		ack.seq++;
		n = make_batch(&w, ack.seq, changes);
		rc = inv_apply_changes(&res, w.org, changes, n, NULL);
		if (rc == INV_EBUSY)
			continue;
		if (rc != 0) {
			fprintf(stderr, "group writer: apply: %d (%s)\n", rc,
			        inv_error_last()->message);
			_exit(100 - rc);
		}
		if (inv_result_sequence(res) != ack.seq)
			_exit(22);
		inv_result_free(res);
		write_all(t->ack_fd, &ack, sizeof(ack));
	}
	return NULL;
}

/* GROUP_THREADS threads through one store, so that their batches share
 * transactions; never returns. */
static void group_writer(int ack_fd, const inv_sqlite_options *opts)
{
	struct group_thread t[GROUP_THREADS];
	pthread_t th[GROUP_THREADS];
	struct group_ack ready = { 0, 0 };
	inv_store *store;
	int i;

	if (inv_store_open_sqlite(&store, dbpath, opts, NULL) != 0)
		_exit(10);
	write_all(ack_fd, &ready, sizeof(ready));
	for (i = 0; i < GROUP_THREADS; i++) {
		t[i] = (struct group_thread){ store, ack_fd, GROUP_ORG + (unsigned)i };
		if (pthread_create(&th[i], NULL, group_thread_main, &t[i]) != 0)
			_exit(23);
	}
	for (;;)
		pause();
}

/* Read group acknowledgements until the deadline (-1: EOF), keeping each
 * organization's last acknowledged sequence. */
static void read_group_acks(int fd, int64_t *acked, int64_t deadline_us)
{
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int64_t left = deadline_us - now_us();
		struct group_ack a;
		ssize_t n;

		if (deadline_us >= 0 && left <= 0)
			return;
		if (poll(&p, 1, deadline_us < 0 ? -1 : (int)(left / 1000) + 1) <= 0)
			continue;
		n = read(fd, &a, sizeof(a));
		if (n == 0)
			return;
		if (n == (ssize_t)sizeof(a) && a.org >= GROUP_ORG &&
		    a.org < GROUP_ORG + GROUP_THREADS && a.seq > acked[a.org - GROUP_ORG])
			acked[a.org - GROUP_ORG] = a.seq;
	}
}

START_TEST(test_sigkill_while_threads_share_a_commit_loses_no_acknowledged_batch)
{
	long kills = env_long("CRASH_KILLS", 50) / 2, k;
	int64_t acked[GROUP_THREADS] = { 0 };
	struct replay replay[GROUP_THREADS];
	unsigned seed = (unsigned)time(NULL) ^ 0x9e37u;
	int i;

	fprintf(stderr, "group crash: %ld kills, seed %u\n", kills, seed);
	srand(seed);
	for (i = 0; i < GROUP_THREADS; i++) {
		org_number = GROUP_ORG + (unsigned)i;
		world_setup();
	}
	memset(replay, 0, sizeof(replay));
	for (k = 0; k < kills; k++) {
		inv_sqlite_options opts = INV_SQLITE_OPTIONS_INIT;
		struct group_ack ready;
		int fds[2], status;
		pid_t pid;

		opts.sync = k % 2 ? INV_SQLITE_SYNC_NORMAL : INV_SQLITE_SYNC_FULL;
		ck_assert_int_eq(pipe(fds), 0);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(fds[0]);
			group_writer(fds[1], &opts);
			_exit(0);
		}
		close(fds[1]);
		ck_assert_int_eq(read(fds[0], &ready, sizeof(ready)), (ssize_t)sizeof(ready));
		read_group_acks(fds[0], acked, now_us() + 5000 + rand() % 40000);
		kill(pid, SIGKILL);
		read_group_acks(fds[0], acked, -1);
		close(fds[0]);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		              "group writer died on its own (status %d, kill %ld)", status, k);
		for (i = 0; i < GROUP_THREADS; i++) {
			char when[80];
			int64_t last;

			snprintf(when, sizeof(when), "after kill %ld, organization %d", k + 1, i);
			org_number = GROUP_ORG + (unsigned)i;
			last = check_since(when, batch_size, &replay[i]);
			ck_assert_msg(last >= acked[i], "%s: last sequence %lld < acknowledged %lld",
			              when, (long long)last, (long long)acked[i]);
			acked[i] = last;
		}
	}
	org_number = 1;
	for (i = 0; i < GROUP_THREADS; i++)
		ck_assert_int_gt(acked[i], setup_sequence);
}
END_TEST

START_TEST(test_two_processes_on_one_organization_end_with_exact_balances)
{
	enum { PER_WRITER = 150 };
	inv_sqlite_options opts = INV_SQLITE_OPTIONS_INIT;
	pid_t pid[2];
	int acks[2], busy[2], i, busy_total = 0;
	int64_t last;

	world_setup();
	/* no waiting for the lock, so that INV_EBUSY does happen and is retried */
	opts.busy_timeout_ms = 0;
	opts.sync = INV_SQLITE_SYNC_NORMAL;
	ck_assert_int_eq(pipe(acks), 0);
	ck_assert_int_eq(pipe(busy), 0);
	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		ck_assert_int_ge(pid[i], 0);
		if (pid[i] == 0) {
			int n = 0;

			close(acks[0]);
			close(busy[0]);
			writer(acks[1], &opts, PER_WRITER, 1, &n);
			write_all(busy[1], &n, sizeof(n));
			_exit(0);
		}
	}
	close(acks[1]);
	close(busy[1]);
	read_acks(acks[0], 0, -1);
	close(acks[0]);
	for (i = 0; i < 2; i++) {
		int status, n = 0;

		ck_assert_int_eq(waitpid(pid[i], &status, 0), pid[i]);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		              "writer %d failed (status %d)", i, status);
		ck_assert_int_eq(read(busy[0], &n, sizeof(n)), (ssize_t)sizeof(n));
		busy_total += n;
	}
	close(busy[0]);
	last = check_consistent("after two writers", fixed_batch_size);
	ck_assert_int_eq(last, setup_sequence + 2 * PER_WRITER);
	{
		struct world w;
		int64_t got;

		ck_assert_int_eq(world_open(&w, NULL), 0);
		for (i = 0; i < VARIANTS; i++) {
			ck_assert_int_eq(inv_balance_get(&got, w.org, w.variant[i], NULL), 0);
			ck_assert_int_eq(got, 2 * PER_WRITER);
		}
		world_close(&w);
	}
	fprintf(stderr, "two writers: %d INV_EBUSY retries\n", busy_total);
}
END_TEST

/* A store being created for the first time may die at any step of it; the
 * file must then open as if creation never started, or had finished. */
START_TEST(test_sigkill_while_creating_a_store_leaves_an_openable_file)
{
	int k;

	for (k = 0; k < 20; k++) {
		char wal[160], shm[160];
		pid_t pid;
		int status;

		snprintf(wal, sizeof(wal), "%s-wal", dbpath);
		snprintf(shm, sizeof(shm), "%s-shm", dbpath);
		unlink(dbpath);
		unlink(wal);
		unlink(shm);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			struct world w;

			if (world_open(&w, NULL) != 0)
				_exit(10);
			for (;;)
				pause();
		}
		{
			struct timespec ts = { 0, (long)(rand() % 15000) * 1000 };

			nanosleep(&ts, NULL);
		}
		kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status), "creator exited on its own (status %d)", status);
		setup_sequence = 0;
		check_consistent("after a kill during creation", batch_size);
	}
}
END_TEST

static void full_disk_writer(int ack_fd, int report_fd)
{
	static inv_change changes[MAX_BATCH];
	struct world w;
	struct rlimit rl;
	struct stat st;
	char wal[160];
	off_t biggest;
	int64_t seq;
	int rc = 0, i;

	signal(SIGXFSZ, SIG_IGN);
	if (world_open(&w, NULL) != 0)
		_exit(10);
	snprintf(wal, sizeof(wal), "%s-wal", dbpath);
	biggest = stat(dbpath, &st) == 0 ? st.st_size : 0;
	if (stat(wal, &st) == 0 && st.st_size > biggest)
		biggest = st.st_size;
	rl.rlim_cur = rl.rlim_max = (rlim_t)biggest + 256 * 1024;
	if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
		_exit(13);
	for (i = 0; i < 100000 && rc == 0; i++) {
		if (inv_journal_last_sequence(&seq, w.org) != 0)
			_exit(11);
		seq++;
		rc = inv_apply_changes(NULL, w.org, changes, make_batch(&w, seq, changes), NULL);
		if (rc == 0)
			write_all(ack_fd, &seq, sizeof(seq));
	}
	{
		char msg[512];
		int len = snprintf(msg, sizeof(msg), "%d %s", rc, inv_error_last()->message);

		write_all(report_fd, msg, (size_t)len + 1);
	}
	/* the store stays usable for reading */
	if (inv_journal_last_sequence(&seq, w.org) != 0)
		_exit(14);
	world_close(&w);
	_exit(0);
}

START_TEST(test_full_disk_fails_clearly_and_leaves_the_file_consistent)
{
	int acks[2], report[2], status, code = 0;
	char msg[512] = "";
	int64_t acked, last;
	pid_t pid;
	ssize_t n;

	world_setup();
	ck_assert_int_eq(pipe(acks), 0);
	ck_assert_int_eq(pipe(report), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(acks[0]);
		close(report[0]);
		full_disk_writer(acks[1], report[1]);
	}
	close(acks[1]);
	close(report[1]);
	acked = read_acks(acks[0], 0, -1);
	n = read(report[0], msg, sizeof(msg) - 1);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer status %d", status);
	ck_assert_int_eq(sscanf(msg, "%d", &code), 1);
	fprintf(stderr, "full disk: %s\n", msg);
	ck_assert_int_eq(code, INV_EBACKEND);
	ck_assert_msg(strstr(msg, "too large") || strstr(msg, "full"), "unclear message: %s",
	              msg);
	ck_assert_int_gt(acked, setup_sequence);
	last = check_consistent("after full disk", batch_size);
	ck_assert_int_eq(last, acked);
	close(acks[0]);
	close(report[0]);
}
END_TEST

static Suite *crash_suite(void)
{
	Suite *s = suite_create("sqlite-crash");
	TCase *tc = tcase_create("crash");

	tcase_add_checked_fixture(tc, setup_dir, remove_dir);
	/* a kill, a reopen and a check take up to a second or two on a
	 * loaded machine; CRASH_TIMEOUT overrides */
	tcase_set_timeout(tc, (double)env_long("CRASH_TIMEOUT",
	                                       120 + 3 * env_long("CRASH_KILLS", 50)));
	tcase_add_test(tc, test_sigkill_never_loses_an_acknowledged_batch_nor_keeps_a_partial_one);
	tcase_add_test(tc, test_sigkill_while_threads_share_a_commit_loses_no_acknowledged_batch);
	tcase_add_test(tc, test_sigkill_while_creating_a_store_leaves_an_openable_file);
	tcase_add_test(tc, test_two_processes_on_one_organization_end_with_exact_balances);
	tcase_add_test(tc, test_full_disk_fails_clearly_and_leaves_the_file_consistent);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(crash_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
