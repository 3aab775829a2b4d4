#!/usr/bin/env bash
# Build deconv3d's compiled core with AddressSanitizer + UndefinedBehaviorSanitizer in a
# temporary copy of the source tree (never in place) and run the tests against it.
#
#   tests/sanitize.sh                               # the whole suite
#   tests/sanitize.sh tests/fuzz -x                 # any pytest arguments: a subset
#   PYTHON=/path/to/venv/bin/python tests/sanitize.sh
#   KEEP=1 tests/sanitize.sh                        # keep the temporary tree (and logs)
#
# Needs gcc (or clang: CC=clang) with libasan/libubsan, Cython, NumPy, setuptools and
# pytest in $PYTHON's environment.  Exits non-zero when the tests fail *or* when any
# sanitizer report was written (reports go to one log file per process, so a report in a
# subprocess -- e.g. a fuzz worker -- is counted even if its test expected the crash).
#
# Settings, and why:
#  * -O1 -g -fno-omit-frame-pointer: readable stacks; the compiler wrapper puts the
#    flags last so that they win over setup.py's -O3.
#  * -fno-sanitize-recover=undefined + UBSAN_OPTIONS=halt_on_error=1: the first UB stops
#    the process with a report (UBSan otherwise prints and carries on).
#  * LD_PRELOAD=libasan (then libstdc++): the Python interpreter is not instrumented, so
#    the ASan runtime must be loaded before everything else; libstdc++ right after it,
#    or ASan's __cxa_throw interceptor finds no real __cxa_throw when a C++ extension
#    loaded later (jaxlib, torch) throws, and aborts with "CHECK failed".
#  * One log file per process and sanitizer (log_path), so that a report in a subprocess
#    -- a fuzz worker, a known-bug reproducer -- is counted too.  GCC's UBSan runtime,
#    when combined with ASan, ignores UBSAN_OPTIONS=log_path and writes to stderr (GCC
#    bug 94328); a tiny preloaded shim (built below) sets the UBSan runtime's own report
#    path instead.
#  * detect_leaks=0: CPython and NumPy deliberately keep objects alive until exit (interned
#    strings, type caches, ...); LeakSanitizer would report those, not deconv3d.  Leaks of
#    the core are instead measured by tests/layer/test_memory.py (resident memory over repeated
#    calls) and by tests/valgrind.sh (definite leaks, attributed by stack).
#  * allocator_may_return_null=1: some tests check that an impossible allocation becomes a
#    Python error (NumPy's MemoryError, the core's NULL check); without it ASan aborts on
#    any request larger than its maximum instead of returning NULL as malloc does.  ASan
#    still logs a "WARNING: failed to allocate" for each: such warning-only logs are
#    listed, not counted as reports.
#  * DECONV3D_SANITIZER is exported: tests that measure resident memory skip, and the
#    fuzz test skips inputs that hit known undefined behaviour (see tests/fuzz/)
#    so that one known report does not stop a whole batch.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
cc=${CC:-gcc}
work=$(mktemp -d "${TMPDIR:-/tmp}/deconv3d-sanitize.XXXXXX")
if [[ -z "${KEEP:-}" ]]; then
    trap 'rm -rf "$work"' EXIT
else
    echo "sanitize.sh: keeping $work"
fi

# 1. a copy of the sources (what an sdist holds), without anything built
mkdir -p "$work/src" "$work/bin" "$work/logs"
(cd "$root" && tar -cf - --exclude='__pycache__' --exclude='*.so' --exclude='*.pyd' \
    --exclude='*.o' --exclude='_build_info.json' --exclude='_ext/_core.c' \
    setup.py pyproject.toml README.md LICENSE MANIFEST.in _ext deconv3d tests) \
    | tar -C "$work/src" -xf -

# 2. a compiler wrapper that appends the sanitizer flags after setup.py's own
sanitize_flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
cat > "$work/bin/cc" <<EOF
#!/bin/sh
exec $cc "\$@" $sanitize_flags
EOF
chmod +x "$work/bin/cc"

echo "sanitize.sh: building in $work/src with $cc $sanitize_flags"
(cd "$work/src" && CC="$work/bin/cc" LDSHARED="$work/bin/cc -shared" DECONV3D_OPENMP=1 \
    "$python" setup.py -q build_ext --inplace) > "$work/logs/build.log" 2>&1 || {
    cat "$work/logs/build.log"; echo "sanitize.sh: build failed" >&2; exit 2; }

# the runtime the instrumented extension needs, loaded first; libstdc++ right after it,
# or ASan's __cxa_throw interceptor finds no real __cxa_throw when a C++ extension that
# is loaded later (jaxlib, torch) throws, and aborts with "CHECK failed"
libasan=$("$cc" -print-file-name=libasan.so)
libstdcxx=$("$cc" -print-file-name=libstdc++.so.6)
if [[ ! -e "$libasan" ]]; then
    echo "sanitize.sh: $cc has no libasan.so" >&2
    exit 2
fi
preload=$libasan
[[ -e "$libstdcxx" ]] && preload="$preload:$libstdcxx"

# the shim that sends GCC's UBSan reports to log files (see above)
libubsan=$("$cc" -print-file-name=libubsan.so)
if [[ -e "$libubsan" ]]; then
    cat > "$work/bin/ubsan_log.c" <<'EOF'
#include <dlfcn.h>
#include <stdlib.h>
/* Point the UBSan runtime's own copy of sanitizer_common at DECONV3D_UBSAN_LOG. */
__attribute__((constructor)) static void deconv3d_ubsan_log(void)
{
    const char *path = getenv("DECONV3D_UBSAN_LOG");
    const char *runtime = getenv("DECONV3D_UBSAN_RUNTIME");
    void *ubsan;
    void (*set_path)(const char *);
    if (!path || !runtime || !(ubsan = dlopen(runtime, RTLD_NOW | RTLD_GLOBAL)))
        return;
    set_path = (void (*)(const char *))dlsym(ubsan, "__sanitizer_set_report_path");
    if (set_path)
        set_path(path);
}
EOF
    "$cc" -shared -fPIC -O1 "$work/bin/ubsan_log.c" -o "$work/bin/ubsan_log.so" -ldl
    preload="$preload:$work/bin/ubsan_log.so"
    export DECONV3D_UBSAN_LOG="$work/logs/ubsan" DECONV3D_UBSAN_RUNTIME="$libubsan"
fi
linked=$(ldd "$work/src"/deconv3d/_core*.so)
if [[ "$linked" != *asan* ]]; then
    echo "sanitize.sh: the extension was not built with ASan" >&2
    exit 2
fi

# 3. the tests, from the copy (python -m pytest puts the copy first on sys.path)
export LD_PRELOAD="$preload${LD_PRELOAD:+:$LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=0:exitcode=86:log_path=$work/logs/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87:log_path=$work/logs/ubsan"
export DECONV3D_SANITIZER=address,undefined   # see the last bullet above
export PYTHONDONTWRITEBYTECODE=1
set +e
(cd "$work/src" && "$python" -c "import deconv3d, sys; print('sanitize.sh: testing', deconv3d.__file__)" \
    && "$python" -m pytest -p no:cacheprovider -q "${@:-tests}")
status=$?
set -e

# a log counts as a report when it holds an error; ASan's allocation warnings do not
reports=() notes=()
for log in $(find "$work/logs" \( -name 'asan.*' -o -name 'ubsan.*' \) | sort); do
    if grep -q -E 'ERROR: |runtime error|SUMMARY: ' "$log"; then
        reports+=("$log")
    else
        notes+=("$log")
    fi
done
count=${#reports[@]}
echo "sanitize.sh: pytest exit status $status; sanitizer reports: $count"
for log in ${notes[@]+"${notes[@]}"}; do
    echo "---- (not a report) $log: $(sort -u "$log" | head -3 | tr '\n' ' ')"
done
for report in ${reports[@]+"${reports[@]}"}; do
    echo "---- $report"
    grep -E 'ERROR: |runtime error|SUMMARY' "$report" | head -5
    grep -E '^ +#[0-9]+ ' "$report" | grep -v -E 'libasan|libubsan' | head -8
done
if [[ $count -gt 0 ]]; then
    [[ -n "${KEEP:-}" ]] || echo "sanitize.sh: run with KEEP=1 to keep the full reports"
    exit 3
fi
exit $status
