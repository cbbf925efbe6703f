// Types of the virtual module "milterkit" (registered at run time by define.ts), so that
// TypeScript configuration files type-check: `import { defineConfig, defineCondition } from "milterkit"`.
declare module "milterkit" {
  export const defineConfig: typeof import("./define.ts").defineConfig;
  export const defineCondition: typeof import("../conditions/api.ts").defineCondition;
  export const restrictAccounts: typeof import("../conditions/restrict-accounts.ts").restrictAccounts;
  export const restrictAccountsByList: typeof import("../conditions/restrict-accounts.ts").restrictAccountsByList;
  export const z: typeof import("zod").z;
  export type ConfigInput = import("./schema.ts").ConfigInput;
  export type ConditionDefinition = import("../conditions/api.ts").ConditionDefinition;
  export type ConditionContext = import("../conditions/api.ts").ConditionContext;
  export type SocketAddress = import("../conditions/api.ts").SocketAddress;
}
