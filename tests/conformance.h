/*
 * conformance.h - the storage backend conformance suite.
 *
 * One Check suite that any backend (the built-in memory backend, SQLite, a
 * user's own) must pass.  Test case "ops" calls <zinv/backend.h> directly:
 * records round-trip, INV_ENOTFOUND rules, scans and their filters and
 * early stop, journal order/limit/trim, batch forms agree with single ones,
 * rollback discards every kind of write, commit keeps them, a reader never
 * sees an open write, durability across reopen (with `reopen`), and a
 * transaction failing at any operation (fault_backend.h) or, with
 * `fail_alloc`, at any allocation leaves exactly the state before it.
 * Test case "core" opens a store on the backend (inv_store_open) and checks
 * that a batch, set-balance, tracking stop, low-stock set and journal trim
 * failing at any backend operation change no stored record and nothing the
 * API reports, that the backend's message reaches inv_error_last(), and
 * that the same call then succeeds as in a clean run.
 *
 * Suites fork per test by default; CK_FORK=no runs them in one process.
 *
 * Usage, in a tests/check_<backend>.c:
 *
 *	static int open_mine(const inv_backend_ops **ops, void **inst, void *ctx)
 *	{
 *		*ops = my_backend_ops();
 *		return my_backend_new(inst);
 *	}
 *	static const struct inv_conformance_target mine = { .open = open_mine };
 *	...
 *	srunner_add_suite(sr, inv_conformance_suite("mine", &mine));
 */
#ifndef ZINV_TESTS_CONFORMANCE_H
#define ZINV_TESTS_CONFORMANCE_H

#include <check.h>
#include <zinv.h>
#include <zinv/backend.h>

struct inv_conformance_target {
	/* Mandatory: open a fresh, empty backend instance.  Called once per
	 * test (in the test's own process when Check forks). */
	int (*open)(const inv_backend_ops **ops, void **instance, void *ctx);

	/* Optional, for durable backends: close *instance and open the same
	 * storage again, returning the new instance in *instance.  The suite
	 * then checks that committed data survived and rolled-back data did
	 * not.  NULL: persistence tests are skipped. */
	int (*reopen)(const inv_backend_ops **ops, void **instance, void *ctx);

	/* Optional: release an instance from open()/reopen() and whatever
	 * storage it used (temporary files).  NULL: ops->close(instance). */
	void (*close)(const inv_backend_ops *ops, void *instance, void *ctx);

	/* Passed to the functions of this struct. */
	void *ctx;

	/* Optional: make the k-th memory allocation of `instance` from now
	 * fail (k == 0 disarms), for backends that can.  The suite then
	 * proves that INV_ENOMEM at any allocation of a write transaction
	 * leaves, after rollback, exactly the state before it. */
	int (*fail_alloc)(const inv_backend_ops *ops, void *instance, uint64_t k, void *ctx);
};

/*
 * A suite named `name` running every conformance test against `target`.
 * The target is copied; a program may build suites for several targets
 * (at most 16).
 */
Suite *inv_conformance_suite(const char *name, const struct inv_conformance_target *target);

#endif /* ZINV_TESTS_CONFORMANCE_H */
