// A scripted child milter in its own process, so a test can kill it (SIGKILL) mid-message.
// Usage: bun child-process.ts <script key to hang at>; prints "PORT <n>" once it listens and
// "GOT <key>" when that command arrives (then never answers it).
import type { Script } from "./scripted-milter.ts";
import { startScriptedMilter } from "./scripted-milter.ts";

const key = (process.argv[2] ?? "body") as keyof Script;
const m = await startScriptedMilter({
  [key]: () => {
    process.stdout.write(`GOT ${key}\n`);
    return "hang";
  },
});
process.stdout.write(`PORT ${m.port}\n`);
