// DNS for the conditions: A lookups (DNSBL) and reverse lookups (Sendmail Compatible's if_name)
// through node:dns's Resolver (c-ares in Bun), which, unlike Bun.dns.lookup, can be pointed at
// given name servers (with a port: "127.0.0.1:5353"). Every lookup ends within its timeout; answers
// are cached; lookups of the same name at the same time share one query. A failure (timeout,
// SERVFAIL, refused, no server) is an answer of its own and is not cached.
import { Resolver } from "node:dns";

/** The outcome of one lookup: addresses (possibly none: NXDOMAIN/NODATA), or a failure. */
export type DnsAnswer = { ok: true; values: string[] } | { ok: false; error: string };

export interface DnsOptions {
  /** Name servers ("192.0.2.53", "[2001:db8::53]:5353", "127.0.0.1:5353"); [] = the system's. */
  servers: readonly string[];
  /** Upper bound for one lookup, in milliseconds. */
  timeoutMs: number;
  /** Longest time an answer is kept; positive answers also follow their TTL. 0 = no cache. */
  cacheTtlMs: number;
  /** Entries kept at most (oldest dropped first). Default 10000. */
  maxEntries?: number;
}

/** Codes that mean "the name has no such record" — a real answer, not a failure. */
const NO_RECORD = new Set(["ENOTFOUND", "ENODATA", "NOTFOUND", "NODATA"]);

interface Entry {
  expires: number;
  answer: DnsAnswer;
}

export class CachingResolver {
  private readonly resolver: Resolver;
  private readonly cache = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<DnsAnswer>>();
  private readonly maxEntries: number;

  constructor(readonly options: DnsOptions) {
    // c-ares gives up a little before our timer, so a lookup normally ends with its own answer
    // (and a retry right after starts a new query); our timer bounds it whatever c-ares does.
    this.resolver = new Resolver({ timeout: Math.max(1, Math.floor(options.timeoutMs * 0.8)), tries: 1 });
    if (options.servers.length > 0) this.resolver.setServers([...options.servers]);
    this.maxEntries = options.maxEntries ?? 10_000;
  }

  /** IPv4 addresses of `name`. */
  resolve4(name: string): Promise<DnsAnswer> {
    return this.cached(`A ${name.toLowerCase()}`, (done) =>
      this.resolver.resolve4(name, { ttl: true }, (err, records) => {
        if (err) done(failure(err));
        else done({ ok: true, values: records.map((r) => r.address) }, Math.min(...records.map((r) => r.ttl)) * 1000);
      }),
    );
  }

  /** Host names of an IP address (PTR). */
  reverse(ip: string): Promise<DnsAnswer> {
    return this.cached(`PTR ${ip}`, (done) =>
      this.resolver.reverse(ip, (err, names) => {
        if (err) done(failure(err));
        else done({ ok: true, values: names });
      }),
    );
  }

  /** Forget every cached answer. */
  clear(): void {
    this.cache.clear();
  }

  private cached(key: string, query: (done: (a: DnsAnswer, ttlMs?: number) => void) => void): Promise<DnsAnswer> {
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && hit.expires > now) return Promise.resolve(hit.answer);
    if (hit) this.cache.delete(key);
    const running = this.pending.get(key);
    if (running) return running;
    const p = new Promise<DnsAnswer>((resolve) => {
      let settled = false;
      const timer = setTimeout(() => finish({ ok: false, error: `no answer within ${this.options.timeoutMs} ms` }), this.options.timeoutMs);
      const finish = (answer: DnsAnswer, ttlMs?: number) => {
        if (settled) return; // a late answer after our timeout is dropped
        settled = true;
        clearTimeout(timer);
        this.pending.delete(key);
        if (answer.ok) this.store(key, answer, ttlMs);
        resolve(answer);
      };
      try {
        query(finish);
      } catch (e) {
        finish({ ok: false, error: (e as Error).message });
      }
    });
    this.pending.set(key, p);
    return p;
  }

  private store(key: string, answer: DnsAnswer, ttlMs: number | undefined): void {
    const keep = Math.min(this.options.cacheTtlMs, ttlMs !== undefined && Number.isFinite(ttlMs) ? ttlMs : Infinity);
    if (keep <= 0) return;
    if (this.cache.size >= this.maxEntries) {
      const now = Date.now();
      for (const [k, e] of this.cache) if (e.expires <= now) this.cache.delete(k);
      while (this.cache.size >= this.maxEntries) this.cache.delete(this.cache.keys().next().value as string);
    }
    this.cache.set(key, { expires: Date.now() + keep, answer });
  }
}

function failure(err: NodeJS.ErrnoException): DnsAnswer {
  const code = err.code ?? "";
  if (NO_RECORD.has(code)) return { ok: true, values: [] };
  return { ok: false, error: code ? `${code}: ${err.message}` : err.message };
}
