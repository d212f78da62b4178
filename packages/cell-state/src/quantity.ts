/**
 * Human quantities to integer resources: `64Mi`, `2G`, `512` (bytes); `0.5`, `500m`, `2` (CPU).
 * Used by the CLI, job files and test builders.
 */

const BYTE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

/** Parses a memory quantity into bytes; throws with the offending text when it is not one. */
export function parseBytes(text: string | number): number {
  if (typeof text === 'number') {
    if (!Number.isSafeInteger(text) || text < 0) throw new Error(`memory: ${text} is not a whole number of bytes`);
    return text;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKMGT]i?|)B?\s*$/.exec(text);
  const unit = m === null ? undefined : BYTE_UNITS[m[2] ?? ''];
  if (m === null || unit === undefined) throw new Error(`memory: ${JSON.stringify(text)} is not a quantity like 64Mi, 2G or 1048576`);
  const bytes = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new Error(`memory: ${JSON.stringify(text)} is too large`);
  return bytes;
}

/** Parses a CPU quantity into millicores: `500m`, `0.5`, `2`. */
export function parseCpuMillis(text: string | number): number {
  const m = typeof text === 'number' ? [String(text), String(text), ''] : /^\s*(\d+(?:\.\d+)?)\s*(m?)\s*$/.exec(text);
  if (m === null || !Number.isFinite(Number(m[1]))) throw new Error(`cpu: ${JSON.stringify(text)} is not a quantity like 0.5, 500m or 2`);
  const millis = m[2] === 'm' ? Number(m[1]) : Number(m[1]) * 1000;
  if (!Number.isInteger(millis) || millis < 0) throw new Error(`cpu: ${JSON.stringify(text)} is not a whole number of millicores`);
  return millis;
}

/** Formats bytes for people: `64Mi`, `1.5Gi`. */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ['Ti', 1024 ** 4],
    ['Gi', 1024 ** 3],
    ['Mi', 1024 ** 2],
    ['Ki', 1024],
  ] as const) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(2))}${unit}`;
  }
  return `${bytes}`;
}

/** Formats millicores for people: `500m`, `2`. */
export function formatCpu(millis: number): string {
  return millis % 1000 === 0 ? String(millis / 1000) : `${millis}m`;
}
