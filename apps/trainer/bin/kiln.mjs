#!/usr/bin/env node
// The `kiln` command. Built code lives in dist/ (run `pnpm --filter @kiln/trainer build`).
import { main } from '../dist/cli.js';

const code = await main(process.argv.slice(2));
// Let stdout drain before exiting so piped output is complete.
process.stdout.write('', () => process.exit(code));
