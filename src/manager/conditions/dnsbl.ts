// DNSBL Listed / Not DNSBL Listed: is the client's IPv4 address on a DNS block list? For
// 192.0.2.1 and zone zen.spamhaus.org the A record 1.2.0.192.zen.spamhaus.org is looked up in
// every zone at once; the first answer inside the zone's expected_answer network (any answer when
// none is set) means listed. IPv6 clients are never listed. A resolver that fails or is slow
// means "not listed": it never decides against mail and never waits beyond the timeout.
import { isIPv4, isIPv6 } from "node:net";
import { z } from "./zod.ts";
import { asIPv4, inNetwork, type Network, parseIp, parseNetwork, type SocketAddress } from "./address.ts";
import type { ConditionContext, ConditionDefinition } from "./api.ts";
import { CachingResolver } from "./dns.ts";
import { cidr, positiveSeconds, seconds } from "./settings.ts";

// ---- settings (applicable_conditions.*; config/schema.ts combines them)

/** One DNSBL zone. */
export interface DnsblService {
  /** DNS zone, e.g. "zen.spamhaus.org". */
  zone: string;
  /** Answers counted as "listed" (IPv4 CIDR); null = any answer. */
  expected_answer: string | null;
}

/** `applicable_conditions.dnsbl`: settings of "DNSBL Listed" / "Not DNSBL Listed". */
export interface DnsblSettings {
  /** Zones queried in parallel; the first positive answer wins. Default: the stock four. */
  services: DnsblService[];
  /** Name server addresses, optionally with a port ("127.0.0.1:5353", "[::1]:5353"); [] = the system resolver. Default []. */
  name_servers: string[];
  /** Seconds a lookup may take; a slower or failing resolver counts as "not listed". Default 5. */
  timeout: number;
  /** Seconds answers are cached at most (positive answers also follow their DNS TTL); 0 = no cache. Default 300. */
  cache_ttl: number;
}

export const DNSBL_DEFAULTS: DnsblSettings = {
  services: [
    { zone: "zen.spamhaus.org", expected_answer: "127.0.0.10/31" },
    { zone: "dnsbl.sorbs.net", expected_answer: "127.0.0.10" },
    { zone: "bl.spamcop.net", expected_answer: "127.0.0.2" },
    { zone: "b.barracudacentral.org", expected_answer: "127.0.0.2" },
  ],
  name_servers: [],
  timeout: 5,
  cache_ttl: 300,
};

const dnsName = z.string().regex(/^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9])?)*\.?$/, {
  error: "must be a DNS zone name such as zen.spamhaus.org",
});
/** "192.0.2.53", "2001:db8::53", or with a port: "192.0.2.53:5353", "[2001:db8::53]:5353". */
export function isNameServer(text: string): boolean {
  if (isIPv4(text) || isIPv6(text)) return true;
  const m = /^(?:\[([^\]]+)\]|([0-9.]+)):([0-9]{1,5})$/.exec(text);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) return false;
  return m[1] !== undefined ? isIPv6(m[1]) : isIPv4(m[2]);
}
const nameServer = z.string().refine(isNameServer, {
  error: 'must be an IPv4 or IPv6 address, optionally with a port ("127.0.0.1:5353", "[::1]:5353")',
});
const DnsblServiceSchema = z.strictObject({ zone: dnsName, expected_answer: cidr(4).nullable().default(null) });
export const DnsblSchema = z.strictObject({
  services: z.array(DnsblServiceSchema),
  name_servers: z.array(nameServer),
  timeout: positiveSeconds,
  cache_ttl: seconds,
});

export type DnsblVerdict = { listed: true; zone: string; answer: string } | { listed: false; failures: string[] };

/** The DNS name to query for an IPv4 address in a zone. */
export function dnsblQueryName(ipv4: Uint8Array, zone: string): string {
  return `${ipv4[3]}.${ipv4[2]}.${ipv4[1]}.${ipv4[0]}.${zone.replace(/\.$/, "")}`;
}

export class DnsblChecker {
  private readonly services: readonly { zone: string; expected: Network | undefined }[];
  private resolver: CachingResolver | undefined;

  constructor(private readonly settings: DnsblSettings, resolver?: CachingResolver) {
    this.services = settings.services.map((s: DnsblService) => ({
      zone: s.zone,
      expected: s.expected_answer === null ? undefined : parseNetwork(s.expected_answer),
    }));
    this.resolver = resolver;
  }

  /** Created on first use, so that building the conditions (e.g. for --show-config) does no I/O. */
  private dns(): CachingResolver {
    return (this.resolver ??= sharedResolver(this.settings));
  }

  async check(address: SocketAddress): Promise<DnsblVerdict> {
    const ip = address.family === "ipv4" || address.family === "ipv6" ? asIPv4(address.ip) : undefined;
    if (!ip || this.services.length === 0) return { listed: false, failures: [] };
    const failures: string[] = [];
    return new Promise<DnsblVerdict>((resolve) => {
      let left = this.services.length;
      for (const s of this.services) {
        const name = dnsblQueryName(ip.bytes, s.zone);
        void this.dns().resolve4(name).then((answer) => {
          if (!answer.ok) failures.push(`${name}: ${answer.error}`);
          else {
            const hit = answer.values.find((v) => {
              const a = parseIp(v);
              return a !== undefined && (s.expected === undefined || inNetwork(a, s.expected));
            });
            if (hit !== undefined) resolve({ listed: true, zone: s.zone, answer: hit }); // first positive wins
          }
          if (--left === 0) resolve({ listed: false, failures });
        });
      }
    });
  }
}

// One resolver (and so one cache) per distinct resolver setting, kept across configuration reloads.
const resolvers = new Map<string, CachingResolver>();

function sharedResolver(settings: DnsblSettings): CachingResolver {
  const key = JSON.stringify([settings.name_servers, settings.timeout, settings.cache_ttl]);
  let r = resolvers.get(key);
  if (!r) {
    r = new CachingResolver({ servers: settings.name_servers, timeoutMs: settings.timeout * 1000, cacheTtlMs: settings.cache_ttl * 1000 });
    resolvers.set(key, r);
  }
  return r;
}

async function listed(checker: DnsblChecker, ctx: ConditionContext, address: SocketAddress): Promise<boolean> {
  const v = await checker.check(address);
  if (v.listed) ctx.log("info", `${address.spec} listed in ${v.zone} (${v.answer})`);
  else if (v.failures.length > 0) ctx.log("warning", `DNSBL lookup failed, counted as not listed: ${v.failures.join("; ")}`);
  return v.listed;
}

export function dnsblConditions(settings: DnsblSettings, resolver?: CachingResolver): ConditionDefinition[] {
  const checker = new DnsblChecker(settings, resolver);
  return [
    {
      name: "DNSBL Listed",
      description: "Apply the milter only to IPv4 clients listed in one of the DNSBL services (a failed lookup counts as not listed)",
      connect: async (ctx, _host, address) => !(await listed(checker, ctx, address)),
    },
    {
      name: "Not DNSBL Listed",
      description: "Apply the milter only to clients not listed in any of the DNSBL services (IPv6 clients and failed lookups count as not listed)",
      connect: async (ctx, _host, address) => await listed(checker, ctx, address),
    },
  ];
}
