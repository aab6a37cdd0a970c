#!/bin/sh
# Links the money and zero-edit examples as users do, with nothing but
#   cc ... $(pkg-config --cflags --libs tracemalloc-check[-auto])
# (no -g: the verdict must still name the function that allocated)
# against the build tree's uninstalled .pc files, and checks each leak verdict: it must link and
# work as users will link it (Debian ships Check as static archives only).
# Usage: pkgconfig_link.sh BUILD_ROOT EXAMPLES_SOURCE_DIR
set -eu
build=$1
examples=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export PKG_CONFIG_PATH="$build/meson-uninstalled"
rpath="-Wl,-rpath,$build/src"
# A sanitizer build's static archives need the same -fsanitize at link time (meson passes it).
extra=${TM_SANITIZE_FLAGS:-}

cc -o "$out/check_money" "$examples/money/money.c" "$examples/money/check_money.c" \
  $(pkg-config --cflags --libs tracemalloc-check) $rpath $extra
cc -o "$out/check_stack" "$examples/zero-edit/stack.c" "$examples/zero-edit/check_stack.c" \
  $(pkg-config --cflags --libs tracemalloc-check-auto) $rpath $extra

# The same suite built by clang with -g, linked with the gcc-built plugin: clang's units have no
# .debug_aranges, gcc's do, and the lines of clang's code must still be found. Not in a sanitizer
# build, whose archives need gcc's runtime.
clang_built=no
if [ -z "$extra" ] && command -v clang >/dev/null 2>&1; then
  clang -g -O2 -o "$out/check_money_clang" "$examples/money/money.c" \
    "$examples/money/check_money.c" $(pkg-config --cflags --libs tracemalloc-check) $rpath
  clang_built=yes
fi

status=0
# expect EXE FORK GREP_OPTION PATTERN: some line EXE prints in that fork mode matches PATTERN
# (grep -F: a fixed string, grep -E: an extended regular expression).
expect() {
  if CK_FORK=$2 CK_VERBOSITY=normal "$out/$1" 2>/dev/null | grep -q "$3" -- "$4"; then
    echo "ok: $1 CK_FORK=$2"
  else
    echo "FAIL: $1 CK_FORK=$2: no match for '$4' in:"
    CK_FORK=$2 "$out/$1" 2>&1 || true
    status=1
  fi
}
# Built without -g, as above: the message names the function and says what is missing, and
# Check's location is the test's START_TEST line (Check records it; no debug info needed).
want='check_money\.c:[0-9]+:S:Limits:test_money_create_zero:0: leaked 16 B in 1 block \(allowed 0 B\): '
want="${want}a 16 B block in money_create\(\) \(no line number: no debug info for it in check_money\), "
want="${want}called from test_money_create_zero_fn\(\); full report on stderr"
for fork in yes no; do
  expect check_money $fork -E "$want"
  expect check_stack $fork -F ":S:Core:test_push_pop_forgets:0: leaked 56 B in 2 blocks (allowed 0 B)"
done
want='money/money\.c:16:S:Limits:test_money_create_zero:0: leaked 16 B in 1 block \(allowed 0 B\): '
want="${want}a 16 B block at [^ ]*money/money\.c:16 in money_create\(\) called from "
want="${want}[^ ]*money/check_money\.c:[0-9]+; full report on stderr"
if [ $clang_built = yes ]; then
  for fork in yes no; do
    expect check_money_clang $fork -E "$want"
  done
else
  echo "clang not installed or a sanitizer build: the clang-built suite is not checked"
fi
exit $status
