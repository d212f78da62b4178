/**
 * Progress of a long run, said before each step: `[3/12, 25%, about 2m10s left]`. The estimate
 * is the mean time of the steps done so far times the steps left (none before the first step
 * ends): steps of one sweep take roughly as long as each other, and a run that says nothing for
 * minutes looks hung.
 */
export class Progress {
  private done = 0;
  private readonly startedAt: number;

  constructor(
    private readonly total: number,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
  }

  /** Notes one more step done. */
  step(): void {
    this.done = Math.min(this.total, this.done + 1);
  }

  /** `[3/12, 16% done, about 2m left]` for the step about to start (the third). */
  starting(): string {
    return this.format(Math.min(this.total, this.done + 1));
  }

  /** `[3/12, 25% done, about 1m50s left]` once the third step ended ({@link step} called). */
  finished(): string {
    return this.format(this.done);
  }

  private format(shown: number): string {
    const pct = this.total === 0 ? 100 : Math.floor((this.done / this.total) * 100);
    const left = this.done === 0 || this.done === this.total ? '' : `, about ${formatDuration(((this.now() - this.startedAt) / this.done) * (this.total - this.done))} left`;
    return `[${shown}/${this.total}, ${pct}% done${left}]`;
  }
}

/** `45s`, `2m10s`, `1h05m`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
