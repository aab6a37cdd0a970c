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

status=0
for fork in yes no; do
  for case in "check_money:Limits:test_money_create_zero:0: leaked 16 B in 1 block (allowed 0 B)" \
              "check_stack:Core:test_push_pop_forgets:0: leaked 56 B in 2 blocks (allowed 0 B)"; do
    exe=${case%%:*}
    line=${case#*:}
    if CK_FORK=$fork CK_VERBOSITY=normal "$out/$exe" 2>/dev/null | grep -qF ":S:$line"; then
      echo "ok: $exe CK_FORK=$fork"
    else
      echo "FAIL: $exe CK_FORK=$fork: no ':S:$line' in:"
      CK_FORK=$fork "$out/$exe" 2>&1 || true
      status=1
    fi
  done
done
# Built without -g, as above: the message names the function and says what is missing, and
# Check's location is the test's START_TEST line (Check records it; no debug info needed).
want='check_money\.c:[0-9]+:S:Limits:test_money_create_zero:0: leaked 16 B in 1 block \(allowed 0 B\): '
want="${want}a 16 B block in money_create\(\) \(no line number: no debug info for it in check_money\), "
want="${want}called from test_money_create_zero_fn\(\); full report on stderr"
for fork in yes no; do
  if CK_FORK=$fork CK_VERBOSITY=normal "$out/check_money" 2>/dev/null | grep -qE "$want"; then
    echo "ok: check_money without debug info CK_FORK=$fork"
  else
    echo "FAIL: check_money without debug info CK_FORK=$fork: no match for '$want' in:"
    CK_FORK=$fork "$out/check_money" 2>&1 || true
    status=1
  fi
done
exit $status
