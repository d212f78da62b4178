/**
 * Third-party CommonJS packages the CLI needs only for some commands, loaded on first use with a
 * synchronous `require`: `import` at the top of a module would load them for every command,
 * `--help` included (yaml alone costs tens of milliseconds at start).
 */
import { createRequire } from 'node:module';
import type Table from 'cli-table3';

const require = createRequire(import.meta.url);

let yamlModule: typeof import('yaml') | undefined;
let tableClass: typeof Table | undefined;

/** The `yaml` package (job files, client configs). */
export function yaml(): typeof import('yaml') {
  yamlModule ??= require('yaml') as typeof import('yaml');
  return yamlModule;
}

/** `cli-table3`'s table class (the formatters). */
export function tableConstructor(): typeof Table {
  tableClass ??= require('cli-table3') as typeof Table;
  return tableClass;
}
