#!/usr/bin/env node
/**
 * `omega`: the command line's entry point. See README.md for the commands.
 */
import { main } from './entry.js';

await main();
