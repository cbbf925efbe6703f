// isTerminal (src/runtime/terminal.ts) answers as node:tty's isatty, on a pipe, a file, /dev/null and a pseudo-terminal.
import { expect, test } from "bun:test";
import { closeSync, openSync } from "node:fs";
import { isatty } from "node:tty";
import { isTerminal } from "../../src/runtime/terminal.ts";

test("isTerminal agrees with isatty on this process's descriptors and /dev/null", () => {
  for (const fd of [0, 1, 2]) expect(isTerminal(fd)).toBe(isatty(fd));
  const fd = openSync("/dev/null", "r");
  try {
    expect(isTerminal(fd)).toBe(false);
  } finally {
    closeSync(fd);
  }
  expect(isTerminal(9999)).toBe(false);
});

test("isTerminal is true on a pseudo-terminal and false on a pipe", () => {
  const probe = `import { isTerminal } from ${JSON.stringify(`${import.meta.dir}/../../src/runtime/terminal.ts`)}; console.log(JSON.stringify([isTerminal(0), isTerminal(1)]));`;
  const piped = Bun.spawnSync([process.execPath, "-e", probe], { stdin: "pipe", stdout: "pipe" });
  expect(JSON.parse(piped.stdout.toString())).toEqual([false, false]);
  // script(1) runs the probe on a pseudo-terminal (util-linux, in every Debian).
  const tty = Bun.spawnSync(["script", "-qec", `${process.execPath} -e '${probe}'`, "/dev/null"], { stdin: "pipe", stdout: "pipe", timeout: 20_000 });
  expect(tty.stdout.toString()).toContain("[true,true]");
});
