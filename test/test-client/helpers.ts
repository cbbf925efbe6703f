/**
 * Helpers for the test-client tool tests: start `milterkit test-client` (from
 * source, or the compiled binary) as a child process, collect its output,
 * wait until it listens, drive it with scripted MTA sessions.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import type { MtaCommand } from "../../src/milter/index.ts";
import { formatSpec, parseSpec } from "../../src/net/spec.ts";
import { freePort, waitForPort, waitForUnix } from "../e2e/lib/ports.ts";
import { ScriptedMta, within } from "../milter-side/helpers.ts";

export const ROOT = resolve(import.meta.dir, "../..");
export const MAIN = join(ROOT, "src/main.ts");

export function tempDir(prefix = "mk-tc-"): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export class Collector {
  text = "";
  private waiters: (() => void)[] = [];
  constructor(stream: ReadableStream<Uint8Array> | null | undefined) {
    if (!stream) return;
    void (async () => {
      for await (const chunk of stream) {
        this.text += Buffer.from(chunk).toString("latin1");
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
      }
    })();
  }
  /** Wait until the collected text matches `re` (bounded). */
  async waitFor(re: RegExp, ms = 5000): Promise<RegExpMatchArray> {
    const end = Date.now() + ms;
    for (;;) {
      const m = this.text.match(re);
      if (m) return m;
      const left = end - Date.now();
      if (left <= 0) throw new Error(`output does not match ${re} after ${ms} ms:\n${this.text.slice(-3000)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

export interface Client {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  out: Collector;
  err: Collector;
  /** spec string to connect to */
  spec: string;
  stop(signal?: NodeJS.Signals): Promise<number>;
}

const running = new Set<Subprocess>();
/** Kill whatever a failing test left (by pid). */
export async function stopAll(): Promise<void> {
  for (const p of running) {
    try {
      p.kill("SIGKILL");
    } catch {}
    await p.exited;
  }
  running.clear();
}

export interface StartOptions {
  env?: Record<string, string | undefined>;
  /** run as this uid/gid (tests of non-root behaviour) */
  uid?: number;
  gid?: number;
  /** compiled binary instead of `bun src/main.ts` */
  binary?: string;
  /** do not wait for the listening socket */
  noWait?: boolean;
}

/** Spawn test-client with `args` (must contain -s); waits until its socket listens. */
export async function startClient(args: string[], o: StartOptions = {}): Promise<Client> {
  const cmd = o.binary ? [o.binary, "test-client", ...args] : [process.execPath, MAIN, "test-client", ...args];
  const proc = Bun.spawn({
    cmd,
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", ...o.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    uid: o.uid,
    gid: o.gid,
  });
  running.add(proc);
  const out = new Collector(proc.stdout);
  const err = new Collector(proc.stderr);
  const specIdx = args.findIndex((a) => a === "-s" || a.startsWith("--connection-spec"));
  const specText = args[specIdx].startsWith("--connection-spec=") ? args[specIdx].split("=")[1] : args[specIdx + 1];
  const c: Client = {
    proc,
    out,
    err,
    spec: specText,
    async stop(signal = "SIGTERM") {
      try {
        proc.kill(signal);
      } catch {}
      const code = await within(proc.exited, 15_000, "test-client exit");
      running.delete(proc);
      return code;
    },
  };
  if (!o.noWait) await waitListening(specText, proc, err);
  return c;
}

export async function waitListening(specText: string, proc: Subprocess, err?: Collector): Promise<void> {
  const spec = parseSpec(specText);
  const exitedEarly = proc.exited.then((code) => {
    throw new Error(`test-client exited (${code}) before listening: ${err?.text ?? ""}`);
  });
  const wait = spec.kind === "unix" ? waitForUnix(spec.path, 10_000) : waitForPort(spec.host ?? "127.0.0.1", spec.port, 10_000);
  await Promise.race([wait, exitedEarly]);
  exitedEarly.catch(() => {});
}

export async function tcpSpec(host = "127.0.0.1"): Promise<string> {
  return formatSpec(host.includes(":") ? { kind: "inet6", port: await freePort(host), host, scheme: "inet6" } : { kind: "inet", port: await freePort(host), host, scheme: "inet" });
}

const macro = (command: string, pairs: [string, string][]): MtaCommand => ({ type: "macro", command, macros: new Map(pairs) });

/** The session of docs/tools.md §1.5 (milter-test-server's packets), macros in the order the reference prints them. */
export function referenceSession(): MtaCommand[] {
  return [
    { type: "optneg", version: 6, actions: 0x1ff, protocol: 0x1fffff },
    macro("C", [["{if_addr}", "127.0.0.1"], ["{if_name}", "localhost"], ["{daemon_name}", "milter-test-server"], ["j", "mail.example.com"]]),
    { type: "connect", hostname: "mx.example.net", family: "4", port: 50443, address: "192.0.2.10" },
    macro("H", [["{cipher}", "0"], ["{cert_issuer}", "cert_issuer"], ["{cert_subject}", "cert_subject"], ["{tls_version}", "0"], ["{cipher_bits}", "0"]]),
    { type: "helo", hostname: "client.example.net" },
    macro("M", [["{mail_addr}", "mail_addr"], ["{mail_host}", "mail_host"], ["{mail_mailer}", "mail_mailer"]]),
    { type: "mail", address: "<alice@example.com>", args: [] },
    macro("R", [["{rcpt_host}", "rcpt_host"], ["{rcpt_mailer}", "rcpt_mailer"], ["{rcpt_addr}", "<bob@example.org>"]]),
    { type: "rcpt", address: "<bob@example.org>", args: [] },
    macro("R", [["{rcpt_host}", "rcpt_host"], ["{rcpt_mailer}", "rcpt_mailer"], ["{rcpt_addr}", "<carol@example.org>"]]),
    { type: "rcpt", address: "<carol@example.org>", args: [] },
    macro("T", [["i", "i"]]),
    { type: "data" },
    { type: "header", name: "From", value: "alice@example.com" },
    { type: "header", name: "To", value: "bob@example.org" },
    { type: "header", name: "Subject", value: "milterkit test" },
    macro("N", [["i", "i"]]),
    { type: "eoh" },
    { type: "body", chunk: Buffer.from("Hello,") },
    { type: "body", chunk: Buffer.from("this is a small fixed test body.") },
    macro("E", [["i", "i"]]),
    { type: "eob" },
  ];
}

/** Number of replies the reference session gets from a milter that answers every event. */
export const REFERENCE_REPLIES = 1 + 1 + 1 + 1 + 2 + 1 + 3 + 1 + 2 + 1;

/** Run the reference session against `spec` (one write per command, waiting for each reply like an MTA), then QUIT. */
export async function driveReference(spec: string): Promise<string[]> {
  const mta = await ScriptedMta.connect(parseSpec(spec));
  const replies: string[] = [];
  for (const cmd of referenceSession()) {
    mta.send(cmd);
    if (cmd.type !== "macro") replies.push((await mta.next()).type);
  }
  await mta.quit();
  return replies;
}

export { ScriptedMta, within };
export { existsSync };
