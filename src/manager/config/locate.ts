// Line numbers for configuration items, so that errors and --show-config can say `file:line`.
//
// JSON: a small position-tracking parser (JSON.parse reports no position). TOML: Bun.TOML.parse
// does the parsing; a best-effort scanner only records where each key was written.

/** Path of an item inside a parsed document: object keys and array indexes. */
export type ItemPath = readonly (string | number)[];

/** Item path → 1-based line where that key (or array element) was written. */
export class LineMap {
  private readonly lines = new Map<string, number>();

  set(path: ItemPath, line: number): void {
    const k = JSON.stringify(path);
    if (!this.lines.has(k)) this.lines.set(k, line);
  }

  /** Line of `path`, else of its nearest ancestor that has one. */
  lookup(path: ItemPath): number | undefined {
    for (let n = path.length; n > 0; n--) {
      const line = this.lines.get(JSON.stringify(path.slice(0, n)));
      if (line !== undefined) return line;
    }
    return undefined;
  }
}

export class SourceSyntaxError extends Error {
  constructor(readonly problem: string, readonly line: number, readonly column?: number) {
    super(column === undefined ? `line ${line}: ${problem}` : `line ${line}, column ${column}: ${problem}`);
    this.name = "SourceSyntaxError";
  }
}

// ---------------------------------------------------------------------------------------------
// JSON

/** Parse JSON text, recording the line of every key and array element. Duplicate keys are errors. */
export function parseJsonWithLines(text: string): { value: unknown; lines: LineMap } {
  const lines = new LineMap();
  let i = 0;
  let line = 1;

  const fail = (problem: string, at = i): never => {
    // Recount so the column is right wherever `at` lies.
    let l = 1;
    let s = 0;
    for (let k = 0; k < at && k < text.length; k++) if (text.charCodeAt(k) === 10) { l++; s = k + 1; }
    throw new SourceSyntaxError(problem, l, at - s + 1);
  };
  const ws = () => {
    for (; i < text.length; i++) {
      const c = text[i];
      if (c === "\n") line++;
      else if (c !== " " && c !== "\t" && c !== "\r") break;
    }
  };
  const describe = () => (i >= text.length ? "end of input" : `"${text[i]}"`);

  const str = (): string => {
    const start = i;
    i++;
    for (; i < text.length; i++) {
      const c = text[i];
      if (c === "\\") i++;
      else if (c === '"') break;
      else if (c === "\n" || c.charCodeAt(0) < 0x20) fail("control character inside a string");
    }
    if (i >= text.length) fail("unterminated string", start);
    i++;
    try {
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      return fail("bad escape sequence in string", start);
    }
  };

  const value = (path: (string | number)[]): unknown => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const obj: Record<string, unknown> = {};
      ws();
      if (text[i] === "}") { i++; return obj; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail(`expected a key in double quotes, found ${describe()}`);
        const keyLine = line;
        const keyStart = i;
        const key = str();
        if (Object.prototype.hasOwnProperty.call(obj, key)) fail(`duplicate key "${key}"`, keyStart);
        lines.set([...path, key], keyLine);
        ws();
        if (text[i] !== ":") fail(`expected ":" after key "${key}", found ${describe()}`);
        i++;
        // defineProperty: a key named __proto__ stays an ordinary key.
        Object.defineProperty(obj, key, { value: value([...path, key]), enumerable: true, writable: true, configurable: true });
        ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "}") { i++; return obj; }
        fail(`expected "," or "}" after a value, found ${describe()}`);
      }
    }
    if (c === "[") {
      i++;
      const arr: unknown[] = [];
      ws();
      if (text[i] === "]") { i++; return arr; }
      for (;;) {
        ws();
        lines.set([...path, arr.length], line);
        arr.push(value([...path, arr.length]));
        ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "]") { i++; return arr; }
        fail(`expected "," or "]" after a value, found ${describe()}`);
      }
    }
    if (c === '"') return str();
    const m = /^(?:true|false|null|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)/.exec(text.slice(i, i + 400));
    if (!m) return fail(`unexpected ${describe()}`);
    i += m[0].length;
    return m[0] === "true" ? true : m[0] === "false" ? false : m[0] === "null" ? null : Number(m[0]);
  };

  const result = value([]);
  ws();
  if (i < text.length) fail(`unexpected ${describe()} after the end of the document`);
  return { value: result, lines };
}

// ---------------------------------------------------------------------------------------------
// TOML

/**
 * Record the line of every key, table header and array element of a TOML document that
 * Bun.TOML.parse has already accepted. Best effort: it stops quietly at anything unexpected.
 */
export function tomlLines(text: string): LineMap {
  const lines = new LineMap();
  let i = 0;
  let line = 1;
  const arrayTables = new Map<string, number>(); // absolute header path → current index
  let prefix: (string | number)[] = [];

  const peek = (s: string) => text.startsWith(s, i);
  const blank = () => { while (i < text.length && (text[i] === " " || text[i] === "\t" || text[i] === "\r")) i++; };
  const comment = () => { if (text[i] === "#") while (i < text.length && text[i] !== "\n") i++; };
  const newline = () => { if (text[i] === "\n") { i++; line++; return true; } return false; };
  const space = () => { for (;;) { blank(); comment(); if (!newline()) return; } };

  const skipString = () => {
    const q = text[i];
    const triple = peek(q.repeat(3));
    i += triple ? 3 : 1;
    while (i < text.length) {
      if (triple && peek(q.repeat(3))) {
        i += 3;
        while (text[i] === q) i++; // up to two quotes may belong to the content
        return;
      }
      const c = text[i];
      if (c === "\n") line++;
      if (c === "\\" && q === '"') i++;
      else if (!triple && c === q) { i++; return; }
      i++;
    }
  };

  const key = (): string[] => {
    const parts: string[] = [];
    for (;;) {
      blank();
      if (text[i] === '"' || text[i] === "'") {
        const start = i;
        skipString();
        const raw = text.slice(start, i);
        parts.push(raw[0] === '"' ? (JSON.parse(raw) as string) : raw.slice(1, -1));
      } else {
        const m = /^[A-Za-z0-9_-]+/.exec(text.slice(i, i + 256));
        if (!m) throw new Error("not a key");
        parts.push(m[0]);
        i += m[0].length;
      }
      blank();
      if (text[i] !== ".") return parts;
      i++;
    }
  };

  const valueAt = (path: (string | number)[]) => {
    blank();
    const c = text[i];
    if (c === '"' || c === "'") return skipString();
    if (c === "[") {
      i++;
      for (let n = 0; ; n++) {
        space();
        if (text[i] === "]") { i++; return; }
        lines.set([...path, n], line);
        valueAt([...path, n]);
        space();
        if (text[i] === ",") i++;
      }
    }
    if (c === "{") {
      i++;
      for (;;) {
        blank();
        if (text[i] === "}") { i++; return; }
        const k = key();
        lines.set([...path, ...k], line);
        if (text[i] !== "=") throw new Error("no =");
        i++;
        valueAt([...path, ...k]);
        blank();
        if (text[i] === ",") i++;
      }
    }
    while (i < text.length && !/[,\]}\n#]/.test(text[i])) i++;
  };

  /** Header path with the current index inserted after every array-of-tables prefix. */
  const resolve = (parts: string[]): (string | number)[] => {
    const out: (string | number)[] = [];
    parts.forEach((p, n) => {
      out.push(p);
      const idx = arrayTables.get(JSON.stringify(parts.slice(0, n + 1)));
      if (idx !== undefined && n < parts.length - 1) out.push(idx);
    });
    return out;
  };

  try {
    for (;;) {
      space();
      if (i >= text.length) break;
      if (peek("[[")) {
        i += 2;
        const parts = key();
        const k = JSON.stringify(parts);
        const idx = (arrayTables.get(k) ?? -1) + 1;
        arrayTables.set(k, idx);
        prefix = [...resolve(parts), idx];
        lines.set(prefix, line);
        i = text.indexOf("]]", i) + 2;
      } else if (peek("[")) {
        i++;
        const parts = key();
        prefix = resolve(parts);
        lines.set(prefix, line);
        i = text.indexOf("]", i) + 1;
      } else {
        const k = key();
        lines.set([...prefix, ...k], line);
        if (text[i] !== "=") break;
        i++;
        valueAt([...prefix, ...k]);
      }
      if (i <= 0) break;
    }
  } catch {
    // Best effort only.
  }
  return lines;
}

/**
 * Bun's TOML errors carry no position. The first line whose addition makes every longer prefix
 * fail is where the problem is: one past the longest prefix of whole lines that still parses.
 */
export function tomlErrorLine(text: string, parse: (t: string) => unknown): number | undefined {
  const all = text.split("\n");
  if (all.length > 5000) return undefined;
  let good = 0;
  for (let n = 1; n <= all.length; n++) {
    try {
      parse(all.slice(0, n).join("\n"));
      good = n;
    } catch {
      // keep looking: a multi-line value may complete later
    }
  }
  return good < all.length ? good + 1 : undefined;
}
