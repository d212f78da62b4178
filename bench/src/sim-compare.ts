/**
 * Comparing two simulation results number by number: a simulation is a pure function of its
 * config, so the same seed must give the same result whatever changed in how fast it runs.
 */

/**
 * Where two results differ: the path and both values of every number (or string, or missing key)
 * that is not the same, sorted by path; the wall time (`.wallMs` at the top) is left out.
 */
export function resultDifferences(a: unknown, b: unknown, path = ''): string[] {
  if (path === '.wallMs') return [];
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b) || (a === null) !== (b === null)) return [`${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`];
  if (a !== null && typeof a === 'object') {
    const x = a as Record<string, unknown>;
    const y = b as Record<string, unknown>;
    return [...new Set([...Object.keys(x), ...Object.keys(y)])].sort().flatMap((k) => resultDifferences(x[k], y[k], `${path}.${k}`));
  }
  return Object.is(a, b) ? [] : [`${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`];
}
