/**
 * serveMilter: listen on a connection spec and run one MilterSession per
 * accepted MTA connection, each with its own handler from the factory.
 */
import { listen, type Listener, type ListenOptions } from "../net/listener.ts";
import { type ConnectionSpec, parseSpec } from "../net/spec.ts";
import { MilterSession, resolveSessionOptions, startSession } from "./session.ts";
import type { HandlerFactory, SessionContext, SessionEnd, SessionOptions } from "./types.ts";

export interface ServeOptions extends SessionOptions {
  /** Unix socket mode/group, stale-socket reclaim, TCP reusePort, … (src/net/listener.ts). */
  listen?: Omit<ListenOptions, "handlers">;
}

export interface MilterServer {
  /** The spec actually bound (port 0 replaced by the kernel's choice). */
  readonly spec: ConnectionSpec;
  /** Bound TCP port; undefined for unix sockets. */
  readonly port: number | undefined;
  readonly listener: Listener;
  /** Sessions running now. */
  readonly sessions: number;
  /** Sessions started since the server started. */
  readonly startedSessions: number;
  /** Sessions finished since the server started. */
  readonly finishedSessions: number;
  /**
   * Stop accepting. Running sessions get up to waitMs (default 0) to finish
   * by themselves; then each is ended after its current step (reason
   * `closed`), and connections still open after another second are dropped.
   */
  close(opts?: { waitMs?: number }): Promise<void>;
}

/**
 * Listen on `target` (a spec string such as `inet:10025@[127.0.0.1]`,
 * `unix:/run/x.sock`, port 0 allowed, or a parsed ConnectionSpec) and serve
 * every connection with a handler made by `factory`. Rejects with SpecError
 * or ListenError.
 */
export async function serveMilter(target: string | ConnectionSpec, factory: HandlerFactory, options: ServeOptions = {}): Promise<MilterServer> {
  const spec = typeof target === "string" ? parseSpec(target, { allowPortZero: true }) : target;
  const { listen: listenOptions, ...sessionOptions } = options;
  const live = new Set<MilterSession>();
  let started = 0;
  let finished = 0;
  const userEnd = sessionOptions.onSessionEnd;
  const settings = resolveSessionOptions({
    ...sessionOptions,
    onSessionEnd(ctx: SessionContext, end: SessionEnd) {
      live.delete(ctx as MilterSession);
      finished++;
      userEnd?.(ctx, end);
    },
  });
  const idle = settings.idleTimeoutMs;
  const listener = await listen(
    spec,
    {
      connection(conn) {
        started++;
        const s = startSession(conn, factory, settings);
        live.add(s);
        // A session whose factory failed never reaches onSessionEnd through the handler path.
        void s.ended.then(() => {
          if (live.delete(s)) finished++;
        });
      },
    },
    { writeTimeoutMs: idle > 0 ? idle : 0, ...listenOptions },
  );
  return {
    spec: listener.spec,
    port: listener.port,
    listener,
    get sessions() {
      return live.size;
    },
    get startedSessions() {
      return started;
    },
    get finishedSessions() {
      return finished;
    },
    async close({ waitMs = 0 } = {}) {
      await listener.close();
      const all = () => Promise.all([...live].map((s) => s.ended));
      if (live.size > 0 && waitMs > 0) await within(all(), waitMs);
      for (const s of live) s.shutdown();
      if (live.size > 0) await within(all(), 1000);
      await listener.close({ waitMs: 0 });
    },
  };
}

async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: Timer | undefined;
  await Promise.race([p, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
