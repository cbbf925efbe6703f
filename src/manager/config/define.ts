// What a run-time `.ts`/`.js` configuration sees as the module "milterkit".
//
// Files loaded at run time cannot see the packages bundled into the compiled binary, so the
// exports below are offered through a Bun.plugin virtual module (bun.md §4):
//   import { defineConfig, z } from "milterkit";
//   export default defineConfig({ manager: { connection_spec: "inet:10025@[127.0.0.1]" } });
//   import { defineConfig, defineCondition, restrictAccounts } from "milterkit"; (conditions/api.ts)
// To offer more, add it to MILTERKIT_MODULE and to milterkit-module.d.ts.
import { z } from "../conditions/zod.ts";
import { defineCondition } from "../conditions/api.ts";
import { restrictAccounts, restrictAccountsByList } from "../conditions/restrict-accounts.ts";
import type { ConfigInput } from "./schema.ts";

/** Identity function that gives a configuration object its type (and editor completion). */
export function defineConfig(config: ConfigInput): ConfigInput {
  return config;
}

/** The exports of the virtual module "milterkit". */
export const MILTERKIT_MODULE: Record<string, unknown> = {
  defineConfig,
  defineCondition,
  restrictAccounts,
  restrictAccountsByList,
  z,
};

let registered = false;

/** Make `import ... from "milterkit"` resolve in files imported from now on. Idempotent. */
export function registerMilterkitModule(): void {
  if (registered) return;
  registered = true;
  Bun.plugin({
    name: "milterkit virtual module",
    setup(build) {
      build.module("milterkit", () => ({ loader: "object", exports: MILTERKIT_MODULE }));
    },
  });
}
