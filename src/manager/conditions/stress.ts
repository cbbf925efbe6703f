// Stress Notify / No Stress: the manager is "stressed" when it serves at least
// threshold_n_connections MTA sessions at once (0 = never). Stress Notify never stops and adds the
// macro `stress=yes` at connect when stressed; No Stress stops the milter for sessions that start
// while stressed. "auto": for Postfix, 75 % of the smtp service's process limit (master.cf maxproc,
// or default_process_limit), read once with `postconf`; for other MTAs never stressed.
import { z } from "./zod.ts";
import type { ConditionContext, ConditionDefinition } from "./api.ts";
import { count } from "./settings.ts";

// ---- settings (applicable_conditions.*; config/schema.ts combines them)

/** `applicable_conditions.stress`: settings of "Stress Notify" / "No Stress". */
export interface StressSettings {
  /** Concurrent sessions from which the manager counts as stressed; 0 = never; "auto" = detect from the MTA. Default "auto". */
  threshold_n_connections: number | "auto";
}

export const STRESS_DEFAULTS: StressSettings = { threshold_n_connections: "auto" };

export const StressSchema = z.strictObject({
  threshold_n_connections: z.union([z.literal("auto"), count], { error: 'must be "auto" or a non-negative integer' }),
});

/** 75 % of Postfix's smtpd process limit, from `postconf -h default_process_limit` and `postconf -M smtp/inet`. */
export function postfixThreshold(defaultProcessLimit: string, smtpServiceLine: string): number {
  const fields = smtpServiceLine.trim().split(/\s+/);
  const maxproc = fields.length >= 8 ? fields[6] : "-";
  const limit = Number(maxproc === "-" ? defaultProcessLimit.trim() : maxproc);
  if (!Number.isInteger(limit) || limit <= 0) return 0; // unlimited or unreadable: never stressed
  return Math.floor(limit * 0.75);
}

/** Run `postconf` (honours MAIL_CONFIG) within a few seconds; empty text on any failure. */
async function postconf(args: string[]): Promise<string> {
  try {
    const proc = Bun.spawn({ cmd: ["postconf", ...args], stdout: "pipe", stderr: "ignore", stdin: "ignore" });
    const timer = setTimeout(() => proc.kill(), 5000);
    const [text, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    clearTimeout(timer);
    return code === 0 ? text : "";
  } catch {
    return ""; // postconf not installed
  }
}

export async function detectPostfixThreshold(): Promise<number> {
  const [limit, line] = await Promise.all([postconf(["-h", "default_process_limit"]), postconf(["-M", "smtp/inet"])]);
  return postfixThreshold(limit, line);
}

export interface StressDeps {
  /** Threshold for "auto" with Postfix (default: detectPostfixThreshold, once per process). */
  detectPostfix?: () => Promise<number>;
}

let detectedPostfix: Promise<number> | undefined;

export function stressConditions(settings: StressSettings, deps: StressDeps = {}): ConditionDefinition[] {
  const detect = deps.detectPostfix ?? (() => (detectedPostfix ??= detectPostfixThreshold()));
  const threshold = (ctx: ConditionContext): number | Promise<number> => {
    if (settings.threshold_n_connections !== "auto") return settings.threshold_n_connections;
    return ctx.postfix ? detect() : 0;
  };
  const stressed = (ctx: ConditionContext): boolean | Promise<boolean> => {
    const t = threshold(ctx);
    const check = (n: number) => n > 0 && ctx.processingSessions >= n;
    return typeof t === "number" ? check(t) : t.then(check);
  };
  return [
    {
      name: "Stress Notify",
      description: "Never stops; adds the macro stress=yes at connect while the manager is stressed (sessions >= threshold_n_connections)",
      connect(ctx) {
        const mark = (yes: boolean) => {
          if (yes) ctx.addMacro("stress", "yes");
          return false;
        };
        const s = stressed(ctx);
        return typeof s === "boolean" ? mark(s) : s.then(mark);
      },
    },
    {
      name: "No Stress",
      description: "Apply the milter only to sessions that start while the manager is not stressed (sessions < threshold_n_connections)",
      connect: (ctx) => stressed(ctx),
    },
  ];
}
