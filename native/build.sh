#!/usr/bin/env bash
# Builds the native helper (dist/native/threadSignals.node): one C file, a C compiler and libc headers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p dist/native
${CC:-cc} -O2 -Wall -Wextra -Werror -fPIC -shared -o dist/native/threadSignals.node native/threadSignals.c -lpthread
