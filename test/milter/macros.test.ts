/** Macro names, symbol lists, filtering, and MacroContext's lifetime rule. */
import { describe, expect, test } from "bun:test";
import {
  MacroContext,
  decodeCommands,
  filterMacros,
  formatSymbolList,
  getMacro,
  macroKey,
  macroWireName,
  macrosFrom,
  parseSymbolList,
} from "../../src/milter/index.ts";
import { fromHex, vector } from "./helpers.ts";

describe("names", () => {
  test("macroKey: braces removed, j ≡ {j}", () => {
    expect(macroKey("j")).toBe("j");
    expect(macroKey("{j}")).toBe("j");
    expect(macroKey("{daemon_name}")).toBe("daemon_name");
    expect(macroKey("{")).toBe("{");
    expect(macroKey("{}")).toBe("");
  });

  test("macroWireName: long names get braces, given spellings are kept", () => {
    expect(macroWireName("daemon_name")).toBe("{daemon_name}");
    expect(macroWireName("{daemon_name}")).toBe("{daemon_name}");
    expect(macroWireName("j")).toBe("j");
    expect(macroWireName("{j}")).toBe("{j}");
    expect(macroWireName("_")).toBe("_");
  });

  test("getMacro finds a macro under either spelling", () => {
    const m = macrosFrom({ j: "mx.example", "{daemon_name}": "mta", "{i}": "QID" });
    expect(getMacro(m, "j")).toBe("mx.example");
    expect(getMacro(m, "{j}")).toBe("mx.example");
    expect(getMacro(m, "daemon_name")).toBe("mta");
    expect(getMacro(m, "{daemon_name}")).toBe("mta");
    expect(getMacro(m, "i")).toBe("QID");
    expect(getMacro(m, "missing")).toBeUndefined();
  });
});

describe("symbol lists", () => {
  test("parse: spaces, tabs and commas; empty items dropped", () => {
    expect(parseSymbolList("{client_addr} j")).toEqual(["{client_addr}", "j"]);
    expect(parseSymbolList("j, {_},\t{daemon_name}  ,")).toEqual(["j", "{_}", "{daemon_name}"]);
    expect(parseSymbolList("")).toEqual([]);
    expect(parseSymbolList(" , ")).toEqual([]);
  });

  test("format: space-separated (as in R03)", () => {
    expect(formatSymbolList(["{client_addr}", "j"])).toBe("{client_addr} j");
  });

  test("filterMacros: only requested ones, list order and spelling, missing ones omitted, each once", () => {
    const [d] = decodeCommands(fromHex(vector("T05").hex));
    if (d.type !== "macro") throw new Error("T05 is a D packet");
    const f = filterMacros(d.macros, ["{client_addr}", "{daemon_addr}", "{j}", "v", "j"]);
    expect([...f]).toEqual([
      ["{daemon_addr}", "127.0.0.1"],
      ["{j}", "mta.example.test"],
      ["v", "Postfix 3.7.11"],
    ]);
    expect(filterMacros(d.macros, []).size).toBe(0);
  });
});

describe("MacroContext (libmilter lifetime rule)", () => {
  const m = (v: string) => macrosFrom({ x: v });

  test("a stage's values are replaced by its next D", () => {
    const ctx = new MacroContext();
    ctx.define("R", macrosFrom({ "{rcpt_addr}": "a@example" }));
    ctx.define("R", macrosFrom({ "{rcpt_host}": "example" }));
    expect(ctx.get("rcpt_addr")).toBeUndefined();
    expect(ctx.get("{rcpt_host}")).toBe("example");
    expect([...ctx.stage("R")!]).toEqual([["{rcpt_host}", "example"]]);
  });

  test("each command clears the later stages; later stages win lookups", () => {
    const ctx = new MacroContext();
    for (const s of ["C", "H", "M", "R", "T", "L", "N", "B", "E"]) ctx.define(s, m(s));
    expect(ctx.get("x")).toBe("E");
    ctx.enter("R");
    expect(["C", "H", "M", "R", "T", "L", "N", "B", "E"].filter((s) => ctx.stage(s))).toEqual(["C", "H", "M", "R"]);
    expect(ctx.get("x")).toBe("R");
    ctx.enter("M");
    expect(ctx.get("x")).toBe("M");
    ctx.enter("H");
    expect(ctx.get("x")).toBe("H");
    ctx.enter("C");
    expect(ctx.get("x")).toBe("C");
  });

  test("A clears MAIL…EOM; connect and HELO values stay", () => {
    const ctx = new MacroContext();
    for (const s of ["C", "H", "M", "R", "T", "N", "E"]) ctx.define(s, macrosFrom({ [s]: "1" }));
    ctx.enter("A");
    expect([...ctx.visible().keys()]).toEqual(["C", "H"]);
  });

  test("K, Q and O clear everything; C drops U values too", () => {
    for (const c of ["K", "Q", "O"]) {
      const ctx = new MacroContext();
      ctx.define("C", m("c"));
      ctx.define("U", m("u"));
      ctx.enter(c);
      expect(ctx.visible().size).toBe(0);
    }
    const ctx = new MacroContext();
    ctx.define("U", m("u"));
    ctx.define("C", m("c"));
    expect(ctx.get("x")).toBe("u");
    ctx.enter("M");
    expect(ctx.get("x")).toBe("u");
    ctx.enter("C");
    expect(ctx.get("x")).toBe("c");
  });

  test("D for a stage without a slot is ignored", () => {
    const ctx = new MacroContext();
    expect(ctx.define("Z", m("z"))).toBe(false);
    expect(ctx.define("C", m("c"))).toBe(true);
    expect(ctx.get("x")).toBe("c");
  });

  test("apply() over a decoded Postfix sequence", () => {
    const ctx = new MacroContext();
    const stream = decodeCommands(
      Buffer.concat(["T05", "T06", "T11", "T12", "T16", "T17", "T25"].map((id) => fromHex(vector(id).hex))),
    );
    const seen: (string | undefined)[] = [];
    for (const c of stream) {
      ctx.apply(c);
      if (c.type !== "macro") seen.push(ctx.get("i"));
    }
    // i exists from D T on and is gone after A; connect macros survive A.
    expect(seen).toEqual([undefined, undefined, "61E42214042", undefined]);
    expect(ctx.get("daemon_name")).toBe("mta.example.test");
    expect(ctx.visible().get("v")).toBe("Postfix 3.7.11");
    ctx.clear();
    expect(ctx.visible().size).toBe(0);
  });

  test("visible() keys are canonical (braces removed) and later stages override", () => {
    const ctx = new MacroContext();
    ctx.define("C", macrosFrom({ "{daemon_name}": "a", j: "host" }));
    ctx.define("M", macrosFrom({ daemon_name: "b" }));
    expect(Object.fromEntries(ctx.visible())).toEqual({ daemon_name: "b", j: "host" });
  });
});
