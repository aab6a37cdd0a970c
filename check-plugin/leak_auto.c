/* leak_auto.c — zero-edit mode: TM_LEAK_FIXTURE on every TCase of an unmodified suite.
 *
 * Check is linked statically, so LD_PRELOAD cannot reach it; -Wl,--wrap=tcase_create (one of the
 * plugin's link flags) sends the suite's calls to leak_names.c, whose wrap adds the fixture when
 * this object is linked: the tracemalloc-check-auto dependency pulls it in with
 * -Wl,-u,tm__leak_auto_fixture (docs/check-internals.md, "Injecting the fixture"). The fixture is
 * added before the suite can add its own, so its window holds them all. A suite that also adds
 * TM_LEAK_FIXTURE itself is judged once: the inner setup reopens the window, the inner teardown
 * judges and closes it, and the outer teardown finds it closed.
 */
extern const int tm__leak_auto_fixture;
const int tm__leak_auto_fixture = 1;
