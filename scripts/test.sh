#!/usr/bin/env bash
# The whole test suite on a fresh Debian/Ubuntu machine: installs what the tests
# run against (the CNCF Distribution registry, skopeo, openssl), installs the
# pinned dependencies (Node 24 among them), checks dist/ is current, runs Jest.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing ${missing[*]} from Debian/Ubuntu packages"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

npm ci --no-audit --no-fund --loglevel=error
# npm puts node_modules/.bin first on PATH for scripts: Node 24 from the `node` package runs everything below.
echo "Node for build and tests: $(npm exec --offline -- node --version)"

# Types (src, tests, scripts, bench) are checked by the build; lint is ESLint's type-checked rules and Prettier.
npm run --silent lint
npm run --silent build
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && ! git diff --quiet -- dist; then
  git --no-pager diff --stat -- dist
  echo "dist/ is stale: run 'npm run build' and commit dist/ with the src/ change." >&2
  exit 1
fi

fast=$(mktemp)
soak=$(mktemp)
status=0
# --forceExit: a server a failing test forgot to stop must not hold CI until its time limit.
npm test -- --forceExit --json --outputFile="$fast" "$@" || status=$?
# The fault-injection soak (~4 minutes) has its own script, so a developer's `npm test` stays fast; CI runs both.
if [ $# -eq 0 ]; then
  npm run test:soak -- --forceExit --json --outputFile="$soak" || status=$?
fi
node -e '
  const fs = require("fs");
  const runs = process.argv.slice(1).filter((f) => fs.statSync(f).size > 0).map((f) => JSON.parse(fs.readFileSync(f, "utf8")));
  const sum = (k) => runs.reduce((n, r) => n + r[k], 0);
  console.log(`${sum("numPassedTests")} passed, ${sum("numFailedTests")} failed, ${sum("numPendingTests") + sum("numTodoTests")} skipped`);
' "$fast" "$soak" || true
rm -f "$fast" "$soak"
exit $status
