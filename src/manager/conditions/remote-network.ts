// Remote Network: apply the milter only to clients outside the local networks. Local = loopback,
// private and link-local (address.ts LOCAL_NETWORKS) plus `local_addresses`; `remote_addresses`
// wins over both. UNIX-socket and unknown-family clients are never remote.
import { z } from "./zod.ts";
import { type IpAddress, LOCAL_NETWORKS, NetworkList, type SocketAddress } from "./address.ts";
import type { ConditionDefinition } from "./api.ts";
import { cidr } from "./settings.ts";

// ---- settings (applicable_conditions.*; config/schema.ts combines them)

/** `applicable_conditions.remote_network`: settings of "Remote Network". */
export interface RemoteNetworkSettings {
  /** Extra addresses/CIDRs counted as local (besides loopback, private and link-local). Default []. */
  local_addresses: string[];
  /** Addresses/CIDRs counted as remote even when local; this list wins over local. Default []. */
  remote_addresses: string[];
}

export const REMOTE_NETWORK_DEFAULTS: RemoteNetworkSettings = { local_addresses: [], remote_addresses: [] };

export const RemoteNetworkSchema = z.strictObject({ local_addresses: z.array(cidr()), remote_addresses: z.array(cidr()) });

export function remoteChecker(settings: RemoteNetworkSettings): (ip: IpAddress) => boolean {
  const local = new NetworkList(settings.local_addresses);
  const remote = new NetworkList(settings.remote_addresses);
  return (ip) => remote.has(ip) || !(LOCAL_NETWORKS.has(ip) || local.has(ip));
}

export function isRemote(address: SocketAddress, remote: (ip: IpAddress) => boolean): boolean {
  return (address.family === "ipv4" || address.family === "ipv6") && remote(address.ip);
}

export function remoteNetworkCondition(settings: RemoteNetworkSettings): ConditionDefinition {
  const remote = remoteChecker(settings);
  return {
    name: "Remote Network",
    description: "Apply the milter only to clients outside the local networks (loopback, private, link-local and local_addresses; remote_addresses win)",
    connect: (_ctx, _host, address) => !isRemote(address, remote),
  };
}
