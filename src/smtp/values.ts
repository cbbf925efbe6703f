// Option values as Postfix's smtp-source and smtp-sink read them, and the error that
// reports a bad one (printed as "fatal:", as Postfix does).

export class OptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OptionError";
  }
}

/** A positive integer (Postfix's counts), or undefined when `text` is not one. */
export function positiveInt(text: string, min = 1, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (!/^[0-9]+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

/** A time interval in seconds: "5", "1.5", "250ms", "2s", "1m", "1h"; undefined unless > 0. */
export function interval(text: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(text);
  if (!m) return undefined;
  const scale = m[2] === "ms" ? 0.001 : m[2] === "m" ? 60 : m[2] === "h" ? 3600 : 1;
  const n = Number(m[1]) * scale;
  return n > 0 && Number.isFinite(n) ? n : undefined;
}

/** An optional count option: undefined when absent, else a positiveInt in [min, max] or OptionError "bad WHAT: TEXT". */
export function countValue(text: string | undefined, what: string, min = 1, max?: number): number | undefined {
  if (text === undefined) return undefined;
  const n = positiveInt(text, min, max);
  if (n === undefined) throw new OptionError(`bad ${what}: ${text}`);
  return n;
}

/** An optional interval option: undefined when absent, else seconds (0 too with allowZero) or OptionError "bad WHAT: TEXT". */
export function secondsValue(text: string | undefined, what: string, allowZero = false): number | undefined {
  if (text === undefined) return undefined;
  if (allowZero && /^0+(\.0+)?$/.test(text)) return 0;
  const n = interval(text);
  if (n === undefined) throw new OptionError(`bad ${what}: ${text}`);
  return n;
}
