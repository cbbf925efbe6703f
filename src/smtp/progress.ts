// A live progress line for terminals: rewritten in place a few times a second.

export interface ProgressState {
  done: number;
  failed: number;
  total: number;
  elapsedSeconds: number;
}

export function progressLine(p: ProgressState): string {
  const rate = p.elapsedSeconds > 0 ? p.done / p.elapsedSeconds : 0;
  const pct = p.total > 0 ? Math.floor(((p.done + p.failed) * 100) / p.total) : 0;
  return `${p.done + p.failed}/${p.total} (${pct}%) sent ${p.done} failed ${p.failed} ` +
    `${rate.toFixed(0)} msg/s ${p.elapsedSeconds.toFixed(1)}s`;
}

/** Redraws `\r\x1b[K<line>` on `fd` every `intervalMs` until stop(), which erases the line. */
export class Progress {
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly state: () => ProgressState, private readonly fd: 1 | 2,
              private readonly write: (fd: 1 | 2, s: string) => void) {}

  start(intervalMs = 200): void {
    this.timer = setInterval(() => this.write(this.fd, `\r\x1b[K${progressLine(this.state())}`), intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.write(this.fd, "\r\x1b[K");
  }
}
