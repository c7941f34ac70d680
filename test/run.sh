#!/usr/bin/env bash
# The whole test suite: real git, a real smart-HTTP git server on loopback, real FUSE mounts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source test/prerequisites.sh
source test/testTools.sh
# A hung test fails after 10 minutes, and a test file that leaves a handle open still exits:
# neither can hold CI until its own deadline.
exec node --test --test-concurrency=1 --test-timeout=600000 --test-force-exit $(find dist/test -name '*.test.js' | sort)
