#!/usr/bin/env bash
# The NEON micro-kernels, proven without an ARM machine: cross-compile them with
# wheels/kernel_check.c for aarch64 (the flags setup.py gives GCC there), run every NEON
# kernel against the portable kernel and a naive loop under qemu-aarch64, and show from
# the disassembly what each inner loop keeps in registers (wheels/inner_loops.py).
#
#   bash wheels/check_aarch64.sh        # installs the tools with apt-get when missing
#
# Needs aarch64-linux-gnu-gcc and qemu-aarch64 (Debian/Ubuntu: gcc-aarch64-linux-gnu,
# qemu-user).  Exits non-zero on any mismatch, or when the tools are missing and cannot
# be installed.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc=aarch64-linux-gnu-gcc
sysroot=/usr/aarch64-linux-gnu

if ! command -v "$cc" >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    if ! command -v apt-get >/dev/null; then
        echo "check_aarch64: $cc and qemu-aarch64 are missing and there is no apt-get" >&2
        exit 1
    fi
    echo "+ apt-get install -y gcc-aarch64-linux-gnu qemu-user"
    $sudo apt-get install -y -qq gcc-aarch64-linux-gnu qemu-user >/dev/null \
        || { $sudo apt-get update -qq && $sudo apt-get install -y -qq gcc-aarch64-linux-gnu qemu-user >/dev/null; }
fi

# the extension's flags on aarch64 with GCC (setup.py: optimise, kernel_flags)
flags=(-O3 -fno-schedule-insns -Wall -Wno-unused-function -I"$repo/_ext/kernels")
echo "+ $cc ${flags[*]} wheels/kernel_check.c"
"$cc" "${flags[@]}" "$repo/wheels/kernel_check.c" -lm -o "$work/kernel_check"
echo "+ qemu-aarch64 -L $sysroot kernel_check"
qemu-aarch64 -L "$sysroot" "$work/kernel_check"
# and the portable kernels' plain loops (MSVC's) against the same NEON kernels
"$cc" "${flags[@]}" -DDC3_PLAIN_LOOPS "$repo/wheels/kernel_check.c" -lm -o "$work/plain_check"
echo "+ qemu-aarch64 -L $sysroot kernel_check (portable kernels as plain loops)"
qemu-aarch64 -L "$sysroot" "$work/plain_check"

echo "+ aarch64-linux-gnu-objdump -d: the NEON kernels' inner loops"
aarch64-linux-gnu-objdump -d --no-show-raw-insn "$work/kernel_check" > "$work/kernels.s"
python3 "$repo/wheels/inner_loops.py" "$work/kernels.s" _neon
