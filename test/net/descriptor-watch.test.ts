// The listener's watch on free descriptors keeps looking while it accepts: descriptors also go to
// what it does not accept (the manager's child connections, files), which its per-accept estimate
// does not count. Run in a process of its own with a low open-file limit.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { tempDir } from "./helpers.ts";
import { writeFileSync } from "node:fs";

const SRC = join(import.meta.dir, "..", "..", "src");

test("descriptors used up by something other than accepts, long after listen: accepting pauses", async () => {
  const dir = tempDir();
  const script = join(dir.path, "watch.ts");
  writeFileSync(script, `
import { openSync, readdirSync } from "node:fs";
import { setFileDescriptorLimit } from ${JSON.stringify(join(SRC, "runtime", "limits.ts"))};
import { listen } from ${JSON.stringify(join(SRC, "net", "listener.ts"))};
import { parseSpec } from ${JSON.stringify(join(SRC, "net", "spec.ts"))};
setFileDescriptorLimit(256); // reserve: 16 descriptors
let paused = false;
const l = await listen(parseSpec("inet:0@[127.0.0.1]", { allowPortZero: true }), { connection(c) { c.close(); } },
  { onAcceptPaused: () => { paused = true; } });
await Bun.sleep(2500); // past the first look a second after listening
const held = [];
while (readdirSync("/proc/self/fd").length < 250) held.push(openSync("/dev/null", "r"));
for (let i = 0; i < 40 && !paused; i++) await Bun.sleep(100);
console.log(paused ? "paused" : "not paused");
l.close();
process.exit(0);
`);
  const p = Bun.spawn(["bun", script], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill(), 20_000);
  const [out, err] = [await new Response(p.stdout).text(), await new Response(p.stderr).text()];
  clearTimeout(timer);
  await p.exited;
  dir.remove();
  expect(`${out}${err}`.trim()).toBe("paused");
});
