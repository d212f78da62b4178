// The repository's lint: correctness and package boundaries, not style. It checks
//   - promises: none left floating, none passed where a void callback is expected;
//   - import cycles (runtime imports; `import type` has no runtime effect and is ignored);
//   - package boundaries: another package only through its package.json "exports", never by a
//     deep `@omega/x/src/...` specifier or a relative path that climbs into it; only
//     packages/cell-state imports etcd3; schedulers never import the node agent.
// Types come from tsconfig.eslint.json, one program over everything linted.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

const root = fileURLToPath(new URL('.', import.meta.url));

// Every specifier another package may import, read from each package.json's "exports" so a new
// export is allowed as soon as it is published.
const packageDirs = [...readdirSync(`${root}packages`).map((name) => `packages/${name}`), 'bench'];
const publicSpecifiers = packageDirs.flatMap((dir) => {
  const manifest = JSON.parse(readFileSync(`${root}${dir}/package.json`, 'utf8'));
  return Object.keys(manifest.exports ?? { '.': null }).map((key) =>
    key === '.' ? manifest.name : `${manifest.name}${key.slice(1)}`,
  );
});
const escape = (text) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** The workspace package (`packages/<name>` or `bench`) a path lies in, or undefined (test/, scripts/). */
function packageOf(file) {
  const parts = relative(root, file).split(sep);
  if (parts[0] === 'packages' && parts.length > 2) return `packages/${parts[1]}`;
  return parts[0] === 'bench' && parts.length > 1 ? 'bench' : undefined;
}

/**
 * A relative specifier that lands in another workspace package (`../packages/api/src/server.js`,
 * `../../cell-state/src/...`): that package's sources are not its public API. Decided on the
 * paths alone, so it needs no resolver; the repository's own test/ and scripts/ are no package.
 */
const noRelativeCrossPackage = {
  meta: { type: 'problem', schema: [], messages: { cross: "'{{spec}}' reaches into {{target}}: import it by its package name (its package.json \"exports\")." } },
  create(context) {
    const from = packageOf(context.physicalFilename);
    const check = (source) => {
      if (source?.type !== 'Literal' || typeof source.value !== 'string' || !source.value.startsWith('.')) return;
      const target = packageOf(resolve(dirname(context.physicalFilename), source.value));
      if (target !== undefined && target !== from) context.report({ node: source, messageId: 'cross', data: { spec: source.value, target } });
    };
    return {
      ImportDeclaration: (node) => check(node.source),
      ExportNamedDeclaration: (node) => check(node.source),
      ExportAllDeclaration: (node) => check(node.source),
      ImportExpression: (node) => check(node.source),
    };
  },
};

/**
 * no-restricted-imports for `import('...')`, which that rule does not look at (lazy loading makes
 * dynamic imports common here). Takes the same `{ paths, patterns }` options, patterns by `regex`.
 */
const noRestrictedDynamicImports = {
  meta: { type: 'problem', schema: [{ type: 'object' }], messages: { restricted: "'{{spec}}' import is restricted from being used. {{message}}" } },
  create(context) {
    const { paths = [], patterns = [] } = context.options[0] ?? {};
    return {
      ImportExpression(node) {
        const spec = node.source.type === 'Literal' ? node.source.value : undefined;
        if (typeof spec !== 'string') return;
        const hit = paths.find((p) => p.name === spec) ?? patterns.find((p) => new RegExp(p.regex).test(spec));
        if (hit !== undefined) context.report({ node: node.source, messageId: 'restricted', data: { spec, message: hit.message } });
      },
    };
  },
};

/** The import restrictions of one part of the tree, static and dynamic (flat config replaces, not merges). */
function restrictedImports({ etcd3, nodeAgent }) {
  const paths = [];
  const patterns = [
    {
      regex: `^@omega/(?!(?:${publicSpecifiers.map((s) => escape(s.slice('@omega/'.length))).join('|')})$)`,
      message: "Import another package through its public entry (its package.json \"exports\"), not a deep path.",
    },
  ];
  if (etcd3) {
    paths.push({ name: 'etcd3', message: 'Only packages/cell-state talks to etcd: use its Kv / store interfaces.' });
  }
  if (nodeAgent) {
    patterns.push({
      regex: '^@omega/node-agent(?:/|$)',
      message: 'Schedulers never import the node agent: they see machines and tasks through cell-state.',
    });
  }
  return { 'no-restricted-imports': ['error', { paths, patterns }], 'omega/no-restricted-dynamic-imports': ['error', { paths, patterns }] };
}

export default defineConfig(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      'coverage/**',
      '.omega/**',
      'bench/results/**',
      'bench/figures/**',
      'docs/**',
      // Browser scripts served by the API's web UI: no Node types, not part of any program.
      'packages/api/ui/**',
      'packages/cli/bin/**',
    ],
  },
  {
    files: ['**/*.ts', '**/*.mts', '**/*.mjs', 'eslint.config.js'],
    // Some files carry disable comments for rules this lint does not turn on (no-explicit-any).
    linterOptions: { reportUnusedDisableDirectives: 'off' },
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { project: './tsconfig.eslint.json', tsconfigRootDir: root },
    },
    plugins: { '@typescript-eslint': tseslint.plugin, 'import-x': importX, omega: { rules: { 'no-relative-cross-package': noRelativeCrossPackage, 'no-restricted-dynamic-imports': noRestrictedDynamicImports } } },
    settings: {
      // import-x reads the modules a file imports to follow cycles; these say which it may parse.
      'import-x/extensions': ['.ts', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: `${root}tsconfig.eslint.json` })],
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // Cycles among our own modules (packages resolve to their sources); node_modules is not walked.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'omega/no-relative-cross-package': 'error',
      ...restrictedImports({ etcd3: true, nodeAgent: false }),
    },
  },
  {
    files: ['packages/cell-state/**'],
    rules: restrictedImports({ etcd3: false, nodeAgent: false }),
  },
  {
    files: ['packages/scheduler-*/**'],
    rules: restrictedImports({ etcd3: true, nodeAgent: true }),
  },
);
