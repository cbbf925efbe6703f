// The Debian package on this machine (root only: it installs into /usr and /etc and adds the
// user milterkit; CI runs as root): built with dpkg-deb from dist/milterkit, lintian without
// errors, dpkg -i, the files, the user, the conffiles, the installed tools, man -l on every page,
// the bash completion loaded by bash, systemd-analyze verify on the unit; the installed manager
// started the way the unit starts it, with a fake $NOTIFY_SOCKET; then dpkg --purge leaves
// nothing behind but the system user and group (Debian keeps those), which the test removes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OPTION_TABLES } from "../../src/cli/options/index.ts";
import { VERSION } from "../../src/version.ts";
import { COMMANDS, offered } from "../../packaging/completion.ts";
import { CONFFILES, buildDeb, UNIT } from "../../packaging/deb.ts";
import { allPages, INSTALLED_NAMES } from "../../packaging/man.ts";
import { freePort, track, until } from "../manager/support/daemon.ts";

const ROOT = join(import.meta.dir, "../..");
const BIN = join(ROOT, "dist/milterkit");
const isRoot = process.getuid?.() === 0;
const UNIT_PATH = `/lib/systemd/system/${UNIT}`;

function sh(cmd: string[], env: Record<string, string> = {}) {
  const p = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env }, timeout: 120_000 });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

/** dpkg, waiting for the lock another apt or dpkg on this machine may hold. */
async function dpkg(args: string[]) {
  for (let i = 0; ; i++) {
    const r = sh(["dpkg", ...args], { DEBIAN_FRONTEND: "noninteractive" });
    if (r.code === 0 || !/lock/i.test(r.err) || i >= 60) return r;
    await Bun.sleep(2000);
  }
}

const installed = () => sh(["dpkg-query", "-W", "-f=${Status}", "milterkit"]).out.includes("installed");

/** Purge the package and the user the postinst added: the machine as before. */
async function purgeAll() {
  if (sh(["dpkg-query", "-W", "milterkit"]).code === 0) await dpkg(["--purge", "milterkit"]);
  if (sh(["getent", "passwd", "milterkit"]).code === 0) sh(["deluser", "--system", "--quiet", "milterkit"]);
  if (sh(["getent", "group", "milterkit"]).code === 0) sh(["delgroup", "--system", "--quiet", "milterkit"]);
}

/** The unit's ExecStart= and ExecReload= lines, with systemd's $VAR / $$ expansion. */
function unitCommands(text: string, vars: Record<string, string>): { start: string[]; reload: string[][] } {
  const words = (line: string) =>
    (line.match(/'[^']*'|\S+/g) ?? []).flatMap((w) => {
      if (w.startsWith("'")) return [w.slice(1, -1).replace(/\$\$/g, "$")];
      const whole = /^\$(\w+)$/.exec(w);
      if (whole) return (vars[whole[1]] ?? "").split(/\s+/).filter(Boolean);
      return [w.replace(/\$\{(\w+)\}/g, (_, v) => vars[v] ?? "")];
    });
  const lines = (key: string) => [...text.matchAll(new RegExp(`^${key}=(.*)$`, "gm"))].map((m) => words(m[1]));
  return { start: lines("ExecStart")[0], reload: lines("ExecReload") };
}

/** A unix datagram socket bound by python3, as systemd binds $NOTIFY_SOCKET; on READY=1 it tries the port. */
async function notifySocket(path: string, port: number) {
  const script = [
    "import json, socket, sys, time",
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)",
    "s.bind(sys.argv[1])",
    "s.settimeout(0.5)",
    "print(json.dumps('bound'), flush=True)",
    "end = time.time() + 90",
    "while time.time() < end:",
    "    try: d = s.recv(4096).decode()",
    "    except socket.timeout: continue",
    "    if d == 'READY=1':",
    "        c = socket.socket()",
    "        try: c.connect(('127.0.0.1', int(sys.argv[2]))); d += ' (listening)'",
    "        except OSError: d += ' (not listening)'",
    "        c.close()",
    "    print(json.dumps(d), flush=True)",
  ].join("\n");
  const proc = Bun.spawn(["/usr/bin/python3", "-c", script, path, String(port)], { stdout: "pipe", stderr: "inherit" });
  track(proc.pid);
  let out = "";
  void (async () => {
    for await (const chunk of proc.stdout) out += Buffer.from(chunk).toString();
  })();
  const messages = (): string[] => out.split("\n").filter(Boolean).map((l) => JSON.parse(l));
  await until(() => messages()[0] === "bound", 15_000, "notify socket bound");
  return { messages: () => messages().slice(1), close: () => proc.kill() };
}

describe.skipIf(!isRoot)("the Debian package", () => {
  let work = "";
  let deb = "";
  const lintian: string[] = [];

  beforeAll(async () => {
    if (!existsSync(BIN)) throw new Error("dist/milterkit is missing: bun run build");
    await purgeAll(); // a previous run that died half-way
    work = mkdtempSync(join(tmpdir(), "mk-deb-"));
    deb = buildDeb({ outDir: work, binary: BIN, compressLevel: 1 });
  }, 180_000);

  afterAll(async () => {
    await purgeAll();
    if (work) rmSync(work, { recursive: true, force: true });
    if (lintian.length) console.log(`lintian:\n${lintian.join("\n")}`);
  }, 120_000);

  test("lintian finds no error", () => {
    const r = sh(["lintian", "--fail-on", "error", "--tag-display-limit", "0", deb]);
    lintian.push(...r.out.split("\n").filter((l) => /^[EWI]: /.test(l)));
    expect(r.out.split("\n").filter((l) => l.startsWith("E: "))).toEqual([]);
    expect(r.code).toBe(0);
  }, 120_000);

  test("dpkg -i installs it: binary, links, unit, logrotate, pages, completion, conffiles, user", async () => {
    const r = await dpkg(["-i", deb]);
    expect(r.err.replace(/^.*(warning|dpkg: .*lock).*$/gim, "").trim()).toBe("");
    expect(r.code).toBe(0);
    expect(installed()).toBe(true);

    expect(statSync("/usr/bin/milterkit").mode & 0o777).toBe(0o755);
    expect(readlinkSync("/usr/sbin/milter-manager")).toBe("../bin/milterkit");
    for (const name of ["milter-test-client", "milter-test-server", "milterkit-smtp-source", "milterkit-smtp-sink"]) {
      expect(readlinkSync(`/usr/bin/${name}`)).toBe("milterkit");
    }
    // Postfix's own tools are never shadowed.
    const owners = (p: string) => sh(["dpkg-query", "-S", p]).out;
    for (const p of ["/usr/bin/smtp-source", "/usr/bin/smtp-sink", "/usr/sbin/smtp-source", "/usr/sbin/smtp-sink"]) expect(owners(p)).not.toContain("milterkit");
    for (const p of [UNIT_PATH, "/etc/logrotate.d/milterkit", "/usr/share/zsh/vendor-completions/_milterkit", "/usr/share/doc/milterkit/copyright"]) {
      expect(existsSync(p)).toBe(true);
    }
    for (const c of COMMANDS) expect(existsSync(`/usr/share/bash-completion/completions/${c}`)).toBe(true);

    const conffiles = sh(["dpkg-query", "-W", "-f=${Conffiles}", "milterkit"]).out;
    for (const c of CONFFILES) expect(conffiles).toContain(c);
    expect(readFileSync("/etc/milterkit/milterkit.config.toml", "utf8")).toContain('effective_user = "milterkit"');
    expect(lstatSync("/etc/milterkit/conf.d").isDirectory()).toBe(true);

    // The system user and group: no login, no home.
    const pw = sh(["getent", "passwd", "milterkit"]).out.trim().split(":");
    expect(Number(pw[2])).toBeLessThan(1000);
    expect(pw[5]).toBe("/nonexistent");
    expect(pw[6]).toMatch(/nologin|false/);
    const gid = Number(sh(["getent", "group", "milterkit"]).out.split(":")[2]);
    expect(Number(pw[3])).toBe(gid);
    const log = statSync("/var/log/milterkit");
    expect({ uid: log.uid, gid: log.gid, mode: log.mode & 0o7777 }).toEqual({ uid: 0, gid, mode: 0o770 });
    // logrotate takes the file as it is (dry run).
    const rotate = sh(["logrotate", "--debug", "--state", join(work, "logrotate.state"), "/etc/logrotate.d/milterkit"]);
    expect(rotate.code).toBe(0);
    expect(rotate.err + rotate.out).not.toMatch(/error/i);
  }, 120_000);

  test("the installed tools run: milter-manager --version from /usr/sbin, the others from /usr/bin", () => {
    const v = sh(["/usr/sbin/milter-manager", "--version"]);
    expect(v).toEqual({ code: 0, out: `milter-manager ${VERSION}\n`, err: "" });
    expect(sh(["/usr/bin/milterkit", "--version"]).out).toBe(`milterkit ${VERSION}\n`);
    expect(sh(["/usr/bin/milterkit-smtp-source", "--version"]).out).toBe(`smtp-source ${VERSION}\n`);
    expect(sh(["/usr/bin/milterkit-smtp-sink", "--version"]).out).toBe(`smtp-sink ${VERSION}\n`);
    expect(sh(["/usr/bin/milter-test-server", "--version"]).out).toBe(`milter-test-server ${VERSION}\n`);
    expect(sh(["/usr/bin/milter-test-client", "--version"]).out).toBe(`${VERSION}\n`);
    // The shipped configuration loads; its user is the package's.
    const show = sh(["/usr/sbin/milter-manager", "--show-config"]);
    expect(show.code).toBe(0);
    expect(show.out).toContain('effective_user = "milterkit"');
  });

  test("man -l renders every page without a warning", () => {
    for (const page of allPages()) {
      const path = `/usr/share/man/man${page.section}/${page.file}.gz`;
      expect(existsSync(path)).toBe(true);
      const r = sh(["man", "--warnings", "-l", path], { MANWIDTH: "80", MAN_KEEP_FORMATTING: "0", LC_ALL: "C.UTF-8" });
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      const text = r.out.replace(/.\x08/g, ""); // nroff's overstrike bold and underline
      expect(text).toContain("NAME");
      expect(text).toMatch(new RegExp(`NAME\\s+${page.name.replace(".", "\\.")}\\s+-\\s`));
    }
  });

  test("bash loads the completion: every tool's options, values from choices", () => {
    for (const [tool, name] of Object.entries(INSTALLED_NAMES)) {
      const script = `source /usr/share/bash-completion/completions/${name}; complete -p ${name}; COMP_WORDS=(${name} -); COMP_CWORD=1; _milterkit; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const r = sh(["bash", "--norc", "--noprofile", "-c", script]);
      expect(r.err).toBe("");
      const [loaded, ...words] = r.out.trim().split("\n");
      expect(loaded).toBe(`complete -F _milterkit ${name}`);
      expect(words.sort()).toEqual(offered(OPTION_TABLES[tool]).sort());
    }
    const r = sh(["bash", "--norc", "--noprofile", "-c", `source /usr/share/bash-completion/completions/milterkit; COMP_WORDS=(milterkit manager --syslog-facility = lo); COMP_CWORD=4; _milterkit; echo "\${COMPREPLY[@]}"`]);
    expect(r.out.trim()).toBe("local0 local1 local2 local3 local4 local5 local6 local7");
  });

  test("systemd-analyze verify accepts the unit", () => {
    const r = sh(["systemd-analyze", "verify", UNIT_PATH]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const s = sh(["systemd-analyze", "security", "--offline=true", UNIT_PATH]);
    const score = /Overall exposure level for .*: ([\d.]+)/.exec(s.out);
    expect(score).not.toBeNull();
    console.log(`systemd-analyze security: ${score![0]}`);
  });

  test("the manager started as the unit starts it: READY=1 once it listens, milterkit, reload checked first, STOPPING=1", async () => {
    const port = freePort();
    const vars = { OPTION_ARGS: `--connection-spec inet:${port}@[127.0.0.1]`, MAINPID: "" };
    const unit = readFileSync(UNIT_PATH, "utf8");
    expect(unit).toMatch(/^Type=notify$/m);
    const { start } = unitCommands(unit, vars);
    expect(start[0]).toBe("/usr/sbin/milter-manager");
    const sock = join(work, "notify");
    const n = await notifySocket(sock, port);
    const proc = Bun.spawn(start, { env: { ...process.env, ...vars, NOTIFY_SOCKET: sock }, stdout: "pipe", stderr: "pipe", cwd: "/" });
    track(proc.pid);
    try {
      await until(() => n.messages().length > 0, 20_000, "READY=1");
      expect(n.messages()).toEqual(["READY=1 (listening)"]);
      // The package's default user, not nobody.
      const status = readFileSync(`/proc/${proc.pid}/status`, "utf8");
      const uid = Number(sh(["id", "-u", "milterkit"]).out.trim());
      expect(/^Uid:\s+(\d+)\s+(\d+)/m.exec(status)!.slice(1).map(Number)).toEqual([uid, uid]);

      // ExecReload: the check, then SIGHUP.
      const { reload } = unitCommands(unit, { ...vars, MAINPID: String(proc.pid) });
      expect(reload).toHaveLength(2);
      expect(reload[1]).toEqual(["/bin/kill", "-HUP", String(proc.pid)]);
      const bad = "/etc/milterkit/conf.d/zz-test-bad.toml";
      writeFileSync(bad, "[manager]\nno_such_item = 1\n");
      try {
        const check = sh(reload[0], vars);
        expect(check.code).not.toBe(0); // systemctl reload fails; no SIGHUP is sent
        expect(check.err).toContain("no_such_item");
      } finally {
        rmSync(bad, { force: true });
      }
      expect(n.messages()).toHaveLength(1);
      for (const cmd of reload) expect(sh(cmd, vars).code).toBe(0);
      await until(() => n.messages().length >= 3, 15_000, "RELOADING=1, READY=1");
      expect(n.messages()[1]).toStartWith("RELOADING=1");
      expect(n.messages()[2]).toBe("READY=1 (listening)");

      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
      await until(() => n.messages().length >= 4, 10_000, "STOPPING=1");
      expect(n.messages().slice(3)).toEqual(["STOPPING=1"]);
    } finally {
      proc.kill("SIGKILL");
      n.close();
    }
  }, 90_000);

  test("dpkg --purge leaves nothing but the system user and group", async () => {
    const listed = sh(["dpkg-query", "-L", "milterkit"]).out.split("\n").filter(Boolean);
    const r = await dpkg(["--purge", "milterkit"]);
    expect(r.code).toBe(0);
    expect(installed()).toBe(false);
    expect(sh(["dpkg-query", "-W", "milterkit"]).code).not.toBe(0);
    // Every file and link the package had is gone; its directories too, but for shared ones.
    const left = listed.filter((p) => {
      try {
        lstatSync(p);
      } catch {
        return false;
      }
      try {
        return !statSync(p).isDirectory(); // /lib may be a link to usr/lib
      } catch {
        return true; // a dangling link of ours
      }
    });
    expect(left).toEqual([]);
    for (const p of ["/etc/milterkit", "/var/log/milterkit", "/run/milterkit", "/usr/share/doc/milterkit"]) expect(existsSync(p)).toBe(false);
    // Debian keeps system users (files elsewhere may belong to them); the test takes them away.
    expect(sh(["getent", "passwd", "milterkit"]).code).toBe(0);
  }, 120_000);
});
