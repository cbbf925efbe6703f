/**
 * Real, independently written peer milters for end-to-end tests:
 * - a libmilter C milter (test/fixtures/milters/bench-milter.c), built once per
 *   source version into a cache dir; adds "X-Bench-Milter: libmilter" or, in
 *   reject mode, rejects every message at end of message;
 * - a pymilter milter (test/fixtures/milters/bench_pymilter.py), adds
 *   "X-Bench-Milter: pymilter";
 * - opendkim in signing mode with a fresh 2048-bit key.
 *
 * The samples run as nobody, opendkim as its own user (it drops privileges
 * itself). Unix sockets are created with umask 000 in a nobody-owned
 * directory so that Postfix (user postfix) may connect.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { cacheDir, fixturePath, makeDir, makeTempDir } from "./dirs.ts";
import { freePort, isListening, waitForPort, waitForUnix } from "./ports.ts";
import { NOBODY, removeDir, run, spawnTracked, StartupError, stopPid, tailFile, userIds } from "./proc.ts";

export interface Peer {
  /** "libmilter", "pymilter" or "opendkim" */
  name: string;
  /** milter-manager / libmilter form: inet:PORT@[127.0.0.1] or unix:/path */
  spec: string;
  /** Postfix smtpd_milters form: inet:127.0.0.1:PORT or unix:/path */
  postfixSpec: string;
  port?: number;
  unix?: string;
  pid: number;
  /** the peer's own directory (log, config, key, socket) */
  base: string;
  /** stop by PID (TERM, then KILL after 250 ms: libmilter would take up to 5 s) and delete the peer's directory */
  stop(): Promise<void>;
  /** everything the peer wrote to stdout/stderr */
  log(): string;
  /** libmilter in reject mode: the reply it sends, e.g. "550 5.7.1 ..." */
  reject?: string;
  /** header line the sample adds, e.g. "X-Bench-Milter: libmilter" */
  header?: string;
  /** opendkim: the public key TXT record file written by opendkim-genkey */
  keyTxtPath?: string;
  /** opendkim: signing domain (d=) and selector (s=) */
  domain?: string;
  selector?: string;
}

export interface SocketOptions {
  /** TCP port on 127.0.0.1 (default: a free one) */
  port?: number;
  /**
   * listen on a Unix socket: `true` for one in the peer's own directory, or a path (a missing
   * directory is created, owned by the milter's user; an existing one must be writable by it)
   */
  unix?: string | true;
}

const PY = "/usr/bin/python3"; // Debian's, which has python3-milter and python3-dkim (not a pyenv shim)

function sha(text: string | Buffer): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

const built = new Map<string, Promise<string>>();

/**
 * Compile a C milter from test/fixtures (`cc ... -lmilter -lpthread`) into the
 * cache dir (name includes a hash of the source and flags, so an unchanged
 * source is reused across runs). Returns the binary's path.
 */
export function buildCMilter(rel: string): Promise<string> {
  let p = built.get(rel);
  if (p) return p;
  p = (async () => {
    const src = fixturePath(rel);
    const flags = ["-O2", "-Wall"];
    const libs = ["-lmilter", "-lpthread"];
    const name = path.basename(rel, ".c");
    const out = path.join(cacheDir(), `${name}-${sha(fs.readFileSync(src) + flags.join(" ") + libs.join(" "))}`);
    if (fs.existsSync(out)) return out;
    // build under a private name, then rename: parallel test runs never see a half-written binary
    const tmp = `${out}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    try {
      await run(["cc", ...flags, "-o", tmp, src, ...libs], { timeoutMs: 120_000 });
      fs.chmodSync(tmp, 0o755);
      fs.renameSync(tmp, out);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      built.delete(rel);
      throw new StartupError(name, `building ${rel} failed`, String(e));
    }
    return out;
  })();
  built.set(rel, p);
  return p;
}

/** Build bench-milter.c (see {@link buildCMilter}). */
export function buildLibmilter(): Promise<string> {
  return buildCMilter("milters/bench-milter.c");
}

/** Copy a fixture script into the cache dir (readable by nobody even if the repo is not). */
function cachedScript(rel: string): string {
  const src = fixturePath(rel);
  const body = fs.readFileSync(src);
  const ext = path.extname(src);
  const out = path.join(cacheDir(), `${path.basename(src, ext)}-${sha(body)}${ext}`);
  if (!fs.existsSync(out)) {
    const tmp = `${out}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    fs.writeFileSync(tmp, body, { mode: 0o755 });
    fs.renameSync(tmp, out);
  }
  return out;
}

interface LaunchSpec {
  name: string;
  base: string;
  opts: SocketOptions;
  /** argv for a TCP port or a Unix socket path */
  argv(where: { port: number } | { unix: string }): string[];
  uid?: number;
  gid?: number;
  /** owner of the socket directory made for `unix: true` (default nobody): the user that creates the socket */
  sockOwner?: { uid: number; gid: number };
  extra?: Partial<Peer>;
  startTimeoutMs?: number;
}

/** Start a peer, wait until it listens; on a port taken meanwhile, retry with another port. */
async function launch(l: LaunchSpec): Promise<Peer> {
  const logFile = path.join(l.base, `${l.name}.log`);
  let unix: string | undefined;
  if (l.opts.unix === true) {
    unix = path.join(makeDir(path.join(l.base, "sock"), 0o755, l.sockOwner ?? NOBODY), `${l.name}.sock`);
  } else if (l.opts.unix) {
    unix = path.resolve(l.opts.unix);
    if (!fs.existsSync(path.dirname(unix))) makeDir(path.dirname(unix), 0o755, l.sockOwner ?? NOBODY);
  }
  const timeout = l.startTimeoutMs ?? 15_000;
  for (let attempt = 0; ; attempt++) {
    const port = unix ? undefined : (l.opts.port ?? (await freePort()));
    const argv = l.argv(unix ? { unix } : { port: port! });
    const sp = spawnTracked(argv, { logFile, uid: l.uid, gid: l.gid, umask000: !!unix, what: l.name, cwd: l.base });
    try {
      if (unix) await waitForUnix(unix, timeout, { pid: sp.pid, logFile, what: l.name });
      else await waitForPort("127.0.0.1", port!, timeout, { pid: sp.pid, logFile, what: l.name });
    } catch (e) {
      await stopPid(sp.pid, { graceMs: 1000 });
      // a free port can be taken by someone else between freePort() and bind(): then try another one
      const taken = port !== undefined && isListening("127.0.0.1", port) === true;
      if (taken && l.opts.port === undefined && attempt < 2) continue;
      removeDir(l.base);
      throw e;
    }
    const peer: Peer = {
      name: l.name,
      spec: unix ? `unix:${unix}` : `inet:${port}@[127.0.0.1]`,
      postfixSpec: unix ? `unix:${unix}` : `inet:127.0.0.1:${port}`,
      port,
      unix,
      pid: sp.pid,
      base: l.base,
      log: () => tailFile(logFile, 1 << 20),
      async stop() {
        // libmilter (all three peers use it) looks at a stop request only every 5 s: do not wait for that.
        await stopPid(sp.pid, { graceMs: 250 });
        if (unix) fs.rmSync(unix, { force: true });
        removeDir(l.base);
      },
      ...l.extra,
    };
    return peer;
  }
}

export interface LibmilterOptions extends SocketOptions {
  /** value of the added header (default "libmilter") */
  header?: string;
  /** name of the added header (default "X-Bench-Milter") */
  headerName?: string;
  /**
   * reject every message at end of message instead of adding the header:
   * `true` = "550 5.7.1 Rejected by bench-milter", or a reply such as
   * "554 5.7.0 go away" (4xx = temporary failure)
   */
  reject?: boolean | string;
}

/** Start the libmilter C sample as nobody. */
export async function startLibmilter(opts: LibmilterOptions = {}): Promise<Peer> {
  const bin = await buildLibmilter();
  const reject = opts.reject === true ? "550 5.7.1 Rejected by bench-milter" : opts.reject || undefined;
  const header = opts.header ?? "libmilter";
  const name = opts.headerName ?? "X-Bench-Milter";
  return launch({
    name: "libmilter",
    base: makeTempDir("mk-libmilter-"),
    opts,
    uid: NOBODY.uid,
    gid: NOBODY.gid,
    argv: (w) => [
      bin,
      ...("unix" in w ? ["-s", `unix:${w.unix}`] : ["-p", String(w.port), "-a", "127.0.0.1"]),
      "-H", name,
      "-V", header,
      ...(reject ? ["-r", reject] : []),
    ],
    extra: { reject, header: reject ? undefined : `${name}: ${header}` },
  });
}

export interface PymilterOptions extends SocketOptions {
  /** value of the added header (default "pymilter") */
  header?: string;
  /** name of the added header (default "X-Bench-Milter") */
  headerName?: string;
}

/** Start the pymilter sample as nobody. */
export async function startPymilter(opts: PymilterOptions = {}): Promise<Peer> {
  const script = cachedScript("milters/bench_pymilter.py");
  const header = opts.header ?? "pymilter";
  const name = opts.headerName ?? "X-Bench-Milter";
  return launch({
    name: "pymilter",
    base: makeTempDir("mk-pymilter-"),
    opts,
    uid: NOBODY.uid,
    gid: NOBODY.gid,
    argv: (w) => [
      PY, script, "--name", name, "--value", header,
      ...("unix" in w ? [`unix:${w.unix}`] : [String(w.port), "127.0.0.1"]),
    ],
    extra: { header: `${name}: ${header}` },
  });
}

export interface OpendkimOptions extends SocketOptions {
  /** signing domain d= (default "bench.test"); mail from any From: domain is signed with it */
  domain?: string;
  /** selector s= (default "bench") */
  selector?: string;
}

/**
 * Start opendkim in signing mode: a fresh 2048-bit key (opendkim-genkey),
 * every message from InternalHosts (127.0.0.0/8, ::1) is signed with
 * d=domain s=selector whatever its From: domain. `Syslog no`, foreground
 * (-f), runs as the opendkim user (it drops privileges itself).
 */
export async function startOpendkim(opts: OpendkimOptions = {}): Promise<Peer> {
  const domain = opts.domain ?? "bench.test";
  const selector = opts.selector ?? "bench";
  const base = makeTempDir("mk-opendkim-");
  const od = userIds("opendkim");
  try {
    await run(["/usr/sbin/opendkim-genkey", "-b", "2048", "-d", domain, "-s", selector, "-D", base], { timeoutMs: 60_000 });
  } catch (e) {
    removeDir(base);
    throw new StartupError("opendkim", "opendkim-genkey failed", String(e));
  }
  const key = path.join(base, `${selector}.private`);
  fs.chownSync(key, od.uid, od.gid);
  fs.chmodSync(key, 0o600);
  fs.writeFileSync(path.join(base, "key.table"), `mkkey ${domain}:${selector}:${key}\n`);
  fs.writeFileSync(path.join(base, "signing.table"), `* mkkey\n`); // refile: "*" matches every sender
  fs.writeFileSync(path.join(base, "internal.hosts"), "127.0.0.0/8\n::1\n");
  const conf = path.join(base, "opendkim.conf");
  const confText = (socket: string) =>
    [
      "# opendkim for a milterkit end-to-end test (generated)",
      "Syslog                 no",
      "Background             no",
      "Mode                   s",
      `KeyTable               file:${base}/key.table`,
      `SigningTable           refile:${base}/signing.table`,
      `InternalHosts          file:${base}/internal.hosts`,
      "Canonicalization       relaxed/simple",
      "SignatureAlgorithm     rsa-sha256",
      `Socket                 ${socket}`,
      "UMask                  000",
      `UserID                 opendkim:opendkim`,
      "RequireSafeKeys        false",
      "",
    ].join("\n");
  return launch({
    name: "opendkim",
    base,
    opts,
    argv: (w) => {
      // one config per attempt: the socket (port) is part of it
      fs.writeFileSync(conf, confText("unix" in w ? `local:${w.unix}` : `inet:${w.port}@127.0.0.1`));
      return ["/usr/sbin/opendkim", "-x", conf, "-f"];
    },
    sockOwner: od,
    extra: { keyTxtPath: path.join(base, `${selector}.txt`), domain, selector },
  });
}

/** Modification kinds of test/fixtures/milters/mod-milter.c (see its header comment). */
export type ModMode = "add" | "ins0" | "ins2" | "ins99" | "change" | "del2" | "del2twice" | "body" | "bodynoeol" | "bodytail" | "rcpt" | "envrcpt" | "from" | "quarantine";

export interface ModMilterOptions extends SocketOptions {
  mode: ModMode;
  /** written into the headers it adds or changes (default: the mode) */
  tag?: string;
}

/** Start mod-milter (one kind of modification at end of message) as nobody. */
export async function startModMilter(opts: ModMilterOptions): Promise<Peer> {
  const bin = await buildCMilter("milters/mod-milter.c");
  const tag = opts.tag ?? opts.mode;
  return launch({
    name: `mod-${tag}`,
    base: makeTempDir("mk-mod-milter-"),
    opts,
    uid: NOBODY.uid,
    gid: NOBODY.gid,
    argv: (w) => [bin, "-m", opts.mode, "-t", tag, ...("unix" in w ? ["-s", `unix:${w.unix}`] : ["-p", String(w.port), "-a", "127.0.0.1"])],
  });
}
