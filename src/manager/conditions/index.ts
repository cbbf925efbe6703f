// Applicable conditions (manager.md §3): the API for configurations, the built-ins and the
// engine's hook. See api.ts for how a condition is written, registry.ts for how they run.
export * from "./api.ts";
export {
  type IpAddress, inNetwork, LOCAL_NETWORKS, type Network, NetworkList, parseIp, parseNetwork, type SocketAddress,
} from "./address.ts";
export { CachingResolver, type DnsAnswer, type DnsOptions } from "./dns.ts";
export {
  AppliedConditions, builtinConditions, type CatalogEntry, conditionCatalog, type ConditionDeps, conditionNamesOf,
  type ConditionSource, createConditions, stagesOf,
} from "./registry.ts";
export { restrictAccounts, restrictAccountsByList, type RestrictAccountsOptions } from "./restrict-accounts.ts";
