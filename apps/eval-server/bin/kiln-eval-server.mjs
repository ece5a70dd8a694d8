#!/usr/bin/env node
// Starts the Kiln eval server. Built code lives in dist/ (`pnpm --filter @kiln/eval-server build`).
import { main } from '../dist/main.js';

process.exitCode = await main(process.argv.slice(2));
