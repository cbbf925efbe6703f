// Line numbers of configuration items in JSON and TOML text.
import { describe, expect, test } from "bun:test";
import { parseJsonWithLines, SourceSyntaxError, tomlErrorLine, tomlLines } from "../../src/manager/config/locate.ts";

describe("JSON", () => {
  test("values equal JSON.parse and every key has its line", () => {
    const text = `{\n  "a": {"b": [1, 2.5e3, -0.5],\n    "c": "x\\"y\\u00e9"},\n  "m": [\n    {"name": "n"},\n    {"name": "o", "t": null, "u": true}\n  ]\n}\n`;
    const { value, lines } = parseJsonWithLines(text);
    expect(value).toEqual(JSON.parse(text));
    expect(lines.lookup(["a"])).toBe(2);
    expect(lines.lookup(["a", "c"])).toBe(3);
    expect(lines.lookup(["m", 1])).toBe(6);
    expect(lines.lookup(["m", 1, "u"])).toBe(6);
    expect(lines.lookup(["m", 0, "name"])).toBe(5);
    expect(lines.lookup(["a", "zz"])).toBe(2); // falls back to the nearest ancestor
    expect(lines.lookup(["nope"])).toBeUndefined();
  });

  test("__proto__ stays a plain key", () => {
    const { value } = parseJsonWithLines(`{"__proto__": {"polluted": 1}}`);
    expect(Object.keys(value as object)).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  const bad: [string, string, number, number][] = [
    ["", "unexpected end of input", 1, 1],
    ["{", "expected a key in double quotes, found end of input", 1, 2],
    [`{"a": 1}\n x`, `unexpected "x" after the end of the document`, 2, 2],
    [`{"a":\n  tru}`, `unexpected "t"`, 2, 3],
    [`{"a": "x\ny"}`, "control character inside a string", 1, 9],
    [`{"a": "\\q"}`, "bad escape sequence in string", 1, 7],
    [`[1 2]`, `expected "," or "]" after a value, found "2"`, 1, 4],
    [`{"a" 1}`, `expected ":" after key "a", found "1"`, 1, 6],
  ];
  for (const [text, problem, line, column] of bad) {
    test(`syntax error: ${JSON.stringify(text)}`, () => {
      try {
        parseJsonWithLines(text);
        throw new Error("no error");
      } catch (e) {
        expect(e).toBeInstanceOf(SourceSyntaxError);
        expect(e).toMatchObject({ problem, line, column });
      }
    });
  }
});

describe("TOML", () => {
  test("tables, arrays of tables, dotted keys, inline tables, multi-line values", () => {
    const text = [
      `# comment`,                               // 1
      `top.dotted = 1`,                          // 2
      `s = """multi`,                            // 3
      `line "" with [brackets] and # hash"""`,   // 4
      `after = 'lit'`,                           // 5
      `[manager]`,                               // 6
      `arr = [`,                                 // 7
      `  "a", # comment inside`,                 // 8
      `  "b",`,                                  // 9
      `]`,                                       // 10
      `"quoted key" = { x = 1, y = [2] }`,       // 11
      `[[milters]]`,                             // 12
      `name = "a"`,                              // 13
      `[[milters]]`,                             // 14
      `name = "b"`,                              // 15
      `[milters.sub]`,                           // 16
      `k = 1`,                                   // 17
      `[applicable_conditions.dnsbl]`,           // 18
      `services = [`,                            // 19
      `  { zone = "z1" },`,                      // 20
      `  { zone = "z2", expected_answer = "127.0.0.2" },`, // 21
      `]`,                                       // 22
    ].join("\n");
    expect(() => Bun.TOML.parse(text)).not.toThrow();
    const lines = tomlLines(text);
    expect(lines.lookup(["top", "dotted"])).toBe(2);
    expect(lines.lookup(["s"])).toBe(3);
    expect(lines.lookup(["after"])).toBe(5);
    expect(lines.lookup(["manager"])).toBe(6);
    expect(lines.lookup(["manager", "arr"])).toBe(7);
    expect(lines.lookup(["manager", "arr", 1])).toBe(9);
    expect(lines.lookup(["manager", "quoted key", "y"])).toBe(11);
    expect(lines.lookup(["milters", 0, "name"])).toBe(13);
    expect(lines.lookup(["milters", 1])).toBe(14);
    expect(lines.lookup(["milters", 1, "name"])).toBe(15);
    expect(lines.lookup(["milters", 1, "sub", "k"])).toBe(17);
    expect(lines.lookup(["applicable_conditions", "dnsbl", "services", 1, "expected_answer"])).toBe(21);
  });

  test("the line of a syntax error is found even with multi-line values before it", () => {
    const parse = (t: string) => Bun.TOML.parse(t);
    expect(tomlErrorLine(`a = [\n  1,\n  2,\n]\nb = 1\nc = = 2\nd = 3\n`, parse)).toBe(6);
    expect(tomlErrorLine(`a = 1\na = 2\n`, parse)).toBe(2);
    expect(tomlErrorLine(`x = [1,\n`, parse)).toBe(1);
  });
});
