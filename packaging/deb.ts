// bun run package: dist/milterkit_<version>_<arch>.deb, built offline with dpkg-deb.
//
//   /usr/bin/milterkit                      the binary
//   /usr/sbin/milter-manager                link (a daemon: sbin, as milter-manager's own package)
//   /usr/bin/milter-test-{client,server}    links
//   /usr/bin/milterkit-smtp-{source,sink}   links: Postfix's smtp-source/smtp-sink keep their names
//   /etc/milterkit/milterkit.config.toml    conffile, commented; conf.d/ for more files
//   /etc/logrotate.d/milterkit              conffile
//   /lib/systemd/system/milterkit-manager.service
//   /usr/share/man/man{1,5,8}/...           generated (man.ts)
//   /usr/share/{bash-completion/completions,zsh/vendor-completions}/...  generated (completion.ts)
//   DEBIAN/postinst: system user and group milterkit; postrm purge: their files
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { gzipSync } from "node:zlib";
import { compileMilterkit } from "../build.ts";
import { VERSION } from "../src/version.ts";
import { bashCompletion, COMMANDS, zshCompletion } from "./completion.ts";
import { allPages, INSTALLED_NAMES } from "./man.ts";

const ROOT = join(import.meta.dir, "..");
const HERE = import.meta.dir;

export const PACKAGE = "milterkit";
export const UNIT = "milterkit-manager.service";
export const CONFFILES = ["/etc/milterkit/milterkit.config.toml", "/etc/logrotate.d/milterkit"];

/** Debian's name of this machine's architecture (the binary is built for it). */
export function debArch(): string {
  const p = Bun.spawnSync(["dpkg", "--print-architecture"], { stdout: "pipe" });
  if (p.exitCode === 0) return p.stdout.toString().trim();
  return ({ x64: "amd64", arm64: "arm64" } as Record<string, string>)[process.arch] ?? process.arch;
}

export function debPath(outDir = join(ROOT, "dist")): string {
  return join(outDir, `${PACKAGE}_${VERSION}_${debArch()}.deb`);
}

/** gzip -9n: no name, no time stamp, so the same input gives the same bytes. */
function gz(data: string | Uint8Array): Uint8Array {
  const out = gzipSync(data, { level: 9 });
  out[4] = out[5] = out[6] = out[7] = 0; // MTIME
  out[9] = 3; // OS: Unix, as gzip -n writes it
  return out;
}

function put(root: string, path: string, data: string | Uint8Array, mode = 0o644): void {
  const full = join(root, path);
  mkdirSync(dirname(full), { recursive: true, mode: 0o755 });
  writeFileSync(full, data);
  chmodSync(full, mode);
}

function link(root: string, path: string, target: string): void {
  const full = join(root, path);
  mkdirSync(dirname(full), { recursive: true, mode: 0o755 });
  symlinkSync(target, full);
}

function files(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return files(p, base);
    return e.isFile() ? [relative(base, p)] : [];
  });
}

function duKiB(dir: string): number {
  let bytes = 0;
  for (const f of files(dir)) bytes += statSync(join(dir, f)).size;
  return Math.ceil(bytes / 1024);
}

function changelog(): string {
  const date = new Date(Number(process.env.SOURCE_DATE_EPOCH ?? 0) * 1000 || Date.now()).toUTCString().replace(/GMT$/, "+0000");
  return `${PACKAGE} (${VERSION}) unstable; urgency=medium\n\n  * Release ${VERSION}.\n\n -- milterkit developers <milterkit@example.org>  ${date}\n`;
}

function control(arch: string, installedKiB: number): string {
  return [
    `Package: ${PACKAGE}`,
    `Version: ${VERSION}`,
    `Architecture: ${arch}`,
    "Maintainer: milterkit developers <milterkit@example.org>",
    `Installed-Size: ${installedKiB}`,
    "Depends: libc6 (>= 2.17), adduser",
    "Suggests: postfix",
    "Section: mail",
    "Priority: optional",
    "Description: milter toolkit: milter manager, milter test tools, SMTP load tools",
    " milterkit is one executable holding a milter manager compatible with",
    " milter-manager (a milter that passes each SMTP session to several child",
    " milters, such as opendkim or clamav-milter, and merges their answers for",
    " Postfix or Sendmail), milter-test-client and milter-test-server for",
    " testing milters, and SMTP load generator and sink tools compatible with",
    " Postfix's smtp-source and smtp-sink (installed as milterkit-smtp-source",
    " and milterkit-smtp-sink).",
    "",
  ].join("\n");
}

/** Stage the package tree in `stage` from the compiled binary at `binary`. */
export function stageTree(stage: string, binary: string): void {
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true, mode: 0o755 });
  put(stage, "usr/bin/milterkit", readFileSync(binary), 0o755);
  for (const [tool, name] of Object.entries(INSTALLED_NAMES)) {
    if (tool === "manager") link(stage, `usr/sbin/${name}`, "../bin/milterkit");
    else link(stage, `usr/bin/${name}`, "milterkit");
  }
  put(stage, "etc/milterkit/milterkit.config.toml", readFileSync(join(HERE, "milterkit.config.toml")));
  mkdirSync(join(stage, "etc/milterkit/conf.d"), { recursive: true, mode: 0o755 });
  put(stage, "etc/logrotate.d/milterkit", readFileSync(join(HERE, "milterkit.logrotate")));
  put(stage, `lib/systemd/system/${UNIT}`, readFileSync(join(HERE, UNIT)));
  for (const page of allPages()) put(stage, `usr/share/man/man${page.section}/${page.file}.gz`, gz(page.text));
  put(stage, "usr/share/bash-completion/completions/milterkit", bashCompletion());
  for (const c of COMMANDS) if (c !== "milterkit") link(stage, `usr/share/bash-completion/completions/${c}`, "milterkit");
  put(stage, "usr/share/zsh/vendor-completions/_milterkit", zshCompletion());
  put(stage, "usr/share/doc/milterkit/copyright", readFileSync(join(HERE, "debian/copyright")));
  put(stage, "usr/share/doc/milterkit/changelog.gz", gz(changelog()));
  put(stage, "usr/share/lintian/overrides/milterkit", readFileSync(join(HERE, "debian/lintian-overrides")));

  const arch = debArch();
  const md5 = files(stage).sort().map((f) => `${new Bun.CryptoHasher("md5").update(readFileSync(join(stage, f))).digest("hex")}  ${f}`);
  put(stage, "DEBIAN/control", control(arch, duKiB(stage)));
  put(stage, "DEBIAN/conffiles", CONFFILES.join("\n") + "\n");
  put(stage, "DEBIAN/md5sums", md5.join("\n") + "\n");
  for (const s of ["postinst", "prerm", "postrm"]) put(stage, `DEBIAN/${s}`, readFileSync(join(HERE, "debian", s)), 0o755);
}

/** Build the .deb into `outDir` (compiling the binary first unless given one); returns its path. */
export function buildDeb(opts: { outDir?: string; binary?: string; quiet?: boolean; compressLevel?: number } = {}): string {
  const outDir = opts.outDir ?? join(ROOT, "dist");
  const work = join(outDir, "deb");
  mkdirSync(outDir, { recursive: true });
  const binary = opts.binary ?? join(outDir, "deb-milterkit");
  if (!opts.binary) compileMilterkit(binary, { quiet: opts.quiet ?? true });
  const stage = join(work, "root");
  stageTree(stage, binary);
  const out = debPath(outDir);
  const p = Bun.spawnSync(["dpkg-deb", "--root-owner-group", "-Zgzip", `-z${opts.compressLevel ?? 9}`, "--build", stage, out], { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`dpkg-deb failed: ${p.stderr.toString()}`);
  rmSync(work, { recursive: true, force: true });
  if (!opts.binary) rmSync(binary, { force: true });
  return out;
}

if (import.meta.main) {
  try {
    console.log(`built ${buildDeb({ quiet: false })}`);
  } catch (e) {
    console.error(`package failed: ${(e as Error).message}`);
    process.exit(1);
  }
}
