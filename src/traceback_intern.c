/* traceback_intern.c — placeholder until its owner lands it. */
