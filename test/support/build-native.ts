/**
 * Vitest global setup: builds the node agent's native task supervisor (a no-op when it is newer
 * than its source), so `npx tsc -b && npx vitest run ...` runs the agent with a current binary.
 * A failed build is reported loudly but does not stop the run: only tests that start real tasks
 * need the binary, and they then fail naming what is missing.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const script = fileURLToPath(new URL('../../packages/node-agent/scripts/build-supervisor.mjs', import.meta.url));
  const result = spawnSync(process.execPath, [script], { stdio: 'inherit' });
  if (result.status !== 0) console.warn(`WARNING: building the task supervisor failed (${script} exited ${String(result.status)}): tests that run real tasks will fail`);
}
