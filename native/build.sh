#!/usr/bin/env bash
# Builds the native addon (dist/native/fuseDevice.node): one C file, a C compiler and libc headers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p dist/native
${CC:-cc} -O2 -Wall -Wextra -Werror -fPIC -shared -o dist/native/fuseDevice.node native/fuseDevice.c
