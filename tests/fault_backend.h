/*
 * fault_backend.h - a backend wrapper that fails the k-th operation.
 *
 * Wraps any backend and forwards every operation to it, counting them; when
 * told to, it fails the k-th operation from now with INV_EBACKEND and a
 * message through inv_backend_error(), without calling the wrapped backend.
 * Counted operations: begin, commit and every data operation (a batch
 * get_many/put_many counts once); not rollback (it cannot fail), close or
 * control.  A failed commit rolls the wrapped transaction back and ends the
 * transaction, as a real commit failure does.
 *
 * Used by the conformance suite to prove that a batch failing at any
 * storage operation leaves the stored state exactly as it was.
 */
#ifndef ZINV_TESTS_FAULT_BACKEND_H
#define ZINV_TESTS_FAULT_BACKEND_H

#include <stdint.h>
#include <zinv/backend.h>

/*
 * Wrap (inner_ops, inner_instance).  On success *ops_out and *instance_out
 * form a backend that owns the inner instance (its close closes both).  On
 * failure the caller still owns the inner instance.  The wrapper keeps the
 * inner's optional members: a NULL one stays NULL.
 */
int inv_fault_backend_wrap(const inv_backend_ops **ops_out, void **instance_out,
                           const inv_backend_ops *inner_ops, void *inner_instance);

/* Close the inner instance with `close_fn(inner_ops, inner_instance, ctx)`
 * instead of inner_ops->close, when the wrapper is closed. */
void inv_fault_backend_on_close(void *instance,
                                void (*close_fn)(const inv_backend_ops *ops, void *inner,
                                                 void *ctx),
                                void *ctx);

/* Fail the k-th counted operation from now (1 = the next one) with `code`
 * (INV_EBACKEND when 0).  k == 0 disarms.  One shot: later operations pass. */
void inv_fault_backend_fail_at(void *instance, uint64_t k, int code);

/* Counted operations since the wrap or the last reset (which disarms). */
uint64_t inv_fault_backend_count(void *instance);
void inv_fault_backend_reset_count(void *instance);

/* Release the wrapper only, leaving the inner instance open (for a target
 * whose own close function must close it). */
void inv_fault_backend_free(void *instance);

/* 1 when an armed fault has fired, and the name of the failed operation
 * ("variant_put", "commit", ...) or NULL. */
int inv_fault_backend_fired(void *instance, const char **op_name);

#endif /* ZINV_TESTS_FAULT_BACKEND_H */
