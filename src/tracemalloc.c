/* tracemalloc.c — placeholder until its owner lands it. */
