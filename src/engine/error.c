/* error.c — messages of the runtime's error codes, and the analysis layer's GError domain. */
#include <stdatomic.h>

#include "engine.h"
#include "tracemalloc.h"

const char *tm_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define TM_STRERROR_CASE_(name, value, msg)                                                        \
  case value:                                                                                      \
    return msg;
    TM_ERRNO_MAP(TM_STRERROR_CASE_)
#undef TM_STRERROR_CASE_
  default:
    return "unknown error";
  }
}

G_DEFINE_QUARK(tm-error-quark, tm_error)

/* An out-of-memory error made in advance: reporting that memory ran out must not allocate. */
static GError *_Atomic spare_no_memory;

void tm__error_spare_refill(void) {
  if (atomic_load(&spare_no_memory) != NULL)
    return;
  tm__guard_enter();
  GError *fresh = g_error_new_literal(TM_ERROR, TM_ERROR_NO_MEMORY,
                                      "out of memory: the tracer could not allocate");
  GError *none = NULL;
  if (!atomic_compare_exchange_strong(&spare_no_memory, &none, fresh))
    g_error_free(fresh);
  tm__guard_leave();
}

void tm__error_set_no_memory(GError **error) {
  if (error == NULL || *error != NULL)
    return;
  *error = atomic_exchange(&spare_no_memory, NULL);
}

/* At load time, while memory is plentiful: the quark (whose first use allocates) and the spare. */
__attribute__((constructor)) static void error_init(void) {
  (void)tm_error_quark();
  tm__error_spare_refill();
}
