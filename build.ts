// bun run build: compile src/main.ts into dist/milterkit and add one symlink per tool.
// Tests that need a binary of their own call compileMilterkit() so they use the same flags.
import { rmSync, mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import { createLinks } from "./src/cli/install-links.ts";

/**
 * Compile the multicall binary to `outFile`; throws with bun's stderr on failure.
 * --bytecode halves start-up time (it needs ESM for top-level await); --splitting puts what is
 * imported on demand (the other tools, --detect, the controller, ...) into chunks of its own, so a
 * resident manager never instantiates their functions (~0.5 MB, bench/idle-memory.bench.ts); a
 * daemon must never pick up a stray .env or bunfig.toml from its working directory.
 */
export function compileMilterkit(outFile: string, opts: { timeoutMs?: number; quiet?: boolean } = {}): void {
  compileEntry(join(import.meta.dir, "src/main.ts"), outFile, opts);
}

/** Compile any entry with the flags of compileMilterkit (bench/idle-memory.bench.ts compares programs built alike). */
export function compileEntry(entry: string, outFile: string, opts: { timeoutMs?: number; quiet?: boolean } = {}): void {
  const proc = Bun.spawnSync({
    cmd: [
      process.execPath, "build", "--compile", "--minify", "--bytecode", "--format=esm", "--splitting",
      "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig",
      entry, "--outfile", outFile,
    ],
    stdout: opts.quiet === false ? "inherit" : "pipe",
    stderr: opts.quiet === false ? "inherit" : "pipe",
    timeout: opts.timeoutMs ?? 90_000,
  });
  if (proc.exitCode !== 0) throw new Error(`bun build --compile failed (exit ${proc.exitCode}): ${proc.stderr?.toString() ?? ""}`);
}

if (import.meta.main) {
  const outDir = join(import.meta.dir, "dist");
  const outFile = join(outDir, "milterkit");
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  try {
    compileMilterkit(outFile, { quiet: false });
  } catch (e) {
    console.error(`build failed: ${(e as Error).message}`);
    process.exit(1);
  }
  // Relative links keep dist/ relocatable; dist/ is not on PATH, so the SMTP tools keep Postfix's names here.
  const links = createLinks(outDir, "milterkit", { postfixNames: true });
  console.log(`built ${outFile} and links: ${links.map((l) => basename(l)).join(" ")}`);
}
