/* error.c — messages of the runtime's error codes, and the analysis layer's GError domain. */
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
