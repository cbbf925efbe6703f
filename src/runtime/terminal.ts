// Is this descriptor a terminal? node:tty's isatty() asks the same native check, but importing
// node:tty makes Bun load its whole Node stream stack first: ~3.5 ms of CPU at the start of every
// run of a tool (bench/startup.bench.ts), more than smtp-source -m 1 spends on its dialogue. Bun's
// tty_wrap binding is that check alone; node:tty stays the fallback should a Bun lack it.

type TtyWrap = { isTTY(fd: number): boolean };

function fromBinding(): ((fd: number) => boolean) | undefined {
  try {
    const wrap = (process as unknown as { binding(name: string): TtyWrap }).binding("tty_wrap");
    return typeof wrap?.isTTY === "function" ? (fd) => wrap.isTTY(fd) : undefined;
  } catch {
    return undefined;
  }
}

let check: ((fd: number) => boolean) | undefined;

export function isTerminal(fd: number): boolean {
  check ??= fromBinding() ?? (require("node:tty") as typeof import("node:tty")).isatty;
  return check(fd);
}
