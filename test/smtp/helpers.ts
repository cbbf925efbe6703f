// Test helpers for smtp-source/smtp-sink: a scripted SMTP server that records
// what it receives, a line-by-line SMTP chat client, and the CLI as a process.
import type { Socket, TCPSocketListener, UnixSocketListener } from "bun";
import { join } from "node:path";

export const MAIN = join(import.meta.dir, "../../src/main.ts");

export interface CliResult { code: number; stdout: string; stderr: string }

/** Run `milterkit <tool> args` as a process; killed after `timeoutMs`. */
export async function runCli(tool: string, args: string[], timeoutMs = 20_000): Promise<CliResult> {
  const p = Bun.spawn([process.execPath, MAIN, tool, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const t = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(t);
  return { code, stdout, stderr };
}

export interface ScriptedConn {
  /** everything received, latin1 */
  raw: string;
  /** the received data chunks (for checking what came in one write) */
  chunks: string[];
  lines: string[];
}

export interface ScriptOptions {
  greeting?: string;
  /** offer PIPELINING in the EHLO/LHLO reply */
  pipelining?: boolean;
  /** extra EHLO keywords */
  ehloExtra?: string[];
  /** custom reply for a command: a reply text ("450 no"), "close" (hang up) or "silent" (never answer), undefined = default */
  reply?: (verb: string, line: string, conn: ScriptedConn) => string | undefined;
  /** custom reply after the end of data (per message) */
  dotReply?: (conn: ScriptedConn, rcpts: number) => string | undefined;
  /** hold replies to MAIL/RCPT until DATA arrives (proves the client pipelines the envelope) */
  holdEnvelope?: boolean;
  /** hold the reply to "." until the next command arrives (proves the client pipelines after the content) */
  holdDot?: boolean;
  unix?: string;
}

export interface Scripted {
  port: number;
  conns: ScriptedConn[];
  stop(): void;
}

interface St { c: ScriptedConn; buf: string; inData: boolean; lmtp: boolean; rcpts: number; held: string; holdingDot: string }

/** An SMTP/LMTP server whose replies a test chooses; records every connection. */
export function scriptedServer(o: ScriptOptions = {}): Scripted {
  const conns: ScriptedConn[] = [];
  const ehlo = (host: string) => [
    `250-${host}`, ...(o.pipelining ? ["250-PIPELINING"] : []), ...(o.ehloExtra ?? []).map((k) => `250-${k}`), "250 8BITMIME",
  ].join("\r\n") + "\r\n";
  const handlers = {
    open(s: Socket<St>) {
      const c: ScriptedConn = { raw: "", chunks: [], lines: [] };
      conns.push(c);
      s.data = { c, buf: "", inData: false, lmtp: false, rcpts: 0, held: "", holdingDot: "" };
      s.write(o.greeting ?? "220 scripted ESMTP\r\n");
    },
    data(s: Socket<St>, d: Buffer) {
      const st = s.data;
      const text = d.toString("latin1");
      st.c.raw += text;
      st.c.chunks.push(text);
      st.buf += text;
      let out = "";
      for (;;) {
        if (st.inData) {
          let end = st.buf.indexOf("\r\n.\r\n");
          let skip = 5;
          if (st.buf.startsWith(".\r\n")) { end = 0; skip = 3; }
          if (end < 0) break;
          st.buf = st.buf.slice(end + skip);
          st.inData = false;
          const r = o.dotReply?.(st.c, st.rcpts) ?? (st.lmtp ? "250 2.2.0 Ok\r\n".repeat(Math.max(1, st.rcpts)) : "250 2.0.0 Ok\r\n");
          st.rcpts = 0;
          if (r === "close") { s.write(out); s.end(); return; }
          if (r === "silent") continue;
          const text2 = r.endsWith("\r\n") ? r : r + "\r\n";
          if (o.holdDot) st.holdingDot = text2;
          else out += text2;
          continue;
        }
        const nl = st.buf.indexOf("\r\n");
        if (nl < 0) break;
        const line = st.buf.slice(0, nl);
        st.buf = st.buf.slice(nl + 2);
        st.c.lines.push(line);
        if (st.holdingDot) { out += st.holdingDot; st.holdingDot = ""; }
        const verb = line.split(" ")[0].toUpperCase();
        const custom = o.reply?.(verb, line, st.c);
        let r: string;
        if (custom === "close") { s.write(out); s.end(); return; }
        if (custom === "silent") continue;
        if (custom !== undefined) r = custom + "\r\n";
        else if (verb === "EHLO" || verb === "LHLO") { st.lmtp = verb === "LHLO"; r = ehlo("scripted"); }
        else if (verb === "HELO") r = "250 scripted\r\n";
        else if (verb === "RCPT") { st.rcpts++; r = "250 2.1.5 Ok\r\n"; }
        else if (verb === "DATA") { st.inData = true; r = "354 go ahead\r\n"; }
        else if (verb === "QUIT") { out += st.held + "221 Bye\r\n"; st.held = ""; s.write(out); s.end(); return; }
        else r = "250 2.0.0 Ok\r\n";
        if (custom !== undefined && verb === "RCPT" && r.startsWith("2")) st.rcpts++;
        if (custom !== undefined && verb === "DATA" && r.startsWith("354")) st.inData = true;
        if (o.holdEnvelope && (verb === "MAIL" || verb === "RCPT")) { st.held += r; continue; }
        if (o.holdEnvelope && verb === "DATA") { r = st.held + r; st.held = ""; }
        out += r;
      }
      if (out) s.write(out);
    },
  };
  let l: TCPSocketListener<St> | UnixSocketListener<St>;
  if (o.unix) l = Bun.listen<St>({ unix: o.unix, socket: handlers as any });
  else l = Bun.listen<St>({ hostname: "127.0.0.1", port: 0, socket: handlers as any });
  return { port: (l as TCPSocketListener<St>).port, conns, stop: () => l.stop(true) };
}

/** Send lines one at a time (waiting `gapMs` after each) and return everything received. */
export async function chat(target: { port?: number; unix?: string; host?: string }, lines: (string | Uint8Array)[], gapMs = 60): Promise<string> {
  let out = "";
  let closed = false;
  const opts: any = target.unix ? { unix: target.unix } : { hostname: target.host ?? "127.0.0.1", port: target.port };
  const s = await Bun.connect({ ...opts, socket: { data(_s: any, d: Buffer) { out += d.toString("latin1"); }, close() { closed = true; } } });
  await Bun.sleep(gapMs);
  for (const l of lines) {
    if (closed) break;
    s.write(typeof l === "string" ? Buffer.from(l.endsWith("\n") ? l : l + "\r\n", "latin1") : l);
    await Bun.sleep(gapMs);
  }
  s.end();
  return out + (closed ? "<closed>" : "");
}
