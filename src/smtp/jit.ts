// smtp-source's engine stays below JavaScriptCore's top tier (FTL). A load
// run spends most of its time in the kernel; the FTL's compiles of the reply
// dispatch (which inline the whole dialogue, once for every entry point)
// cost a run tens of milliseconds of CPU that the faster code never earns
// back, while the steady CPU per message is the same at the DFG tier
// (bench/smtp-source.bench.ts: fixed and steady CPU of a run).
import { noFTL } from "bun:jsc";

type Fn = (...args: any[]) => any;

/** Keep the methods of these classes (static ones too) and the functions of these objects below the FTL. */
export function belowFTL(...targets: object[]): void {
  for (const t of targets) {
    for (const holder of typeof t === "function" ? [t.prototype, t] : [t]) {
      for (const key of Object.getOwnPropertyNames(holder)) {
        const d = Object.getOwnPropertyDescriptor(holder, key)!;
        for (const f of [d.value, d.get, d.set]) if (typeof f === "function") noFTL(f as Fn);
      }
    }
  }
}
