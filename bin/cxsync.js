#!/usr/bin/env node
// Runs the TypeScript sources through tsx, so `npm ci && npx cxsync` needs no build step.
// The Docker image runs the compiled dist/client/cli.js instead.
require('tsx/cjs');
require('../src/client/cli.ts')
  .main(process.argv)
  .then((code) => process.exit(code));
