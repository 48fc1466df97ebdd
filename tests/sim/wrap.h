/*
 * wrap.h - a pass-through wrapper around any backend ops table that counts
 * operations and can _exit() the process instead of running the k-th one:
 * a crash in the middle of a batch, at a point the seed chooses.  (Faults
 * come from tests/fault_backend.h, stacked under this wrapper.)
 */
#ifndef SIM_WRAP_H
#define SIM_WRAP_H

#include <stdint.h>

#include <zinv/backend.h>


typedef struct sim_wrap sim_wrap;

/* Wrap (ops, instance); on success *out_ops and *out_instance replace them and
 * the wrapper owns the inner instance (closed with it). */
int sim_wrap_new(sim_wrap **out, const inv_backend_ops **out_ops, void **out_instance,
                 const inv_backend_ops *ops, void *instance);

/* _exit(code) instead of running operation number `at` (counted from now);
 * 0 disables. */
void sim_wrap_crash_at(sim_wrap *w, uint64_t at, int code);

uint64_t sim_wrap_ops(const sim_wrap *w);

#endif /* SIM_WRAP_H */
