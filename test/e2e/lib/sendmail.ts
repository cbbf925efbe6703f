/**
 * A private Sendmail 8.17 on loopback, started and stopped by a test.
 *
 * Debian's sendmail-bin and sendmail-cf conflict with postfix, so they are
 * never installed: `apt-get download` fetches sendmail-bin, sendmail-cf and
 * libwrap0 once into the cache dir and `dpkg -x` unpacks them there. Each
 * instance has its own base directory (.cf built with m4 from a minimal .mc,
 * queue, pid file) and runs `sendmail -bD` (daemon in the foreground, so its
 * PID is ours) inside a private UTS + mount namespace (unshare) with a dotted
 * host name and its own /etc/hosts and /etc/nsswitch.conf bound over the
 * system's: without a dotted name Sendmail waits 60 s at every start, and
 * without the private files libc asks DNS for its own name.
 *
 * Every message is relayed to [127.0.0.1]:relayPort (smtp-sink). Milters are
 * declared with MAIL_FILTER and attached per daemon port
 * (DaemonPortOptions InputMailFilters=a;b), so one instance serves many chains.
 * Send only to non-local domains (example.test).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { cacheDir, makeDir, makeTempDir } from "./dirs.ts";
import { waitForPort } from "./ports.ts";
import { removeDir, run, spawnTracked, type Spawned, StartupError, stopPid, tailFile } from "./proc.ts";

const PACKAGES = ["sendmail-bin", "sendmail-cf", "libwrap0"];

/** Why a private Sendmail cannot run here, or null (needs root, m4, unshare, apt-get + dpkg). */
export function sendmailSkipReason(): string | null {
  if (process.getuid?.() !== 0) return "a private Sendmail needs root (namespaces, bind mounts)";
  for (const p of ["/usr/bin/m4", "/usr/bin/unshare", "/usr/bin/dpkg"]) {
    if (!fs.existsSync(p)) return `a private Sendmail needs ${p}`;
  }
  return null;
}

let unpacked: Promise<string> | undefined;

/** Download and unpack the Sendmail packages into the cache dir (once); returns the unpacked root. */
export function unpackSendmail(): Promise<string> {
  unpacked ??= (async () => {
    const root = path.join(cacheDir(), "sendmail-root");
    const bin = path.join(root, "usr/libexec/sendmail/sendmail");
    if (fs.existsSync(bin)) return root;
    const tmp = `${root}.tmp-${process.pid}`;
    const debs = path.join(tmp, "debs");
    fs.mkdirSync(debs, { recursive: true });
    try {
      await run(["/usr/bin/apt-get", "download", ...PACKAGES], { cwd: debs, timeoutMs: 180_000 });
      for (const d of fs.readdirSync(debs).filter((f) => f.endsWith(".deb"))) {
        await run(["/usr/bin/dpkg", "-x", path.join(debs, d), path.join(tmp, "root")], { timeoutMs: 60_000 });
      }
      // set-group-ID mail: the loader would ignore LD_LIBRARY_PATH (libwrap.so.0 is unpacked, not installed)
      fs.chmodSync(path.join(tmp, "root/usr/libexec/sendmail/sendmail"), 0o755);
      fs.rmSync(root, { recursive: true, force: true });
      fs.renameSync(path.join(tmp, "root"), root);
    } catch (e) {
      unpacked = undefined;
      throw new StartupError("sendmail", `cannot fetch and unpack ${PACKAGES.join(", ")}`, String(e));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    return root;
  })();
  return unpacked;
}

export interface SendmailOptions {
  relayPort: number;
  /** milters: name (letters, digits, -) and libmilter socket spec (unix:/path or inet:PORT@127.0.0.1) */
  filters: { name: string; spec: string }[];
  /** one SMTP daemon per entry, on 127.0.0.1:port, with these milters in this order */
  daemons: { port: number; filters: string[] }[];
}

export interface SendmailInstance {
  base: string;
  queueDir: string;
  pid: number;
  log(): string;
  stop(): Promise<void>;
}

const HOST = "mta.sm.test";

function mcText(base: string, o: SendmailOptions): string {
  const q = (s: string) => {
    if (/[`'\n]/.test(s)) throw new Error(`m4 quote character in ${JSON.stringify(s)}`);
    return s;
  };
  return [
    "divert(0)dnl",
    "OSTYPE(`linux')dnl",
    `define(\`confDOMAIN_NAME', \`${HOST}')dnl`,
    `define(\`confSERVICE_SWITCH_FILE', \`${q(base)}/etc/service.switch')dnl`,
    "define(`confBIND_OPTS', `-DNSRCH -DEFNAMES')dnl",
    "define(`confDONT_PROBE_INTERFACES', `True')dnl",
    "define(`confTO_IDENT', `0')dnl",
    `define(\`QUEUE_DIR', \`${q(base)}/q')dnl`,
    `define(\`confPID_FILE', \`${q(base)}/run/sendmail.pid')dnl`,
    `define(\`STATUS_FILE', \`${q(base)}/run/sendmail.st')dnl`,
    "define(`confHOST_STATUS_DIRECTORY', `')dnl",
    `define(\`ALIAS_FILE', \`${q(base)}/etc/aliases')dnl`,
    "define(`HELP_FILE', `')dnl",
    "undefine(`confCR_FILE')dnl",
    "define(`confDEF_USER_ID', `mail:mail')dnl",
    // /tmp is world-writable (sticky); the milters' socket directories belong to nobody or opendkim
    "define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit,GroupWritableDirPathSafe,NonRootSafeAddr')dnl",
    "define(`SMART_HOST', `[127.0.0.1]')dnl",
    `define(\`RELAY_MAILER_ARGS', \`TCP $h ${o.relayPort}')dnl`,
    "FEATURE(`nocanonify')dnl",
    "FEATURE(`no_default_msa')dnl",
    "FEATURE(`accept_unresolvable_domains')dnl",
    "FEATURE(`accept_unqualified_senders')dnl",
    ...o.daemons.map(
      (d, i) =>
        `DAEMON_OPTIONS(\`Port=${d.port}, Addr=127.0.0.1, Name=MTA${i}${d.filters.length ? `, InputMailFilters=${d.filters.map(q).join(";")}` : ""}')dnl`,
    ),
    ...o.filters.map((f) => `MAIL_FILTER(\`${q(f.name)}', \`S=${q(f.spec)}, F=T, T=C:5s;S:30s;R:30s;E:60s')dnl`),
    "MAILER(`local')dnl",
    "MAILER(`smtp')dnl",
    "",
  ].join("\n");
}

/** Start a private Sendmail (see the file comment); waits until every daemon port listens. */
export async function startSendmail(o: SendmailOptions): Promise<SendmailInstance> {
  const root = await unpackSendmail();
  const base = makeTempDir("mk-sm-");
  const etc = makeDir(path.join(base, "etc"));
  const queueDir = makeDir(path.join(base, "q"), 0o700);
  makeDir(path.join(base, "run"));
  fs.writeFileSync(path.join(etc, "hosts"), `127.0.0.1 localhost\n127.0.0.1 ${HOST} mta\n::1 localhost ${HOST}\n`);
  fs.writeFileSync(path.join(etc, "nsswitch.conf"), "hosts: files\npasswd: files\ngroup: files\n");
  fs.writeFileSync(path.join(etc, "service.switch"), "hosts files\naliases files\npasswd files\n");
  fs.writeFileSync(path.join(etc, "sendmail.mc"), mcText(base, o));
  const cf = path.join(etc, "sendmail.cf");
  try {
    const r = await run(["/usr/bin/m4", path.join(root, "usr/share/sendmail/cf/m4/cf.m4"), path.join(etc, "sendmail.mc")], { timeoutMs: 30_000 });
    fs.writeFileSync(cf, r.stdout);
  } catch (e) {
    removeDir(base);
    throw new StartupError("sendmail", "m4 could not build sendmail.cf", String(e));
  }
  const script = [
    'B="$1" R="$2"; shift 2',
    `hostname ${HOST}`,
    'mount --bind "$B/etc/hosts" /etc/hosts',
    'mount --bind "$B/etc/nsswitch.conf" /etc/nsswitch.conf',
    'LD_LIBRARY_PATH="$R/usr/lib/x86_64-linux-gnu" exec "$R/usr/libexec/sendmail/sendmail" -C "$B/etc/sendmail.cf" "$@"',
  ].join(" && ").replace("shift 2 &&", "shift 2;");
  const logFile = path.join(base, "sendmail.log");
  // -bD: daemon in the foreground; unshare and sh exec, so the PID is sendmail's
  const sp: Spawned = spawnTracked(["/usr/bin/unshare", "--uts", "--mount", "/bin/sh", "-c", script, "smrun", base, root, "-bD"], {
    logFile,
    what: "sendmail",
    cwd: base,
  });
  try {
    for (const d of o.daemons) await waitForPort("127.0.0.1", d.port, 20_000, { pid: sp.pid, logFile, what: `sendmail :${d.port}` });
  } catch (e) {
    await stopPid(sp.pid, { graceMs: 2000 });
    removeDir(base);
    throw e;
  }
  return {
    base,
    queueDir,
    pid: sp.pid,
    log: () => tailFile(logFile),
    async stop() {
      await stopPid(sp.pid, { graceMs: 5000 });
      removeDir(base);
    },
  };
}

/**
 * A queued (e.g. quarantined: `hf` instead of `qf`) message as comparable text:
 * the control file's sender (S), recipients (R), quarantine reason (q) and
 * headers (H, folded lines kept), then the body (df file).
 */
export function queuedMessage(queueDir: string, id: string): string {
  const names = fs.readdirSync(queueDir);
  const ctl = names.find((n) => /^[hq]f/.test(n) && n.slice(2) === id);
  if (!ctl) throw new Error(`no control file for ${id} in ${queueDir}: ${names.join(" ")}`);
  const lines = fs.readFileSync(path.join(queueDir, ctl), "latin1").split("\n");
  const out: string[] = [`control file: ${ctl.slice(0, 2)}`];
  let inHeader = false;
  for (const l of lines) {
    if (/^[ \t]/.test(l)) {
      if (inHeader) out.push(l);
      continue;
    }
    inHeader = l.startsWith("H");
    if (/^[SRqH]/.test(l)) out.push(l);
  }
  const df = path.join(queueDir, `df${id}`);
  out.push("--- body", fs.existsSync(df) ? fs.readFileSync(df, "latin1") : "");
  return out.join("\n");
}
