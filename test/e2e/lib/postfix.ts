/**
 * A private Postfix instance on loopback, started and stopped by a test.
 *
 * Each instance has its own base directory (config, queue, data, log) under
 * /tmp, its own free smtpd port(s), its own syslog_name and master service
 * names, and relays every message to [relayHost]:relayPort (normally
 * smtp-sink). The system instance in /etc/postfix is never read, written or
 * started: everything goes through `postfix -c <base>/etc`, which root may use
 * without alternate_config_directories.
 *
 * Recipe (docs/postfix-bench.md): chroot n everywhere, data_directory owned by
 * postfix, maillog_file written by the postlog service (no syslog daemon),
 * mydestination empty so nothing is delivered locally.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { makeDir, makeTempDir } from "./dirs.ts";
import { freePort, waitForPort } from "./ports.ts";
import {
  childPids,
  CommandError,
  isAlive,
  pollUntil,
  removeDir,
  run,
  sleep,
  spawnTracked,
  type Spawned,
  StartupError,
  stopPid,
  tailFile,
  trackPid,
  untrackPid,
  userIds,
} from "./proc.ts";

export type MilterDefaultAction = "accept" | "tempfail" | "reject" | "quarantine";

export interface PostfixOptions {
  /** port of the relay target (smtp-sink); every message is relayed there */
  relayPort: number;
  /** address of the relay target (default 127.0.0.1; an IPv6 literal such as ::1 also works) */
  relayHost?: string;
  /** deliver with LMTP instead of SMTP (for `startPostfixSmtpSink({ lmtp: true })`) */
  relayLmtp?: boolean;
  /** smtpd_milters, e.g. "inet:127.0.0.1:12345, unix:/path" (default: none) */
  milters?: string;
  /** non_smtpd_milters (mail submitted with sendmail/pickup; default: none) */
  nonSmtpdMilters?: string;
  /** milter_default_action (default tempfail, Postfix's default) */
  defaultAction?: MilterDefaultAction;
  /** milter_protocol (default 6) */
  milterProtocol?: number;
  /** offer AUTH PLAIN/LOGIN (Cyrus SASL, sasldb) with a throw-away user: see saslUser/saslPassword */
  sasl?: boolean;
  /** also listen on [::1] (smtpPort6) */
  ipv6?: boolean;
  /** myhostname (default postfix.milterkit.invalid); also the SASL realm */
  myhostname?: string;
  /** extra main.cf settings, applied last (they override the harness defaults) */
  mainCf?: Record<string, string>;
  /**
   * more smtpd services on 127.0.0.1, each on its own port with its own main.cf overrides
   * (master.cf `-o name=value`; values without blanks), e.g. one per milter chain:
   * `{ port, options: { smtpd_milters: "unix:/a,unix:/b" } }`
   */
  extraSmtpd?: { port: number; options: Record<string, string> }[];
  /** bound on `postfix start-fg` until the master runs, and again until smtpd listens (default 30 s) */
  startTimeoutMs?: number;
}

export interface PostfixInstance {
  /** smtpd port on 127.0.0.1 */
  smtpPort: number;
  /** smtpd port on ::1 (only with ipv6: true) */
  smtpPort6?: number;
  /** base directory: etc/ (config_directory), spool/ (queue), data/, log/maillog */
  base: string;
  configDir: string;
  queueDir: string;
  /** syslog_name of this instance (maillog lines are "NAME/smtpd[pid]: ...") */
  syslogName: string;
  myhostname: string;
  /** PID of the master process */
  masterPid: number;
  /** SASL login that works with AUTH PLAIN/LOGIN (sasl: true only) */
  saslUser?: string;
  saslPassword?: string;
  /** stop the daemons (empty master.cf + reload), then the master (SIGTERM, like `postfix stop`), KILL by PID if needed; delete the base dir */
  stop(): Promise<void>;
  /** `postconf -c DIR -e k=v ...` then reload (waits until the old daemons have exited) */
  setMainCf(kv: Record<string, string>): Promise<void>;
  /** reload (SIGHUP to the master, as `postfix reload` does), wait until it is logged and the daemons started before it have exited */
  reload(): Promise<void>;
  /** current value of one main.cf parameter (`postconf -c DIR -h NAME`) */
  postconf(name: string): Promise<string>;
  /** the whole maillog (latin1) */
  maillog(): string;
  /** wait until a maillog line matches; returns the line; throws with the log tail on timeout */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** number of queue files (incoming, active, deferred, hold, maildrop) */
  queueCount(): number;
  /** wait until the queue is empty; throws with the log tail on timeout */
  waitQueueEmpty(timeoutMs?: number): Promise<void>;
  /** `postqueue -c DIR -f`: retry deferred mail now */
  flushQueue(): Promise<void>;
  /** submit one message locally with Postfix's sendmail (goes through non_smtpd_milters) */
  sendmail(opts: { from: string; rcpts: string[]; data: string | Uint8Array; timeoutMs?: number }): Promise<void>;
}

const POSTFIX = "/usr/sbin/postfix";
const POSTCONF = "/usr/sbin/postconf";

/** Is Postfix installed (the programs the harness runs)? */
export function postfixAvailable(): boolean {
  return ["/usr/sbin/postfix", "/usr/sbin/postconf", "/usr/lib/postfix/sbin/master"].every((p) => fs.existsSync(p));
}

/** `[host]:port`, the bracketed form that makes Postfix skip MX/DNS lookups. */
function bracket(host: string, port: number): string {
  return `[${host.replace(/^\[|\]$/g, "")}]:${port}`;
}

function mainCfText(o: {
  base: string;
  smtpPorts: { host: string; port: number }[];
  opts: PostfixOptions;
  syslogName: string;
  myhostname: string;
}): string {
  const { base, opts } = o;
  const relayHost = opts.relayHost ?? "127.0.0.1";
  const v6 = !!opts.ipv6 || relayHost.includes(":");
  const kv: Record<string, string> = {
    compatibility_level: "3.6",
    config_directory: `${base}/etc`,
    queue_directory: `${base}/spool`,
    data_directory: `${base}/data`,
    mail_owner: "postfix",
    setgid_group: "postdrop",
    // own name in the maillog, so that two instances (and the system one) are told apart
    syslog_name: o.syslogName,
    myhostname: o.myhostname,
    mydomain: o.myhostname,
    myorigin: "$myhostname",
    mydestination: "",
    inet_interfaces: opts.ipv6 ? "127.0.0.1, [::1]" : "127.0.0.1",
    inet_protocols: v6 ? "all" : "ipv4",
    mynetworks: "127.0.0.0/8 [::1]/128",
    smtpd_relay_restrictions: "permit_mynetworks, permit_sasl_authenticated, reject",
    // brackets: no MX/DNS lookup
    relayhost: opts.relayLmtp ? "" : bracket(relayHost, opts.relayPort),
    default_transport: opts.relayLmtp ? `lmtp:inet:${bracket(relayHost, opts.relayPort)}` : "smtp",
    alias_maps: "",
    alias_database: "",
    local_recipient_maps: "",
    biff: "no",
    smtputf8_enable: "no",
    smtpd_tls_security_level: "none",
    smtp_tls_security_level: "none",
    // no syslog daemon needed: postlogd writes here
    maillog_file: `${base}/log/maillog`,
    maillog_file_prefixes: base,
    smtpd_milters: opts.milters ?? "",
    non_smtpd_milters: opts.nonSmtpdMilters ?? "",
    milter_default_action: opts.defaultAction ?? "tempfail",
    milter_protocol: String(opts.milterProtocol ?? 6),
    // speed: no smtpd back-pressure, no error sleeps, quick retries of deferred mail
    in_flow_delay: "0",
    smtpd_error_sleep_time: "0",
    smtpd_soft_error_limit: "1000",
    smtpd_hard_error_limit: "1000",
    smtpd_client_connection_count_limit: "0",
    smtpd_client_connection_rate_limit: "0",
    queue_run_delay: "1s",
    minimal_backoff_time: "1s",
    maximal_backoff_time: "2s",
    smtp_connect_timeout: "2s",
    delay_warning_time: "0",
    // keep daemons from idling around after a reload/stop longer than needed
    max_idle: "10s",
  };
  if (opts.sasl) {
    Object.assign(kv, {
      // Cyrus SASL with a private sasldb; no TLS, so plaintext AUTH is allowed (loopback only)
      smtpd_sasl_auth_enable: "yes",
      smtpd_sasl_type: "cyrus",
      smtpd_sasl_path: "smtpd",
      cyrus_sasl_config_path: `${base}/etc/sasl`,
      smtpd_sasl_local_domain: o.myhostname,
      smtpd_sasl_security_options: "noanonymous",
    });
  }
  for (const [k, v] of Object.entries(opts.mainCf ?? {})) kv[k] = v;
  const lines = ["# Private Postfix instance of a milterkit end-to-end test (generated; loopback only)"];
  for (const [k, v] of Object.entries(kv)) {
    if (/[\r\n]/.test(k + v)) throw new Error(`main.cf value with a line break: ${k} = ${JSON.stringify(v)}`);
    lines.push(`${k} = ${v}`);
  }
  return lines.join("\n") + "\n";
}

function masterCfText(smtpd: { host: string; port: number; options?: Record<string, string> }[]): string {
  // Minimal service list, chroot n everywhere (Debian's default chroot needs copied /etc files).
  // The smtpd service names carry the instance's own ports, so they differ between instances.
  const smtpdLines = smtpd.map(({ host, port, options }) => {
    const o = Object.entries(options ?? {}).map(([k, v]) => {
      if (/\s/.test(k + v)) throw new Error(`master.cf -o value with a blank: ${k}=${JSON.stringify(v)}`);
      return ` -o ${k}=${v}`;
    });
    return `${bracketIf6(host)}:${port} inet n - n - - smtpd${o.join("")}`;
  });
  return [
    "# service type  private unpriv  chroot  wakeup  maxproc command",
    ...smtpdLines,
    "pickup    unix  n       -       n       60      1       pickup",
    "cleanup   unix  n       -       n       -       0       cleanup",
    "qmgr      unix  n       -       n       300     1       qmgr",
    "rewrite   unix  -       -       n       -       -       trivial-rewrite",
    "bounce    unix  -       -       n       -       0       bounce",
    "defer     unix  -       -       n       -       0       bounce",
    "trace     unix  -       -       n       -       0       bounce",
    "verify    unix  -       -       n       -       1       verify",
    "flush     unix  n       -       n       1000?   0       flush",
    "proxymap  unix  -       -       n       -       -       proxymap",
    "smtp      unix  -       -       n       -       -       smtp",
    "relay     unix  -       -       n       -       -       smtp",
    "lmtp      unix  -       -       n       -       -       lmtp",
    "showq     unix  n       -       n       -       -       showq",
    "error     unix  -       -       n       -       -       error",
    "retry     unix  -       -       n       -       -       error",
    "discard   unix  -       -       n       -       -       discard",
    "anvil     unix  -       -       n       -       1       anvil",
    "scache    unix  -       -       n       -       1       scache",
    "postlog   unix-dgram n  -       n       -       1       postlogd",
    "",
  ].join("\n");
}

const bracketIf6 = (h: string) => (h.includes(":") ? `[${h}]` : h);

/**
 * Postfix re-reads a configuration file every 300 ms for as long as its mtime
 * is within the last second or two (it guards against half-written files), so
 * a freshly written main.cf costs ~2 s in every Postfix program that reads it.
 * Files we have finished writing are back-dated to skip that wait.
 */
function backdate(etc: string): void {
  const past = new Date(Date.now() - 60_000);
  for (const f of ["main.cf", "master.cf"]) {
    try {
      fs.utimesSync(path.join(etc, f), past, past);
    } catch {
      // missing file: Postfix reports it
    }
  }
}

const QUEUES = ["incoming", "active", "deferred", "hold", "maildrop"];

function countFiles(dir: string): number {
  let n = 0;
  let ents: fs.Dirent[];
  try {
    ents = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of ents) n += e.isDirectory() ? countFiles(path.join(dir, e.name)) : 1;
  return n;
}

/** Create the Cyrus sasldb with one user; returns the login that Postfix accepts. */
async function makeSasldb(etc: string, realm: string): Promise<{ user: string; password: string }> {
  const sasl = makeDir(path.join(etc, "sasl"));
  const db = path.join(sasl, "sasldb2");
  fs.writeFileSync(
    path.join(sasl, "smtpd.conf"),
    `pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: ${db}\nmech_list: PLAIN LOGIN\n`,
  );
  const user = "mktest";
  // throw-away credentials for a private sasldb that only exists during one test
  const password = `pw-${Math.random().toString(36).slice(2, 10)}`;
  await run(["/usr/sbin/saslpasswd2", "-p", "-c", "-f", db, "-u", realm, user], { stdin: password + "\n" });
  // smtpd runs as postfix: the db must be readable by group postfix
  const pf = userIds("postfix");
  for (const f of fs.readdirSync(sasl)) {
    if (!f.startsWith("sasldb2")) continue;
    fs.chownSync(path.join(sasl, f), 0, pf.gid);
    fs.chmodSync(path.join(sasl, f), 0o640);
  }
  return { user: `${user}@${realm}`, password };
}

/** Start a private Postfix instance (see {@link PostfixOptions}). */
export async function startPostfix(opts: PostfixOptions): Promise<PostfixInstance> {
  if (!postfixAvailable()) throw new StartupError("postfix", "Postfix is not installed (/usr/sbin/postfix)");
  // The smtpd port is picked before Postfix binds it; if another process took it meanwhile, try again.
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(opts);
    } catch (e) {
      last = e;
      if (!(e instanceof StartupError && /Address already in use/.test(e.message))) throw e;
    }
  }
  throw last;
}

async function startOnce(opts: PostfixOptions): Promise<PostfixInstance> {
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;
  const base = makeTempDir("mk-pf-");
  const tag = path.basename(base).slice("mk-pf-".length); // unique: mkdtemp's suffix
  const syslogName = `postfix-mk-${tag}`;
  const myhostname = opts.myhostname ?? "postfix.milterkit.invalid";
  const etc = makeDir(path.join(base, "etc"));
  const spool = makeDir(path.join(base, "spool"));
  makeDir(path.join(base, "data"), 0o700, userIds("postfix")); // else: master.lock Permission denied
  makeDir(path.join(base, "log"));
  const maillogPath = path.join(base, "log", "maillog");
  const diag = (extra = "") => `${extra}${extra && !extra.endsWith("\n") ? "\n" : ""}${tailFile(maillogPath)}`;

  let masterPid = 0;
  let fg: Spawned | undefined;
  const abort = async () => {
    await killMaster(masterPid, fg, etc);
    removeDir(base);
  };

  try {
    const smtpPort = await freePort("127.0.0.1");
    const smtpPort6 = opts.ipv6 ? await freePort("::1") : undefined;
    const smtpd: { host: string; port: number; options?: Record<string, string> }[] = [{ host: "127.0.0.1", port: smtpPort }];
    if (smtpPort6 !== undefined) smtpd.push({ host: "::1", port: smtpPort6 });
    for (const x of opts.extraSmtpd ?? []) smtpd.push({ host: "127.0.0.1", port: x.port, options: x.options });

    let sasl: { user: string; password: string } | undefined;
    if (opts.sasl) sasl = await makeSasldb(etc, myhostname);
    fs.writeFileSync(path.join(etc, "main.cf"), mainCfText({ base, smtpPorts: smtpd, opts, syslogName, myhostname }));
    fs.writeFileSync(path.join(etc, "master.cf"), masterCfText(smtpd));
    backdate(etc);

    // `postfix start-fg`: postfix-script runs the same checks as `postfix start` (and creates the
    // queue directories), then runs the master in the foreground as its own child. The master thus
    // stays in our process tree and is reaped when it exits; a daemonized master (`postfix start`)
    // is re-parented to PID 1, which on minimal test machines leaves a zombie behind.
    const startLog = path.join(base, "log", "start-fg.log");
    fg = spawnTracked([POSTFIX, "-c", etc, "start-fg"], { logFile: startLog, what: `postfix start-fg ${etc}` });
    const masterPidFile = path.join(spool, "pid", "master.pid");
    await pollUntil(() => {
      const t = (() => {
        try {
          return fs.readFileSync(masterPidFile, "latin1").trim();
        } catch {
          return "";
        }
      })();
      if (/^\d+$/.test(t) && isAlive(Number(t))) masterPid = Number(t);
      return masterPid !== 0 || !isAlive(fg!.pid);
    }, startTimeoutMs, 20);
    if (!masterPid) {
      const how = isAlive(fg.pid) ? `no master.pid after ${startTimeoutMs} ms` : "exited";
      throw new StartupError("postfix", `postfix -c ${etc} start-fg ${how}`, diag(tailFile(startLog) + (await ttyDiagnostics(etc))));
    }
    // SIGTERM: the master passes it on to its children and exits; postfix-script then exits too
    trackPid(masterPid, `postfix master ${etc}`, "SIGTERM");
    untrackPid(fg.pid);
    for (const s of smtpd) {
      await waitForPort(s.host, s.port, startTimeoutMs, {
        pid: masterPid,
        logFile: maillogPath,
        what: `postfix smtpd ${s.host}:${s.port}`,
      });
    }
    return makeInstance({ base, etc, spool, maillogPath, syslogName, myhostname, smtpPort, smtpPort6, masterPid, fg, sasl });
  } catch (e) {
    await abort();
    if (e instanceof StartupError) throw e;
    throw new StartupError("postfix", e instanceof Error ? e.message : String(e), diag());
  }
}

/**
 * The postfix command prints its errors on stderr only when that is a
 * terminal, and errors found before postlogd runs may not reach the maillog.
 * So after a failed start, run `postfix check` under script(1) (a pseudo
 * terminal) to get the reason into the error message.
 */
async function ttyDiagnostics(etc: string): Promise<string> {
  if (!fs.existsSync("/usr/bin/script") || !/^[\w./-]+$/.test(etc)) return "";
  const r = await run(["/usr/bin/script", "-qec", `${POSTFIX} -c ${etc} check`, "/dev/null"], {
    timeoutMs: 15_000,
    check: false,
  }).catch(() => undefined);
  const text = r ? (r.stdout + r.stderr).replace(/\r/g, "").trim() : "";
  return text ? `postfix check: ${text}\n` : "";
}

/**
 * Stop an instance without leaving zombies. The master answers SIGTERM (what
 * `postfix stop` sends) by signalling its children and exiting at once,
 * without reaping them; they are re-parented to PID 1, which on minimal test
 * machines never reaps them. So first empty master.cf and reload - the master
 * then terminates and reaps every daemon of the removed services - and only
 * then SIGTERM the master (polling for its exit every 20 ms, rather than
 * postfix-script's `sleep 1` loop). SIGKILL by PID if it is still there after
 * 5 s; then any leftover daemon, and the `postfix start-fg` process.
 */
async function killMaster(masterPid: number, fg?: Spawned, etc?: string): Promise<void> {
  if (masterPid && isAlive(masterPid)) {
    const kids = childPids(masterPid);
    if (etc && kids.length) {
      try {
        fs.writeFileSync(path.join(etc, "master.cf"), "# emptied to stop the daemons before the master\n");
        backdate(etc);
        process.kill(masterPid, "SIGHUP"); // = the master's part of `postfix reload`
        // Wait until the master has also reaped them: a child still unreaped when the master
        // exits is re-parented to PID 1, and a minimal init never reaps it.
        await pollUntil(() => childPids(masterPid, true).length === 0, 5000);
      } catch {
        // fall through to SIGTERM
      }
    }
    await stopPid(masterPid, { graceMs: 5000 });
    for (const k of kids) if (isAlive(k)) await stopPid(k, { graceMs: 1000 });
  }
  untrackPid(masterPid);
  if (fg) {
    await Promise.race([fg.exited, sleep(5000)]);
    if (isAlive(fg.pid)) {
      trackPid(fg.pid, "postfix start-fg", "SIGKILL", fg.proc);
      await stopPid(fg.pid, { graceMs: 1000 });
    }
    untrackPid(fg.pid);
  }
}

function makeInstance(s: {
  base: string;
  etc: string;
  spool: string;
  maillogPath: string;
  syslogName: string;
  myhostname: string;
  smtpPort: number;
  smtpPort6?: number;
  masterPid: number;
  fg: Spawned;
  sasl?: { user: string; password: string };
}): PostfixInstance {
  const { base, etc, spool, maillogPath } = s;
  let stopped = false;
  const maillog = () => {
    try {
      return fs.readFileSync(maillogPath, "latin1");
    } catch {
      return "";
    }
  };
  const queueCount = () => QUEUES.reduce((n, q) => n + countFiles(path.join(spool, q)), 0);

  // `postfix reload` = postsuper active + SIGHUP to the master + `postsuper &`. That last one would
  // outlive the command as an orphan (a zombie under a PID 1 that does not reap), and a fresh test
  // queue needs no repair, so only the SIGHUP is sent.
  const reload = async () => {
    const reloads = () => maillog().split("\n").filter((l) => l.includes(`/master[${s.masterPid}]: reload`)).length;
    const n = reloads();
    // Daemons started before the reload finish at their convenience; wait for them so that the next
    // connection is served by a daemon that read the new main.cf.
    const before = childPids(s.masterPid);
    process.kill(s.masterPid, "SIGHUP");
    const ok = await pollUntil(() => reloads() > n && before.every((p) => !isAlive(p)), 15_000);
    if (!ok) {
      const left = before.filter(isAlive);
      throw new Error(
        `postfix reload: ${reloads() > n ? `daemons ${left.join(", ")} still running` : "no reload logged by the master"} ` +
          `15 s after SIGHUP\n${tailFile(maillogPath)}`,
      );
    }
  };

  return {
    smtpPort: s.smtpPort,
    smtpPort6: s.smtpPort6,
    base,
    configDir: etc,
    queueDir: spool,
    syslogName: s.syslogName,
    myhostname: s.myhostname,
    masterPid: s.masterPid,
    saslUser: s.sasl?.user,
    saslPassword: s.sasl?.password,
    async stop() {
      if (stopped) return;
      stopped = true;
      await killMaster(s.masterPid, s.fg, etc);
      removeDir(base);
    },
    async setMainCf(kv) {
      const args = Object.entries(kv).map(([k, v]) => {
        if (/[\r\n]/.test(k + v)) throw new Error(`main.cf value with a line break: ${k} = ${JSON.stringify(v)}`);
        return `${k} = ${v}`;
      });
      if (args.length === 0) return;
      await run([POSTCONF, "-c", etc, "-e", ...args], { timeoutMs: 15_000 });
      backdate(etc);
      await reload();
    },
    reload,
    async postconf(name) {
      return (await run([POSTCONF, "-c", etc, "-h", name], { timeoutMs: 15_000 })).stdout.replace(/\n$/, "");
    },
    maillog,
    async waitForLog(re, timeoutMs = 10_000) {
      let hit = "";
      const ok = await pollUntil(() => {
        hit = maillog().split("\n").find((l) => re.test(l)) ?? "";
        return hit !== "";
      }, timeoutMs, 50);
      if (!ok) throw new Error(`no maillog line matching ${re} after ${timeoutMs} ms\n${tailFile(maillogPath)}`);
      return hit;
    },
    queueCount,
    async waitQueueEmpty(timeoutMs = 20_000) {
      const ok = await pollUntil(() => queueCount() === 0, timeoutMs, 50);
      if (!ok) {
        throw new Error(`postfix queue still holds ${queueCount()} file(s) after ${timeoutMs} ms\n${tailFile(maillogPath)}`);
      }
    },
    async flushQueue() {
      await run(["/usr/sbin/postqueue", "-c", etc, "-f"], { timeoutMs: 15_000 });
    },
    async sendmail({ from, rcpts, data, timeoutMs = 15_000 }) {
      const body = typeof data === "string" ? Buffer.from(data, "latin1") : data;
      try {
        await run(["/usr/sbin/sendmail", "-C", etc, "-i", "-f", from, "--", ...rcpts], { stdin: body, timeoutMs });
      } catch (e) {
        if (e instanceof CommandError) throw new Error(`${e.message}\n${tailFile(maillogPath)}`);
        throw e;
      }
    },
  };
}

