#!/usr/bin/env bash
# Proves the testkit's container mode: starts podman's Docker API (scripts/container-engine.sh),
# then runs the testkit's container tests and the e2e smoke suite with REDIS_TESTKIT_MODE=container,
# so the suite's shared Redis is a container. Fails, never skips, when the engine cannot start.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
env_lines="$(scripts/container-engine.sh start)" || { echo "container mode: the engine did not start (see above)" >&2; exit 1; }
eval "$env_lines"
trap 'scripts/container-engine.sh stop' EXIT
export REDIS_TESTKIT_MODE=container
echo "container mode: $DOCKER_HOST, image $REDIS_IMAGE, pulls forbidden" >&2
vitest run --project testkit test/container.test.ts
vitest run --project e2e e2e/smoke
