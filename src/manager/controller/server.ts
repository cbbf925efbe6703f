// The manager's HTTP controller on controller.connection_spec (inet or unix, the same spec forms
// as manager.connection_spec): /metrics (Prometheus text), /status (JSON), / (the status page,
// shipped inside the binary). Local only by default: an inet spec without a host binds the
// loopback address, not every address; a unix socket gets controller.unix_socket_mode (0660).
import { adjustOwnFile, type FileIdentity, removeIfOurs } from "../../fs/own-files.ts";
import { prepareUnixPath, ListenError, resolveGroup } from "../../net/listener.ts";
import { type ConnectionSpec, parseSpec } from "../../net/spec.ts";
import type { Monitor } from "../monitor.ts";
import { METRICS_CONTENT_TYPE, renderMetrics } from "./metrics.ts";
import { STATUS_PAGE } from "./page.ts";

export interface ControllerOptions {
  /** Unix socket mode (default 0o660). */
  mode?: number;
  group?: string | null;
  removeOnCreate?: boolean;
  removeOnClose?: boolean;
}

export interface Controller {
  /** The spec bound (port 0 replaced by the real port). */
  readonly spec: ConnectionSpec;
  /** http://host:port for inet; undefined for a unix socket. */
  readonly url: string | undefined;
  /** The unix socket file as bound, for changing it later through its descriptor (fs/own-files.ts). */
  readonly identity?: FileIdentity;
  close(): void;
}

/** Answer one request from the monitor's numbers. */
export function handle(monitor: Monitor, req: Request): Response {
  if (req.method !== "GET" && req.method !== "HEAD") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  const path = new URL(req.url).pathname;
  const noStore = { "cache-control": "no-store" };
  switch (path) {
    case "/metrics":
      return new Response(renderMetrics(monitor), { headers: { "content-type": METRICS_CONTENT_TYPE, ...noStore } });
    case "/status":
      return new Response(`${JSON.stringify(monitor.status(), null, 2)}\n`, { headers: { "content-type": "application/json; charset=utf-8", ...noStore } });
    case "/":
    case "/index.html":
      return new Response(STATUS_PAGE, { headers: { "content-type": "text/html; charset=utf-8", ...noStore } });
    default:
      return new Response("not found: try /, /status or /metrics\n", { status: 404 });
  }
}

/** Start serving; throws ListenError (the spec cannot be bound) or SpecError (bad spec). */
export async function startController(specText: string, monitor: Monitor, o: ControllerOptions = {}): Promise<Controller> {
  const spec = parseSpec(specText, { allowPortZero: true });
  const fetch = (req: Request) => handle(monitor, req);
  if (spec.kind === "unix") {
    const mode = o.mode ?? 0o660;
    await prepareUnixPath(spec, o.removeOnCreate ?? true, true);
    const oldMask = process.umask(~mode & 0o777); // the file appears with its final mode
    let server: ReturnType<typeof Bun.serve>;
    try {
      server = Bun.serve({ unix: spec.path, fetch });
    } catch (e) {
      throw new ListenError(spec, (e as { code?: string }).code ?? "EINVAL", (e as Error).message, { cause: e });
    } finally {
      process.umask(oldMask);
    }
    let identity: FileIdentity;
    try {
      // Through a descriptor of the socket file, never by name: the directory may be writable by
      // the user we become, who could swap the name for a symlink (as net/listener.ts does).
      identity = adjustOwnFile(spec.path, { kind: "socket", mode, gid: o.group ? resolveGroup(o.group, spec) : undefined });
    } catch (e) {
      server.stop(true);
      if (e instanceof ListenError) throw e;
      throw new ListenError(spec, (e as { code?: string }).code ?? "EPERM", `cannot set mode/group of ${spec.path}: ${(e as Error).message}`, { cause: e });
    }
    return {
      spec,
      url: undefined,
      identity,
      close() {
        server.stop(true);
        if (o.removeOnClose !== false) removeIfOurs(spec.path, identity); // ours and still there
      },
    };
  }
  const hostname = spec.host ?? (spec.kind === "inet" ? "127.0.0.1" : "::1");
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({ hostname, port: spec.port, fetch });
  } catch (e) {
    throw new ListenError(spec, (e as { code?: string }).code ?? "EADDRINUSE", (e as Error).message, { cause: e });
  }
  const bound: ConnectionSpec = { ...spec, host: spec.host ?? hostname, port: server.port ?? spec.port };
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return {
    spec: bound,
    url: `http://${host}:${server.port}`,
    close() {
      server.stop(true);
    },
  };
}

