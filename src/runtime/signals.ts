/**
 * Signal handling of a daemon, the way milter-manager and other Unix daemons
 * behave:
 *   SIGTERM, SIGINT  graceful stop: `stop()` (stop accepting, let sessions
 *                    finish within a bound, remove socket and pid file), then
 *                    exit 0; if it takes longer than `hardExitMs`, exit 1.
 *                    A second SIGTERM/SIGINT exits at once (after `atOnce()`,
 *                    which should only do quick synchronous cleanup).
 *   SIGHUP           `reload()`; reloads never overlap: one arriving during a
 *                    reload runs once after it.
 *   SIGUSR1          `reopen()` (log rotation).
 * SIGHUP and SIGUSR1 keep their default action (exit) when there is no reload() or reopen().
 * Install the handlers before listening, so a signal that arrives during
 * start-up is not lost: `stop()` must then cope
 * with a server that does not exist yet.
 */

export interface SignalHandlers {
  stop: (signal: NodeJS.Signals) => Promise<void>;
  reload?: () => Promise<void> | void;
  reopen?: () => void;
  /** Synchronous last words before the immediate exit of a second stop signal. */
  atOnce?: () => void;
  /** Called for each signal received (log line). */
  notice?: (signal: NodeJS.Signals, what: string) => void;
  /**
   * Extra signals that start the graceful stop but never count towards "second signal exits at
   * once" (a worker's supervisor asks with SIGUSR2, runtime/workers.ts): SIGUSR2 then SIGTERM is
   * still one graceful stop, whatever order systemd and the supervisor deliver them in.
   */
  softStop?: NodeJS.Signals[];
  /** Bound on the graceful stop (default 30 s); then exit 1. */
  hardExitMs?: number;
  /** Exit function (tests); default process.exit. */
  exit?: (code: number) => void;
}

export interface InstalledSignals {
  /** True once a stop signal arrived. */
  readonly stopping: boolean;
  /** Start the graceful stop as if SIGTERM arrived. */
  stopNow(signal?: NodeJS.Signals): void;
  /** Remove the handlers. */
  dispose(): void;
}

export function installSignals(h: SignalHandlers): InstalledSignals {
  const exit = h.exit ?? ((code: number) => process.exit(code));
  let stopping = false;
  let reloading: Promise<void> | undefined;
  let reloadAgain = false;

  /** A SIGTERM/SIGINT was received already: the next one exits at once. Soft stops never count. */
  let hardSeen = false;
  const onStop = (signal: NodeJS.Signals, soft = false): void => {
    if (!soft) {
      if (hardSeen) {
        h.notice?.(signal, "second stop signal: exiting now");
        try {
          h.atOnce?.();
        } catch {}
        exit(1);
        return;
      }
      hardSeen = true;
    }
    if (stopping) {
      h.notice?.(signal, "already stopping");
      return;
    }
    stopping = true;
    h.notice?.(signal, "stopping");
    const hard = setTimeout(() => {
      h.notice?.(signal, `not stopped within ${(h.hardExitMs ?? 30_000) / 1000} s: exiting now`);
      try {
        h.atOnce?.();
      } catch {}
      exit(1);
    }, h.hardExitMs ?? 30_000);
    void h
      .stop(signal)
      .then(
        () => 0,
        () => 1,
      )
      .then((code) => {
        clearTimeout(hard);
        exit(code);
      });
  };

  const onReload = (): void => {
    if (stopping || !h.reload) return;
    h.notice?.("SIGHUP", "reloading the configuration");
    if (reloading) {
      reloadAgain = true;
      return;
    }
    const run = (): void => {
      reloading = Promise.resolve()
        .then(() => h.reload!())
        .catch(() => {}) // reload() reports its own failures
        .finally(() => {
          reloading = undefined;
          if (reloadAgain && !stopping) {
            reloadAgain = false;
            run();
          }
        });
    };
    run();
  };

  const onReopen = (): void => {
    h.notice?.("SIGUSR1", "reopening the log file");
    h.reopen?.();
  };

  const handlers: [NodeJS.Signals, () => void][] = [
    ["SIGTERM", () => onStop("SIGTERM")],
    ["SIGINT", () => onStop("SIGINT")],
    ...(h.reload ? [["SIGHUP", onReload] as [NodeJS.Signals, () => void]] : []),
    ...(h.reopen ? [["SIGUSR1", onReopen] as [NodeJS.Signals, () => void]] : []),
    ...(h.softStop ?? []).map((sig): [NodeJS.Signals, () => void] => [sig, () => onStop(sig, true)]),
  ];
  for (const [sig, fn] of handlers) process.on(sig, fn);
  return {
    get stopping() {
      return stopping;
    },
    stopNow: (signal = "SIGTERM") => onStop(signal, true),
    dispose() {
      for (const [sig, fn] of handlers) process.off(sig, fn);
    },
  };
}

/** Send `signal` to each pid, ignoring processes that are gone. */
export function forwardSignal(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {}
  }
}
