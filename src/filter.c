/* filter.c — placeholder until its owner lands it. */
