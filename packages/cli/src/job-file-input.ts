/**
 * Reading a job file named on the command line (`-f path`, `-` for stdin) and turning it into a
 * spec to send: parsed (job-file.ts), its namespace reconciled with `--namespace`, and its secret
 * env values read last, after every other check (a bad file never makes us touch a secret).
 * Shared by `omega submit` and `omega update`.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { JobSpec } from '@omega/cell-state/vocabulary';
import type { CliIo } from './command-context.js';
import { CliError, EXIT_USAGE } from './errors.js';
import { JobFileError, parseJobDocument } from './job-file.js';
import { resolveSecretEnv } from './secret-env.js';

/** The text of a job file, or stdin for `-`; a CliError naming the file when it cannot be read. */
export async function readJobFile(path: string, cwd: string): Promise<string> {
  try {
    if (path === '-') {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    }
    return await readFile(resolve(cwd, path), 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(`cannot read job file ${path}: ${code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
}

/**
 * The spec and secret env values of a job file. Like kubectl -n, `namespace` (the flag) fills in
 * a file without `namespace:` and must agree with one that has it.
 */
export async function loadJobFile(path: string, namespace: string | undefined, io: CliIo, cwd: string): Promise<{ spec: JobSpec; secretEnv: Readonly<Record<string, string>> }> {
  const text = await readJobFile(path, cwd);
  try {
    const parsed = parseJobDocument(text, path);
    let spec = parsed.spec;
    if (namespace !== undefined) {
      if (parsed.namespaceGiven && parsed.spec.namespace !== namespace) throw new CliError(`--namespace ${namespace} contradicts ${path}: namespace: ${parsed.spec.namespace}`, EXIT_USAGE);
      spec = { ...spec, namespace };
    }
    const secretEnv = resolveSecretEnv(parsed.secretEnv, spec, { env: io.env, baseDir: path === '-' ? cwd : dirname(resolve(cwd, path)) }, path);
    return { spec, secretEnv };
  } catch (error) {
    if (error instanceof JobFileError) throw new CliError(error.message);
    throw error;
  }
}
