/**
 * Directories of the end-to-end harness.
 *
 * Run-time state goes under /tmp (override: MK_E2E_TMP), never under /root
 * (mode 700): Postfix, opendkim and the sample milters run as the users
 * postfix, opendkim and nobody, and must be able to traverse every parent.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { trackDir } from "./proc.ts";

/** Absolute path of a file under test/fixtures/. */
export function fixturePath(rel: string): string {
  return path.resolve(import.meta.dir, "../../fixtures", rel);
}

/** Throw unless every directory from / down to `dir` can be searched by other users (mode o+x). */
export function assertSearchable(dir: string): void {
  let p = path.resolve(dir);
  for (;;) {
    const st = fs.statSync(p);
    if ((st.mode & 0o001) === 0) {
      throw new Error(
        `${p} is not searchable by other users (mode ${(st.mode & 0o777).toString(8)}): ` +
          `the users postfix, opendkim and nobody must traverse it; set MK_E2E_TMP to another directory`,
      );
    }
    const up = path.dirname(p);
    if (up === p) return;
    p = up;
  }
}

/** Root of all run-time directories (default /tmp). */
export function e2eTmpRoot(): string {
  const root = process.env.MK_E2E_TMP || "/tmp";
  fs.mkdirSync(root, { recursive: true });
  assertSearchable(root);
  return root;
}

/**
 * A fresh directory `ROOT/<prefix>XXXXXX`, mode 755, removed by the exit hook
 * unless the caller removes it first (or MK_E2E_KEEP=1).
 */
export function makeTempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(e2eTmpRoot(), prefix));
  fs.chmodSync(dir, 0o755); // mkdtemp creates 700
  trackDir(dir);
  return dir;
}

/** `mkdir -p` with an explicit mode and owner (mode is applied even if the umask is stricter). */
export function makeDir(dir: string, mode = 0o755, owner?: { uid: number; gid: number }): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, mode);
  if (owner) fs.chownSync(dir, owner.uid, owner.gid);
  return dir;
}

/**
 * Cache shared by test runs (built C milter, copies of the Python milters):
 * `os.tmpdir()/milterkit-e2e-cache`, falling back to the e2e root if
 * os.tmpdir() is not searchable by other users.
 */
export function cacheDir(): string {
  let base = os.tmpdir();
  try {
    assertSearchable(base);
  } catch {
    base = e2eTmpRoot();
  }
  const dir = path.join(base, "milterkit-e2e-cache");
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o755);
  return dir;
}
