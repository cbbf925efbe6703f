/**
 * systemd's readiness protocol (sd_notify, for Type=notify and Type=notify-reload units): newline
 * separated KEY=VALUE assignments in one datagram to the unix socket named by $NOTIFY_SOCKET
 * ("@name" = abstract namespace). READY=1 once we listen; RELOADING=1 with MONOTONIC_USEC (which
 * notify-reload asks for) and READY=1 again around a reload; STOPPING=1 when the stop begins;
 * STATUS=<reason> when start-up fails. A --daemon child adds MAINPID=, since the process systemd
 * started exits (the unit then needs NotifyAccess=all).
 */
import { type UnixDatagram, unixDatagram, monotonicMicroseconds } from "./datagram.ts";
import { isDaemonChild } from "./daemon.ts";

export const NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET";

export interface SystemdNotifier {
  ready(): void;
  failed(reason: string): void;
  reloading(): void;
  stopping(): void;
}

/**
 * The notifier for $NOTIFY_SOCKET, or undefined when systemd did not ask for one. Takes the
 * variable out of our environment, so workers, the launcher and the milters it starts do not
 * talk to systemd in our name. The socket is connected now, before the privilege drop (the user
 * we become may not be allowed to). `warn` hears, once, that a message could not be sent.
 */
export function systemdNotifier(warn: (text: string) => void, env: Record<string, string | undefined> = process.env): SystemdNotifier | undefined {
  const path = env[NOTIFY_SOCKET_ENV];
  delete env[NOTIFY_SOCKET_ENV];
  if (!path) return undefined;
  let socket: UnixDatagram | undefined;
  try {
    socket = unixDatagram(path);
  } catch (e) {
    warn(`cannot tell systemd anything: ${(e as Error).message}`);
    return undefined;
  }
  let warned = false;
  const send = (text: string): void => {
    if (socket!.send(Buffer.from(text)) || warned) return;
    warned = true;
    warn(`cannot tell systemd ${text.split("\n")[0]} on ${path}: the datagram was not sent`);
  };
  return {
    ready: () => send(isDaemonChild() ? `READY=1\nMAINPID=${process.pid}` : "READY=1"),
    failed: (reason) => send(`STATUS=${reason.replace(/\n/g, " ")}`),
    reloading: () => send(`RELOADING=1\nMONOTONIC_USEC=${monotonicMicroseconds()}`),
    stopping: () => send("STOPPING=1"),
  };
}
