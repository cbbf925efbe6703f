// bun run build: compile src/main.ts into dist/milterkit and add one symlink per tool.
import { rmSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { createLinks } from "./src/cli/install-links.ts";

const outDir = join(import.meta.dir, "dist");
const outFile = join(outDir, "milterkit");
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

// --bytecode halves start-up time (it needs ESM for top-level await); a daemon
// must never pick up a stray .env or bunfig.toml from its working directory.
const proc = Bun.spawnSync({
  cmd: [
    process.execPath, "build", "--compile", "--minify", "--bytecode", "--format=esm",
    "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig",
    join(import.meta.dir, "src/main.ts"), "--outfile", outFile,
  ],
  stdout: "inherit",
  stderr: "inherit",
});
if (proc.exitCode !== 0) {
  console.error(`build failed (bun build exit ${proc.exitCode})`);
  process.exit(1);
}
// Relative links keep dist/ relocatable.
createLinks(outDir, "milterkit");
console.log(`built ${outFile} and links: milter-manager milter-test-client milter-test-server smtp-source smtp-sink`);
