/**
 * Small Markdown and number formatting helpers for the reports: tables with aligned columns,
 * numbers rounded for people (full precision stays in result.json).
 */

/** A Markdown table; cells are escaped for `|`. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const lines = [`| ${headers.map(esc).join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${row.map(esc).join(' | ')} |`);
  return `${lines.join('\n')}\n`;
}

/** A fraction with 3 significant decimals (0.0123 -> `0.0123`, 0.5 -> `0.500`). */
export function frac(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  if (Math.abs(v) < 0.001) return v.toExponential(1);
  if (Math.abs(v) < 0.1) return v.toFixed(4);
  return v.toFixed(3);
}

/** Percent with one decimal. */
export function pct(v: number): string {
  return `${(v * 100).toFixed(1)}%`;
}

/** Milliseconds as a readable duration: `850 ms`, `12.3 s`, `4.2 min`, `3.1 h`. */
export function ms(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v < 1000) return `${v.toFixed(v < 10 ? 1 : 0)} ms`;
  if (v < 120_000) return `${(v / 1000).toFixed(1)} s`;
  if (v < 7_200_000) return `${(v / 60_000).toFixed(1)} min`;
  return `${(v / 3_600_000).toFixed(1)} h`;
}

/** An integer with thousands separators. */
export function int(v: number): string {
  return Math.round(v).toLocaleString('en-US');
}

/** Seconds for sweep coordinates: `0.01`, `10`. */
export function sec(v: number): string {
  return `${v}`;
}
