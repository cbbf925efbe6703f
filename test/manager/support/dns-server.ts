// A tiny authoritative DNS server for tests, over UDP on 127.0.0.1 (Bun.udpSocket): it answers A
// queries from a table, NXDOMAIN for names not in it, SERVFAIL or nothing at all for names marked
// so, and records every query it gets.
/** Addresses (TTL 60 s), addresses with a TTL, SERVFAIL, or no answer at all. */
export type DnsBehaviour = string[] | { addresses: string[]; ttl: number } | "servfail" | "silent";

export interface TestDnsServer {
  readonly port: number;
  /** "127.0.0.1:PORT", for Resolver.setServers / name_servers. */
  readonly address: string;
  /** Questions received, as "NAME TYPE" (type number). */
  readonly queries: string[];
  /** name (lower case, no trailing dot) → addresses, "servfail" or "silent". */
  readonly zone: Map<string, DnsBehaviour>;
  close(): void;
}

function readName(b: Buffer, off: number): { name: string; end: number } {
  const labels: string[] = [];
  while (off < b.length && b[off] !== 0) {
    const len = b[off];
    labels.push(b.toString("latin1", off + 1, off + 1 + len));
    off += len + 1;
  }
  return { name: labels.join(".").toLowerCase(), end: off + 1 };
}

export async function startDnsServer(zone: Record<string, DnsBehaviour> = {}): Promise<TestDnsServer> {
  const table = new Map(Object.entries(zone).map(([k, v]) => [k.toLowerCase(), v]));
  const queries: string[] = [];
  const socket = await Bun.udpSocket({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(s, data, port, address) {
        const q = Buffer.from(data);
        if (q.length < 12) return;
        const { name, end } = readName(q, 12);
        const type = q.readUInt16BE(end);
        queries.push(`${name} ${type}`);
        const entry = table.get(name);
        if (entry === "silent") return;
        const records = Array.isArray(entry) ? { addresses: entry, ttl: 60 } : typeof entry === "object" ? entry : undefined;
        const answers = records && type === 1 ? records.addresses : [];
        const rcode = entry === "servfail" ? 2 : entry === undefined ? 3 : 0; // SERVFAIL, NXDOMAIN, NOERROR
        const header = Buffer.alloc(12);
        header.writeUInt16BE(q.readUInt16BE(0), 0); // same id
        header.writeUInt16BE(0x8400 | (q.readUInt16BE(2) & 0x0100) | rcode, 2); // response, authoritative, RD copied
        header.writeUInt16BE(1, 4);
        header.writeUInt16BE(answers.length, 6);
        const parts = [header, q.subarray(12, end + 4)];
        for (const a of answers) {
          const rr = Buffer.alloc(16);
          rr.writeUInt16BE(0xc00c, 0); // name: pointer to the question
          rr.writeUInt16BE(1, 2); // A
          rr.writeUInt16BE(1, 4); // IN
          rr.writeUInt32BE(records!.ttl, 6);
          rr.writeUInt16BE(4, 10);
          a.split(".").forEach((o, i) => rr.writeUInt8(Number(o), 12 + i));
          parts.push(rr);
        }
        s.send(Buffer.concat(parts), port, address);
      },
    },
  });
  return {
    port: socket.port,
    address: `127.0.0.1:${socket.port}`,
    queries,
    zone: table,
    close: () => socket.close(),
  };
}
