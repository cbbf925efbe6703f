// Where each milter packaged for Debian keeps its socket, and the applicable conditions milter
// manager's Debian defaults give it (README.md, "Coming from milter manager").
//
// A milter is detected when its service is installed (a systemd unit or an init script, and the
// program it starts exists) and enabled (systemd: a link in multi-user.target.wants; init
// script: an S link in /etc/rc[2-5].d and no ENABLED=0 in /etc/default/NAME), and a socket is
// found. The socket is looked for where the service really takes it from, most specific first:
// a -p/-s flag on the effective command line, then the milter's own configuration file, then
// the variables of /etc/default/NAME and of the init script.
import { type Found, flagValue, readUnit, Root, shellVariables, shellWords, type Unit, unitValues, configValue } from "./files.ts";

/** The applicable conditions milter manager's Debian defaults attach. */
export const GREYLIST_CONDITIONS = ["Sendmail Compatible", "Stress Notify", "Trust", "Remote Network", "S25R", "Unauthenticated"];
export const FILTER_CONDITIONS = ["Remote Network", "Unauthenticated", "No Stress"];

/** What one detector found. */
export interface Detected {
  name: string;
  description: string | null;
  /** Where the description was read (unit Description or init script), if anywhere. */
  descriptionFrom?: Found;
  connection_spec: string;
  /** The line the socket was read from. */
  specFrom: Found;
  enabled: true;
  /** What makes the service count as enabled (a wants link, an rc link). */
  enabledFrom: { file: string; line?: number };
  applicable_conditions: string[];
  /** Extra seconds for reading_timeout/writing_timeout (milter-greylist's tarpit). */
  extraTimeout?: Found & { seconds: number };
}

/** A candidate that was looked at and not taken, and why (for --detect). */
export interface Skipped {
  name: string;
  why: string;
}

export type Outcome = { detected: Detected } | { skipped: Skipped } | undefined;

/** A socket as written by the milter's configuration, as a connection spec. */
export function normalizeSpec(raw: string): string | undefined {
  let s = raw.trim();
  if (s === "") return undefined;
  if (s.startsWith("/")) return `unix:${s}`;
  s = s.replace(/^(?:(?:unix|local):)+/, (m) => (m.startsWith("local:") ? "local:" : "unix:"));
  const hostPort = /^([A-Za-z0-9_.*-]+|\[[0-9A-Fa-f:.]+\]):([0-9]+)$/.exec(s); // rspamd's "localhost:11332"
  if (hostPort) {
    const host = hostPort[1] === "*" ? "127.0.0.1" : hostPort[1].replace(/^\[|\]$/g, "");
    return host.includes(":") ? `inet6:${hostPort[2]}@[${host}]` : `inet:${hostPort[2]}@${/^[0-9.]+$/.test(host) ? `[${host}]` : host}`;
  }
  if (/^(unix|local|inet|inet6):/.test(s)) return s;
  return undefined;
}

/** Service state common to every candidate. */
interface Service {
  unit?: Unit;
  /** The init script, when there is no unit. */
  initScript?: string;
  enabledFrom?: { file: string; line?: number };
  notEnabled?: string;
  /** ExecStart (unit) words after expanding EnvironmentFile variables. */
  execWords: string[];
  /** Variables of EnvironmentFile(s) or /etc/default + init script. */
  vars: Map<string, Found>;
  description?: Found;
}

function service(root: Root, name: string): Service | undefined {
  const unit = readUnit(root, `${name}.service`);
  const defaults = `/etc/default/${name}`;
  if (unit === "masked") return { execWords: [], vars: new Map(), notEnabled: `${name}.service is masked` };
  if (unit) {
    let vars = new Map<string, Found>();
    for (const env of unitValues(unit, "Service", "EnvironmentFile")) vars = shellVariables(root, env.value.replace(/^-/, ""), vars);
    const exec = unitValues(unit, "Service", "ExecStart").at(-1);
    const execWords = exec ? shellWords(exec.value.replace(/^[-@:+!]+/, ""), vars) : [];
    const wants = `/etc/systemd/system/multi-user.target.wants/${name}.service`;
    const s: Service = { unit, execWords, vars, description: unitValues(unit, "Unit", "Description").at(-1) };
    if (root.exists(wants)) s.enabledFrom = { file: wants };
    else s.notEnabled = `${unit.file} is not enabled (no ${wants})`;
    return s;
  }
  const initScript = `/etc/init.d/${name}`;
  if (!root.exists(initScript)) return undefined;
  // Init script defaults first, then /etc/default/NAME (which the script sources) overrides them.
  const vars = shellVariables(root, defaults, shellVariables(root, initScript, new Map(), { topLevelOnly: true }));
  const s: Service = { initScript, execWords: [], vars };
  const desc = vars.get("DESC");
  if (desc) s.description = desc;
  const enabledVar = vars.get("ENABLED");
  const rc = ["/etc/rc2.d", "/etc/rc3.d", "/etc/rc4.d", "/etc/rc5.d"]
    .flatMap((d) => root.list(d).filter((f) => new RegExp(`^S[0-9]{2}${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`).test(f)).map((f) => `${d}/${f}`));
  if (enabledVar && enabledVar.file === defaults && /^(0|no|false)$/i.test(enabledVar.value)) {
    s.notEnabled = `disabled by ENABLED=${enabledVar.value} at ${enabledVar.file}:${enabledVar.line}`;
  } else if (rc.length === 0) {
    s.notEnabled = `${initScript} is not enabled (no S link in /etc/rc[2-5].d)`;
  } else {
    s.enabledFrom = { file: rc[0] };
  }
  return s;
}

/** The program the service starts exists (a package removed but not purged leaves its files in /etc). */
function programMissing(root: Root, s: Service, fallback: string): string | undefined {
  const program = s.execWords[0] ?? s.vars.get("DAEMON")?.value ?? fallback;
  return root.exists(program) ? undefined : `${program} is not installed`;
}

/** A -p SPEC (or other flag) in the command line or in the usual option variables. */
function flagSpec(s: Service, flag: string): Found | undefined {
  if (s.unit) {
    const exec = unitValues(s.unit, "Service", "ExecStart").at(-1);
    const v = flagValue(s.execWords, flag);
    if (exec && v) return { ...exec, value: v };
  }
  for (const name of ["OPTIONS", "OPTARGS", "DAEMON_ARGS", "PARAMS", "DAEMON_OPTS", "EXTRAPARAMS"]) {
    const f = s.vars.get(name);
    const v = f && flagValue(shellWords(f.value), flag);
    if (f && v) return { ...f, value: v };
  }
  return undefined;
}

function variableSpec(s: Service, names: readonly string[]): Found | undefined {
  for (const n of names) {
    const f = s.vars.get(n);
    if (f && f.value !== "") return f;
  }
  return undefined;
}

/** One detector: how the candidate `name` finds its socket. */
interface Candidate {
  name: string;
  conditions: string[];
  /** Program looked for when neither ExecStart nor DAEMON names it. */
  program: string;
  socket: (root: Root, s: Service) => Found | undefined;
  /** Extra checks once a socket is found (milter-greylist's tarpit). */
  extra?: (root: Root, d: Detected) => void;
}

const GENERIC_VARS = ["SOCKET", "SOCKFILE", "CONNECTION_SPEC"];

/** opendkim and opendmarc: -p on the command line, else Socket in the configuration file (-x), else SOCKET. */
function trustedDomainMilter(name: string, conf: string): Candidate {
  return {
    name,
    conditions: [],
    program: `/usr/sbin/${name}`,
    socket: (root, s) => flagSpec(s, "-p") ?? configValue(root, flagValue(s.execWords, "-x") ?? conf, "Socket") ?? variableSpec(s, GENERIC_VARS),
  };
}

const CANDIDATES: readonly Candidate[] = [
  {
    name: "milter-greylist",
    conditions: GREYLIST_CONDITIONS,
    program: "/usr/sbin/milter-greylist",
    socket: (root, s) => flagSpec(s, "-p") ?? greylistConf(root, s, "socket") ?? variableSpec(s, GENERIC_VARS),
    extra: (root, d) => {
      // milter-greylist holds a tarpitted client for up to `tarpit` seconds before answering.
      const t = greylistTarpit(root);
      if (t) d.extraTimeout = t;
    },
  },
  {
    name: "spfmilter",
    conditions: FILTER_CONDITIONS,
    program: "/usr/sbin/spfmilter",
    socket: (_root, s) => flagSpec(s, "-p") ?? variableSpec(s, GENERIC_VARS),
  },
  {
    // Debian 12's SPF milter (the python one; its configuration file is the ExecStart argument).
    name: "pyspf-milter",
    conditions: FILTER_CONDITIONS,
    program: "/usr/bin/pyspf-milter",
    socket: (root, s) => configValue(root, s.execWords.slice(1).find((w) => w.startsWith("/")) ?? "/etc/pyspf-milter/pyspf-milter.conf", "Socket"),
  },
  {
    name: "clamav-milter",
    conditions: [],
    program: "/usr/sbin/clamav-milter",
    socket: (root, s) => configValue(root, flagValue(s.execWords, "-c") ?? "/etc/clamav/clamav-milter.conf", "MilterSocket"),
  },
  trustedDomainMilter("opendkim", "/etc/opendkim.conf"),
  trustedDomainMilter("opendmarc", "/etc/opendmarc.conf"),
  {
    name: "spamass-milter",
    conditions: FILTER_CONDITIONS,
    program: "/usr/sbin/spamass-milter",
    socket: (root, s) => {
      const flag = flagSpec(s, "-p");
      if (flag) return flag;
      const v = s.vars.get("SOCKET");
      // The init script moves the socket under Postfix's spool when Postfix is installed, unless
      // /etc/default sets SOCKET.
      if (v && v.file === `/etc/default/${"spamass-milter"}`) return v;
      if (s.initScript && root.exists("/usr/sbin/postfix")) {
        const all = shellVariables(root, s.initScript).get("SOCKET");
        if (all) return all;
      }
      return v;
    },
  },
  {
    name: "amavisd-milter",
    conditions: [],
    program: "/usr/sbin/amavisd-milter",
    socket: (root, s) => flagSpec(s, "-s") ?? variableSpec(s, ["MILTERSOCKET", ...GENERIC_VARS]) ?? initDefault(root, s, "MILTERSOCKET"),
  },
  {
    name: "amavisd-new-milter",
    conditions: [],
    program: "/usr/sbin/amavisd-new-milter",
    socket: (root, s) => flagSpec(s, "-s") ?? flagSpec(s, "-p") ?? variableSpec(s, ["MILTERSOCKET", ...GENERIC_VARS]) ?? initDefault(root, s, "MILTERSOCKET"),
  },
  {
    name: "rspamd",
    conditions: FILTER_CONDITIONS,
    program: "/usr/bin/rspamd",
    socket: (root, s) => rspamdProxy(root, flagValue(s.execWords, "-c") ?? "/etc/rspamd/rspamd.conf"),
  },
];

/** A default an init script assigns inside an `if [ -z "$VAR" ]` block. */
function initDefault(root: Root, s: Service, name: string): Found | undefined {
  return s.initScript ? shellVariables(root, s.initScript).get(name) : undefined;
}

const GREYLIST_CONFS = ["/etc/milter-greylist/greylist.conf", "/etc/mail/greylist.conf"];

/** `socket "/path" [mode]` in greylist.conf (the first file found, or -f on the command line). */
function greylistConf(root: Root, s: Service, key: string): Found | undefined {
  const files = [flagValue(s.execWords, "-f"), s.vars.get("CONFIG")?.value, ...GREYLIST_CONFS].filter((f): f is string => !!f);
  for (const f of files) {
    const text = root.read(f);
    if (text === undefined) continue;
    let found: Found | undefined;
    text.split("\n").forEach((l, i) => {
      const m = new RegExp(`^\\s*${key}\\s+"?([^"\\s]+)"?`).exec(l);
      if (m) found = { value: m[1], file: f, line: i + 1 };
    });
    return found;
  }
  return undefined;
}

/** The largest `tarpit` delay in greylist.conf, in seconds (`30`, `30s`, `2m`, `1h`). */
function greylistTarpit(root: Root): (Found & { seconds: number }) | undefined {
  const units: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  let best: (Found & { seconds: number }) | undefined;
  for (const f of GREYLIST_CONFS) {
    const text = root.read(f);
    if (text === undefined) continue;
    text.split("\n").forEach((l, i) => {
      if (/^\s*#/.test(l)) return;
      for (const m of l.matchAll(/\btarpit\s+([0-9]+)([smhdw]?)\b/g)) {
        const seconds = Number(m[1]) * units[m[2]];
        if (!best || seconds > best.seconds) best = { value: m[0], file: f, line: i + 1, seconds };
      }
    });
    break;
  }
  return best;
}

/**
 * rspamd's proxy worker in milter mode: `worker "rspamd_proxy" { bind_socket = ...; }` in
 * rspamd.conf, with `milter` and `bind_socket` settable in worker-proxy.inc and its local.d /
 * override.d copies (override.d wins, then local.d, then the stock file).
 */
function rspamdProxy(root: Root, conf: string): Found | undefined {
  const text = root.read(conf);
  if (text === undefined) return undefined;
  const dir = conf.replace(/\/[^/]*$/, "");
  let bind: Found | undefined;
  let inProxy = 0;
  text.split("\n").forEach((l, i) => {
    if (/^\s*worker\s+"?rspamd_proxy"?\s*\{/.test(l)) inProxy = 1;
    else if (inProxy && /\}/.test(l)) inProxy = 0;
    else if (inProxy && !bind) {
      const m = /^\s*bind_socket\s*=\s*"?([^";]+)"?/.exec(l);
      if (m) bind = { value: m[1], file: conf, line: i + 1 };
    }
  });
  let milter: Found | undefined;
  for (const f of [`${dir}/worker-proxy.inc`, `${dir}/local.d/worker-proxy.inc`, `${dir}/override.d/worker-proxy.inc`]) {
    const t = root.read(f);
    if (t === undefined) continue;
    t.split("\n").forEach((l, i) => {
      const m = /^\s*milter\s*=\s*"?([A-Za-z]+)"?/.exec(l);
      if (m) milter = { value: m[1], file: f, line: i + 1 };
      const b = /^\s*bind_socket\s*=\s*"?([^";]+)"?/.exec(l);
      if (b) bind = { value: b[1], file: f, line: i + 1 };
    });
  }
  if (!milter || !/^(yes|true|on)$/i.test(milter.value)) return undefined;
  return bind;
}

/** Run every candidate under `root`. */
export function detectAll(root: Root): { detected: Detected[]; skipped: Skipped[] } {
  const detected: Detected[] = [];
  const skipped: Skipped[] = [];
  for (const c of CANDIDATES) {
    const o = detectOne(root, c);
    if (!o) continue;
    if ("detected" in o) detected.push(o.detected);
    else skipped.push(o.skipped);
  }
  return { detected, skipped };
}

function detectOne(root: Root, c: Candidate): Outcome {
  const s = service(root, c.name);
  if (!s) return undefined; // not installed: not worth a line
  const missing = programMissing(root, s, c.program);
  if (missing) return { skipped: { name: c.name, why: missing } };
  if (s.notEnabled) return { skipped: { name: c.name, why: s.notEnabled } };
  const found = c.socket(root, s);
  if (!found) return { skipped: { name: c.name, why: c.name === "rspamd" ? "no rspamd_proxy worker in milter mode" : "no socket found in its configuration" } };
  const spec = normalizeSpec(found.value);
  if (!spec) return { skipped: { name: c.name, why: `cannot use socket "${found.value}" (${found.file}:${found.line})` } };
  const d: Detected = {
    name: c.name,
    description: s.description?.value ?? null,
    descriptionFrom: s.description,
    connection_spec: spec,
    specFrom: found,
    enabled: true,
    enabledFrom: s.enabledFrom!,
    applicable_conditions: [...c.conditions],
  };
  c.extra?.(root, d);
  return { detected: d };
}
