// The process launcher (manager.md §5.3): with security.privilege_mode and started as root, a
// child milter that cannot be reached at negotiation and has `milter.command` is started as
// `milter.user_name`, and the connection is retried.
//
// The manager drops root after listening, so starting a program as another user needs a process
// that kept root: the launcher. Bun cannot fork, so the launcher is this program run again (with
// LAUNCHER_ENV set, see src/main.ts) before the privilege drop; it reads requests on its stdin
// and answers on its stdout, and exits when its stdin closes (the manager is gone).
//
// Messages (both directions): a 4-byte big-endian length, then fields separated by NUL:
//   launch\0<command line>\0<user name>     (user name may be empty = stay root)
//   success\0  |  error\0<message>
// The launcher splits the command line shell-style, refuses a command line that is still
// running, and starts it as the user (setgid to the user's primary group, initgroups, setuid —
// through util-linux setpriv, as Bun cannot exec). Started programs are reaped by the launcher.
import { existsSync, readFileSync } from "node:fs";
import type { Subprocess } from "bun";
import { selfCommand } from "../../runtime/daemon.ts";
import { isRoot, lookupUser, PrivilegeError } from "../../runtime/privilege.ts";
import { type ConnectionSpec, parseSpec } from "../../net/spec.ts";

/** Set to "1" in the environment of the launcher process. */
export const LAUNCHER_ENV = "MILTERKIT_LAUNCHER";
/** The original waits 5 s before it connects again (retry_connect_time). */
export const RETRY_CONNECT_MS = 5000;

export function isLauncherProcess(): boolean {
  return process.env[LAUNCHER_ENV] === "1";
}

export class LaunchError extends Error {
  override readonly name = "LaunchError";
}

// ---------------------------------------------------------------------------------------------
// Framing

export function encodeMessage(fields: readonly string[]): Buffer {
  const payload = Buffer.from(fields.join("\0"), "latin1");
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt32BE(payload.length, 0);
  payload.copy(out, 4);
  return out;
}

/** Collects bytes and returns each complete message as its fields. */
export class MessageDecoder {
  private buf = Buffer.alloc(0);
  static readonly MAX = 1 << 20;

  push(chunk: Uint8Array): string[][] {
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    const out: string[][] = [];
    while (this.buf.length >= 4) {
      const n = this.buf.readUInt32BE(0);
      if (n > MessageDecoder.MAX) throw new LaunchError(`launcher message of ${n} bytes is larger than ${MessageDecoder.MAX}`);
      if (this.buf.length < 4 + n) break;
      out.push(this.buf.toString("latin1", 4, 4 + n).split("\0"));
      this.buf = this.buf.subarray(4 + n);
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Command lines

/**
 * Split a command line the way a POSIX shell splits words: blanks separate, '…' keeps
 * everything literally, "…" keeps blanks and takes \ before " \ $ ` and newline, \ outside
 * quotes escapes the next character. No expansion of any kind.
 */
export function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new LaunchError(`unbalanced ' in command line: ${line}`);
      word += line.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      inWord = true;
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === "\\" && j + 1 < line.length && '"\\$`\n'.includes(line[j + 1])) j++;
        word += line[j];
      }
      if (j >= line.length) throw new LaunchError(`unbalanced " in command line: ${line}`);
      i = j;
    } else if (c === "\\") {
      if (i + 1 >= line.length) throw new LaunchError(`command line ends with a backslash: ${line}`);
      if (line[i + 1] !== "\n") word += line[i + 1];
      inWord = true;
      i++;
    } else if (c === " " || c === "\t" || c === "\n") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** One argument quoted for splitCommandLine (and for a shell). */
export function quoteArgument(arg: string): string {
  if (arg !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** milter.command + milter.command_options as one line: a string is appended as written, a list element by element, quoted. */
export function commandLine(command: string, options: string | readonly string[] | null | undefined): string {
  if (options === null || options === undefined) return command;
  const rest = typeof options === "string" ? options : options.map(quoteArgument).join(" ");
  return rest === "" ? command : `${command} ${rest}`;
}

// ---------------------------------------------------------------------------------------------
// The launcher process

function setprivPath(): string | undefined {
  return ["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv"].find((p) => existsSync(p));
}

/** argv that runs `argv` as `user` (empty = as we are). Throws LaunchError/PrivilegeError. */
export function commandAsUser(argv: readonly string[], user: string, o: { root?: boolean; setpriv?: string | undefined } = {}): { cmd: string[]; uid?: number; gid?: number } {
  if (argv.length === 0) throw new LaunchError("empty command line");
  if (user === "") return { cmd: [...argv] };
  const u = lookupUser(user);
  const root = o.root ?? isRoot();
  if (!root) {
    if (u.uid === process.getuid?.()) return { cmd: [...argv] };
    throw new PrivilegeError(`cannot start ${argv[0]} as ${u.name}: the launcher does not run as root`);
  }
  const setpriv = "setpriv" in o ? o.setpriv : setprivPath();
  if (setpriv) return { cmd: [setpriv, `--reuid=${u.uid}`, `--regid=${u.gid}`, "--init-groups", "--", ...argv] };
  // Without setpriv: Bun sets uid and gid (supplementary groups become just the gid).
  return { cmd: [...argv], uid: u.uid, gid: u.gid };
}

/** Environment for a started program: ours without milterkit's internal variables. */
function childEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("MILTERKIT_")) env[k] = v;
  }
  return env;
}

/**
 * Serve launch requests on fds 0 (requests) and 1 (answers) until stdin closes.
 * Entry point of the launcher process (src/main.ts).
 */
export async function runLauncherProcess(): Promise<number> {
  delete process.env[LAUNCHER_ENV];
  const running = new Map<string, Subprocess>();
  const decoder = new MessageDecoder();
  const answer = (fields: string[]) => {
    try {
      process.stdout.write(encodeMessage(fields));
    } catch {}
  };
  const handle = (fields: string[]) => {
    const [verb, line = "", user = ""] = fields;
    if (verb !== "launch") return answer(["error", `unknown request: ${verb}`]);
    if (running.has(line)) return answer(["error", `already running (pid ${running.get(line)!.pid}): ${line}`]);
    try {
      const argv = splitCommandLine(line);
      const how = commandAsUser(argv, user);
      const proc = Bun.spawn({
        cmd: how.cmd,
        uid: how.uid,
        gid: how.gid,
        env: childEnv(),
        stdio: ["ignore", 2, 2], // stdout is our answer channel
        onExit: () => {
          if (running.get(line) === proc) running.delete(line);
        },
      });
      running.set(line, proc);
      answer(["success", String(proc.pid)]);
    } catch (e) {
      answer(["error", `cannot start ${line}: ${(e as Error).message}`]);
    }
  };
  for await (const chunk of Bun.stdin.stream()) {
    let messages: string[][];
    try {
      messages = decoder.push(chunk);
    } catch {
      break;
    }
    for (const m of messages) handle(m);
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// The manager's side

export interface LaunchResult {
  ok: boolean;
  /** pid of the started program, or the launcher's error message. */
  message: string;
}

/** The manager's handle on its launcher process. */
export class ProcessLauncher {
  private readonly proc: Subprocess<"pipe", "pipe", "inherit">;
  private readonly waiting: ((fields: string[] | undefined) => void)[] = [];
  private closed = false;

  private constructor(cmd: string[]) {
    this.proc = Bun.spawn({
      cmd,
      argv0: process.argv0,
      env: { ...childEnv(), [LAUNCHER_ENV]: "1" },
      stdin: "pipe",
      stdout: "pipe",
      stderr: "inherit",
    });
    void this.read();
  }

  /** Start the launcher process (do it while still root). */
  static start(cmd: string[] = selfCommand([])): ProcessLauncher {
    return new ProcessLauncher(cmd);
  }

  get pid(): number {
    return this.proc.pid;
  }

  private async read(): Promise<void> {
    const decoder = new MessageDecoder();
    try {
      for await (const chunk of this.proc.stdout) {
        for (const m of decoder.push(chunk)) this.waiting.shift()?.(m);
      }
    } catch {}
    this.closed = true;
    for (const w of this.waiting.splice(0)) w(undefined);
  }

  /** Ask the launcher to start `line` as `user` ("" = root). Never rejects. */
  launch(line: string, user: string, timeoutMs = 10_000): Promise<LaunchResult> {
    if (this.closed) return Promise.resolve({ ok: false, message: "the launcher process is gone" });
    return new Promise((resolve) => {
      let timer: Timer | undefined;
      const done = (fields: string[] | undefined) => {
        clearTimeout(timer);
        if (!fields) return resolve({ ok: false, message: "the launcher process is gone" });
        resolve({ ok: fields[0] === "success", message: fields.slice(1).join(" ") });
      };
      this.waiting.push(done);
      timer = setTimeout(() => {
        const i = this.waiting.indexOf(done);
        // A late answer must not be taken for the next request's: keep a placeholder that eats it.
        if (i >= 0) this.waiting[i] = () => {};
        resolve({ ok: false, message: `no answer from the launcher within ${timeoutMs} ms` });
      }, timeoutMs);
      try {
        this.proc.stdin.write(encodeMessage(["launch", line, user]));
        this.proc.stdin.flush();
      } catch (e) {
        done(undefined);
      }
    });
  }

  /** Close the request pipe (the launcher exits) and make sure it is gone. */
  async close(): Promise<void> {
    this.closed = true;
    try {
      this.proc.stdin.end();
    } catch {}
    let timer: Timer | undefined;
    await Promise.race([this.proc.exited, new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill("SIGKILL");
  }
}

// ---------------------------------------------------------------------------------------------
// When to launch, and waiting for the child to listen

/** What the launcher needs to know about a child milter. */
export interface LaunchableMilter {
  name: string;
  connection_spec: string;
  command: string | null;
  command_options: string | string[] | null;
  user_name: string | null;
}

/** Is someone listening on `spec`? From /proc/net (no connection is made); undefined when unknown. */
export function isListening(spec: ConnectionSpec): boolean | undefined {
  try {
    if (spec.kind === "unix") {
      for (const line of readFileSync("/proc/net/unix", "latin1").split("\n").slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length >= 8 && f[3] === "00010000" && f.slice(7).join(" ") === spec.path) return true;
      }
      return false;
    }
    const port = spec.port.toString(16).toUpperCase().padStart(4, "0");
    for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
      let text: string;
      try {
        text = readFileSync(file, "latin1");
      } catch {
        continue;
      }
      for (const line of text.split("\n").slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length > 3 && f[3] === "0A" && f[1].endsWith(`:${port}`)) return true;
      }
    }
    return false;
  } catch {
    return undefined;
  }
}

export interface ChildStarterOptions {
  launcher: Pick<ProcessLauncher, "launch">;
  /** Longest wait for the started child to listen before the one retry (default 5 s, the original's). */
  retryMs?: number;
  log?: (level: "warning" | "info" | "error", text: string) => void;
}

/**
 * The engine asks `unreachable(milter)` when a child could not be connected at negotiation.
 * With a command configured, the launcher is asked to start it (once, however many sessions
 * ask at the same time), then we wait until it listens (at most retryMs) and answer true: try
 * once more. Without a command: false at once.
 */
export class ChildStarter {
  private readonly pending = new Map<string, Promise<boolean>>();

  constructor(private readonly o: ChildStarterOptions) {}

  unreachable(milter: LaunchableMilter): Promise<boolean> {
    if (!milter.command) return Promise.resolve(false);
    const line = commandLine(milter.command, milter.command_options);
    const key = `${milter.name}\0${line}\0${milter.user_name ?? ""}`;
    let p = this.pending.get(key);
    if (!p) {
      p = this.start(milter, line).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  private async start(milter: LaunchableMilter, line: string): Promise<boolean> {
    const user = milter.user_name ?? "";
    const r = await this.o.launcher.launch(line, user);
    if (r.ok) this.o.log?.("info", `milter ${milter.name}: started ${line}${user ? ` as ${user}` : ""} (pid ${r.message})`);
    else this.o.log?.("warning", `milter ${milter.name}: launcher: ${r.message}`);
    // Retry in any case (the original does): the program may have been started by someone else meanwhile.
    let spec: ConnectionSpec | undefined;
    try {
      spec = parseSpec(milter.connection_spec);
    } catch {}
    const end = Date.now() + (this.o.retryMs ?? RETRY_CONNECT_MS);
    for (;;) {
      const up = spec ? isListening(spec) : undefined;
      if (up === true || Date.now() >= end) break;
      await Bun.sleep(up === undefined ? Math.max(0, end - Date.now()) : 50);
    }
    return true;
  }
}
