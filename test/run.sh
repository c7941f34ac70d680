#!/usr/bin/env bash
# The whole test suite: real git, a real smart-HTTP git server on loopback, real FUSE mounts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source test/prerequisites.sh
source test/testTools.sh
exec node --test --test-concurrency=1 $(find dist/test -name '*.test.js' | sort)
