// A reader for the declarative shapes of milter manager's Ruby configuration DSL — not a Ruby
// interpreter. It turns a file into a list of statements: calls (`a.b.c(args) do |x| ... end`)
// and assignments (`a.b = value`) whose values are literals (strings, numbers, true/false/nil,
// symbols, regexps, arrays, hashes). Whatever else it meets (if, case, loops, variables,
// method definitions, string interpolation) becomes an `other` statement with its line range
// and text, for the importer to report.

export type Value =
  | { kind: "string"; value: string }
  | { kind: "number"; value: number }
  | { kind: "bool"; value: boolean }
  | { kind: "nil" }
  | { kind: "symbol"; value: string }
  | { kind: "regexp"; source: string; flags: string }
  | { kind: "array"; items: Value[] }
  | { kind: "hash"; entries: { key: string; value: Value }[] };

export type Statement =
  | { kind: "call"; line: number; endLine: number; target: string[]; args: Value[]; options: { key: string; value: Value }[]; block?: { params: string[]; body: Statement[] }; text: string }
  | { kind: "assign"; line: number; endLine: number; target: string[]; value: Value; text: string }
  | { kind: "other"; line: number; endLine: number; text: string };

interface Token {
  t: "id" | "str" | "num" | "sym" | "re" | "op" | "nl" | "bad";
  v: string;
  line: number;
  /** Offset in the source, for quoting statements back. */
  at: number;
  flags?: string;
}

const KEYWORDS_OPENING = new Set(["if", "unless", "while", "until", "case", "def", "class", "module", "begin", "for"]);

/** Tokens of a Ruby source, enough of them for the DSL; anything odd becomes a `bad` token. */
function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  const prevAllowsRegexp = () => {
    const p = out.at(-1);
    if (!p || p.t === "nl") return true;
    if (p.t === "op") return /^[(,=\[{|!&;]$|^(=>|<<|==|=~|&&|\|\|)$/.test(p.v);
    return p.t === "id" && /^(if|unless|when|and|or|not|return|while|until)$/.test(p.v);
  };
  while (i < src.length) {
    const c = src[i];
    const start = i;
    if (c === "\n") { out.push({ t: "nl", v: "\n", line, at: i }); line++; i++; continue; }
    if (c === " " || c === "\t" || c === "\r") { i++; continue; }
    if (c === "\\" && src[i + 1] === "\n") { i += 2; line++; continue; }
    if (c === "#") { while (i < src.length && src[i] !== "\n") i++; continue; }
    if (src.startsWith("=begin", i) && (i === 0 || src[i - 1] === "\n")) {
      const end = src.indexOf("\n=end", i);
      const stop = end < 0 ? src.length : end + 5;
      for (let k = i; k < stop; k++) if (src[k] === "\n") line++;
      i = stop;
      continue;
    }
    if (c === '"' || c === "'" || c === "`") {
      const startLine = line;
      let v = "";
      let bad = c === "`";
      i++;
      while (i < src.length && src[i] !== c) {
        if (src[i] === "\n") line++;
        if (src[i] === "\\" && i + 1 < src.length) {
          const n = src[i + 1];
          if (c === "'") v += n === "'" || n === "\\" ? n : "\\" + n;
          else v += ({ n: "\n", t: "\t", r: "\r", "0": "\0", s: " ", e: "\x1b" } as Record<string, string>)[n] ?? n;
          i += 2;
          continue;
        }
        if (c === '"' && src[i] === "#" && src[i + 1] === "{") bad = true; // interpolation: Ruby code
        v += src[i++];
      }
      i++;
      out.push({ t: bad ? "bad" : "str", v, line: startLine, at: start });
      continue;
    }
    if (c === "%" && /[wWiI]/.test(src[i + 1] ?? "") && /[[({<|!/]/.test(src[i + 2] ?? "")) {
      const open = src[i + 2];
      const close = ({ "[": "]", "(": ")", "{": "}", "<": ">" } as Record<string, string>)[open] ?? open;
      const end = src.indexOf(close, i + 3);
      const body = src.slice(i + 3, end < 0 ? src.length : end);
      out.push({ t: "op", v: "%w", line, at: start });
      for (const w of body.split(/\s+/).filter((x) => x !== "")) out.push({ t: "str", v: w, line, at: start });
      out.push({ t: "op", v: "%end", line, at: start });
      for (const ch of body) if (ch === "\n") line++;
      i = end < 0 ? src.length : end + 1;
      continue;
    }
    // `f /re/` (a space before, none after) is a regexp argument, as Ruby reads it.
    const argRegexp = out.at(-1)?.t === "id" && src[i - 1] === " " && src[i + 1] !== " " && src[i + 1] !== "=";
    if (c === "/" && (prevAllowsRegexp() || argRegexp)) {
      let v = "";
      i++;
      while (i < src.length && src[i] !== "/" && src[i] !== "\n") {
        if (src[i] === "\\" && i + 1 < src.length) { v += src[i] + src[i + 1]; i += 2; continue; }
        v += src[i++];
      }
      i++;
      let flags = "";
      while (/[imxounse]/.test(src[i] ?? "")) flags += src[i++];
      out.push({ t: v.includes("#{") ? "bad" : "re", v, flags, line, at: start });
      continue;
    }
    if (c === ":" && /[A-Za-z_]/.test(src[i + 1] ?? "") && src[i - 1] !== ":") {
      const m = /^:([A-Za-z_][A-Za-z0-9_]*[?!=]?)/.exec(src.slice(i, i + 200))!;
      out.push({ t: "sym", v: m[1], line, at: start });
      i += m[0].length;
      continue;
    }
    const num = /^-?(?:0[xX][0-9a-fA-F_]+|0[oO]?[0-7_]+|0[bB][01_]+|[0-9][0-9_]*(?:\.[0-9_]+)?(?:[eE][+-]?[0-9]+)?)/.exec(src.slice(i, i + 100));
    if (num && (c !== "-" || prevAllowsRegexp())) {
      out.push({ t: "num", v: num[0], line, at: start });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_@$][A-Za-z0-9_]*[?!]?/.exec(src.slice(i, i + 200));
    if (id) {
      // A label `key:` inside an argument list (but not `::`).
      if (src[i + id[0].length] === ":" && src[i + id[0].length + 1] !== ":") {
        out.push({ t: "sym", v: id[0], line, at: start, flags: "label" });
        i += id[0].length + 1;
        continue;
      }
      out.push({ t: "id", v: id[0], line, at: start });
      i += id[0].length;
      continue;
    }
    const op = /^(=>|<<|==|=~|!=|&&|\|\||::|\.\.\.?|\*\*|[-+*\/%=<>!&|^~?:.,;()[\]{}])/.exec(src.slice(i, i + 3));
    if (op) {
      out.push({ t: "op", v: op[0], line, at: start });
      i += op[0].length;
      continue;
    }
    out.push({ t: "bad", v: c, line, at: start });
    i++;
  }
  out.push({ t: "nl", v: "", line, at: src.length });
  return out;
}

class Unsupported extends Error {}

/** Parse a DSL file into statements. Never throws. */
export function parseRuby(src: string): Statement[] {
  const toks = tokenize(src);
  let p = 0;
  const peek = (o = 0) => toks[Math.min(p + o, toks.length - 1)];
  const isOp = (v: string, o = 0) => peek(o).t === "op" && peek(o).v === v;
  const isId = (v: string, o = 0) => peek(o).t === "id" && peek(o).v === v;
  const expectOp = (v: string) => {
    if (!isOp(v)) throw new Unsupported();
    p++;
  };
  const skipNl = () => { while (p < toks.length - 1 && (peek().t === "nl" || isOp(";"))) p++; };

  const value = (): Value => {
    const t = peek();
    if (t.t === "str") {
      p++;
      let v = t.v;
      while (peek().t === "str") v += toks[p++].v; // adjacent literals concatenate
      return { kind: "string", value: v };
    }
    if (t.t === "num") {
      p++;
      const raw = t.v.replace(/_/g, "");
      const neg = raw.startsWith("-");
      const body = neg ? raw.slice(1) : raw;
      const n = /^0[xX]/.test(body) ? parseInt(body.slice(2), 16)
        : /^0[bB]/.test(body) ? parseInt(body.slice(2), 2)
        : /^0[oO]?[0-7]+$/.test(body) && body.length > 1 ? parseInt(body.replace(/^0[oO]?/, ""), 8)
        : Number(body);
      return { kind: "number", value: neg ? -n : n };
    }
    if (t.t === "sym" && t.flags !== "label") { p++; return { kind: "symbol", value: t.v }; }
    if (t.t === "re") { p++; return { kind: "regexp", source: t.v, flags: t.flags ?? "" }; }
    if (t.t === "id" && (t.v === "true" || t.v === "false")) { p++; return { kind: "bool", value: t.v === "true" }; }
    if (t.t === "id" && t.v === "nil") { p++; return { kind: "nil" }; }
    if (isOp("%w")) {
      p++;
      const items: Value[] = [];
      while (peek().t === "str") items.push({ kind: "string", value: toks[p++].v });
      expectOp("%end");
      return { kind: "array", items };
    }
    if (isOp("[")) return { kind: "array", items: list("]", value) };
    if (isOp("{")) return { kind: "hash", entries: list("}", hashEntry) };
    throw new Unsupported();
  };

  /** `[a, b]` or `{k => v, ...}`: items separated by commas, newlines allowed, a trailing comma too. */
  const list = <T>(close: string, item: () => T): T[] => {
    p++; // the opening bracket
    const items: T[] = [];
    skipNl();
    while (!isOp(close)) {
      items.push(item());
      skipNl();
      if (isOp(",")) { p++; skipNl(); } else if (!isOp(close)) throw new Unsupported();
    }
    p++;
    return items;
  };

  const hashEntry = (): { key: string; value: Value } => {
    const t = peek();
    if (t.t === "sym" && t.flags === "label") { p++; skipNl(); return { key: t.v, value: value() }; }
    const k = value();
    if (!isOp("=>")) throw new Unsupported();
    p++;
    skipNl();
    if (k.kind !== "string" && k.kind !== "symbol") throw new Unsupported();
    return { key: k.value, value: value() };
  };

  /** `a.b.c` */
  const chain = (): string[] => {
    if (peek().t !== "id" || KEYWORDS_OPENING.has(peek().v) || peek().v === "end") throw new Unsupported();
    const names = [toks[p++].v];
    while (isOp(".") && peek(1).t === "id") { p++; names.push(toks[p++].v); }
    return names;
  };

  const args = (parenthesised: boolean): { args: Value[]; options: { key: string; value: Value }[] } => {
    const out: Value[] = [];
    const options: { key: string; value: Value }[] = [];
    const done = () => (parenthesised ? isOp(")") : peek().t === "nl" || isOp(";") || isId("do") || isOp("{"));
    if (parenthesised) skipNl();
    while (!done()) {
      const t = peek();
      if ((t.t === "sym" && t.flags === "label") || ((t.t === "str" || t.t === "sym") && isOp("=>", 1))) options.push(hashEntry());
      else out.push(value());
      if (parenthesised) skipNl();
      if (isOp(",")) { p++; skipNl(); } else if (!done()) throw new Unsupported();
    }
    if (parenthesised) p++;
    return { args: out, options };
  };

  const block = (): { params: string[]; body: Statement[] } | undefined => {
    let close: string;
    if (isId("do")) close = "end";
    else if (isOp("{")) close = "}";
    else return undefined;
    p++;
    const params: string[] = [];
    if (isOp("|")) {
      p++;
      while (!isOp("|")) {
        if (peek().t !== "id") throw new Unsupported();
        params.push(toks[p++].v);
        if (isOp(",")) p++;
      }
      p++;
    }
    const body = statements(close);
    p++; // the closing end / }
    return { params, body };
  };

  /** Skip one statement of unknown shape, nesting-aware; returns the index after it. */
  const skipStatement = (from: number, close: string | undefined): number => {
    let q = from;
    let depth = 0;
    let lineStart = true;
    for (; q < toks.length - 1; q++) {
      const t = toks[q];
      if (t.t === "nl" || (t.t === "op" && t.v === ";")) {
        if (depth === 0) return q;
        lineStart = true;
        continue;
      }
      if (t.t === "id" && (t.v === "do" || (KEYWORDS_OPENING.has(t.v) && (lineStart || toks[q - 1]?.v === "=")))) depth++;
      else if (t.t === "op" && (t.v === "{" || t.v === "(" || t.v === "[")) depth++;
      else if ((t.t === "id" && t.v === "end") || (t.t === "op" && (t.v === "}" || t.v === ")" || t.v === "]"))) {
        if (depth === 0 && close !== undefined && t.v === close) return q;
        depth--;
        if (depth === 0 && t.v === "end") { /* statement may continue: `end.each` */ }
      }
      lineStart = false;
    }
    return q;
  };

  const statement = (close: string | undefined): Statement => {
    const first = p;
    const line = peek().line;
    // Up to the token that ends the statement (newline, `;`, or the enclosing block's end).
    const textOf = (endTok: number) => src.slice(toks[first].at, toks[Math.max(first + 1, endTok)].at).replace(/\s+$/, "");
    try {
      const target = chain();
      let s: Statement;
      if (isOp("=") ) {
        p++;
        skipNl();
        const v = value();
        s = { kind: "assign", line, endLine: toks[p - 1].line, target, value: v, text: "" };
      } else if (isOp("<<")) {
        // milter.applicable_conditions << "S25R"
        p++;
        const v = value();
        s = { kind: "call", line, endLine: toks[p - 1].line, target: [...target, "<<"], args: [v], options: [], text: "" };
      } else {
        const paren = isOp("(") && toks[p].at === toks[p - 1].at + toks[p - 1].v.length;
        if (paren) p++;
        const a = args(paren);
        const b = block();
        s = { kind: "call", line, endLine: toks[p - 1].line, target, args: a.args, options: a.options, block: b, text: "" };
      }
      if (!(peek().t === "nl" || isOp(";") || (close !== undefined && (close === "end" ? isId("end") : isOp("}"))))) throw new Unsupported();
      s.text = textOf(p);
      return s;
    } catch (e) {
      if (!(e instanceof Unsupported)) throw e;
      p = skipStatement(first, close);
      return { kind: "other", line, endLine: toks[Math.max(first, p - 1)].line, text: textOf(p) };
    }
  };

  const statements = (close: string | undefined): Statement[] => {
    const out: Statement[] = [];
    for (;;) {
      skipNl();
      if (p >= toks.length - 1) return out;
      if (close === "end" && isId("end")) return out;
      if (close === "}" && isOp("}")) return out;
      const before = p;
      out.push(statement(close));
      if (p === before) p++; // always progress
    }
  };

  return statements(undefined);
}
