/**
 * Reads a job file's secret env values from where the file says they are, just before a submit,
 * so secrets need not sit in the YAML:
 *
 * ```yaml
 * secretEnv:
 *   DB_PASSWORD: {fromEnv: DB_PASSWORD}    # the submitter's environment variable
 *   TLS_KEY:     {fromFile: ./tls.key}     # a file, relative to the job file's directory
 *   API_KEY:     literal-value             # in the file itself (fine for tests)
 * ```
 *
 * A file's content is taken as is except for one trailing newline (`\n` or `\r\n`), which editors
 * and `echo` add and which is almost never part of a secret. Values are checked with cell-state's
 * `secretEnvProblems` (the server's own rules); no error ever quotes a value.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { secretEnvProblems, type JobSpec } from '@omega/cell-state/vocabulary';
import { JobFileError, fileField, type SecretEnvSource } from './job-file.js';

/** Where relative `fromFile` paths start and which environment `fromEnv` reads. */
export interface SecretEnvContext {
  readonly env: NodeJS.ProcessEnv;
  /** The job file's directory (the working directory for a job file read from stdin). */
  readonly baseDir: string;
}

/**
 * The secret values by name, read from their sources. Throws {@link JobFileError} (prefixed by
 * `source`, the job file's name) listing every value that could not be read or is not allowed.
 */
export function resolveSecretEnv(sources: Readonly<Record<string, SecretEnvSource>>, spec: Pick<JobSpec, 'task'>, context: SecretEnvContext, source: string): Record<string, string> {
  const values: Record<string, string> = {};
  const problems: string[] = [];
  for (const [name, from] of Object.entries(sources)) {
    switch (from.kind) {
      case 'value':
        values[name] = from.value;
        break;
      case 'env': {
        const value = context.env[from.name];
        if (value === undefined) problems.push(`secretEnv.${name}.fromEnv: $${from.name} is not set`);
        else values[name] = value;
        break;
      }
      case 'file': {
        const path = resolve(context.baseDir, from.path);
        try {
          values[name] = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (error as Error).message;
          problems.push(`secretEnv.${name}.fromFile: ${why} (${path})`);
        }
        break;
      }
    }
  }
  for (const p of secretEnvProblems(values, spec)) problems.push(`${fileField(p.field)}: ${p.problem}`);
  if (problems.length > 0) throw new JobFileError(source, problems);
  return values;
}
