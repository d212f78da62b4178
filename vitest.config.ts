import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests import packages by name; resolve them to their TypeScript sources so a test run never
// depends on a stale build. Processes that tests spawn run the built `dist/` instead.
const packagesDir = fileURLToPath(new URL('./packages/', import.meta.url));
const alias = [
  // The metrics seam alone (no prom-client): what libraries that only record import.
  { find: '@omega/metrics/seam', replacement: `${packagesDir}metrics/src/metrics.ts` },
  // Light entries for clients that must start fast (the omega command).
  { find: '@omega/cell-state/vocabulary', replacement: `${packagesDir}cell-state/src/vocabulary.ts` },
  { find: '@omega/api/wire', replacement: `${packagesDir}api/src/wire/index.ts` },
  ...readdirSync(packagesDir).flatMap((name) => [
    { find: `@omega/${name}/testing`, replacement: `${packagesDir}${name}/src/testing/index.ts` },
    { find: `@omega/${name}/client`, replacement: `${packagesDir}${name}/src/client.ts` },
    { find: `@omega/${name}`, replacement: `${packagesDir}${name}/src/index.ts` },
  ]),
  { find: '@omega/bench', replacement: fileURLToPath(new URL('./bench/src/index.ts', import.meta.url)) },
];

export default defineConfig({
  resolve: { alias },
  test: {
    // Processes that tests spawn run the node agent, which needs its native task supervisor.
    globalSetup: ['./test/support/build-native.ts'],
    projects: [
      {
        resolve: { alias },
        test: { name: 'unit', include: ['packages/*/src/**/*.test.ts', 'bench/src/**/*.test.ts'], testTimeout: 30_000 },
      },
      {
        resolve: { alias },
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 60_000,
          // Integration suites start etcd and child processes: run files one at a time on a
          // 2-core machine so timings stay sane.
          fileParallelism: false,
        },
      },
    ],
  },
});
