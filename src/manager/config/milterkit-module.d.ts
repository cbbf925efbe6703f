// Types of the virtual module "milterkit" (registered at run time by define.ts), so that
// TypeScript configuration files type-check: `import { defineConfig } from "milterkit"`.
declare module "milterkit" {
  export const defineConfig: typeof import("./define.ts").defineConfig;
  export const z: typeof import("zod").z;
  export type ConfigInput = import("./schema.ts").ConfigInput;
}
