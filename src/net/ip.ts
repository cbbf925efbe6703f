// Address literals without node:net: importing node:net makes Bun load its Node stream stack,
// ~2 ms of CPU at the start of a tool that only asks "is this an IP address?" (smtp-source;
// bench/startup.bench.ts). Same answers as node:net's isIP (test/net/ip.test.ts).

const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const V4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);
const V6_CHARS = /^[0-9A-Fa-f:.]+$/;
const ZONE = /^[0-9A-Za-z\-.:]+$/;

/** 4 for an IPv4 literal, 6 for an IPv6 one (zone id allowed: fe80::1%eth0), else 0. */
export function ipFamily(text: string): 0 | 4 | 6 {
  if (V4.test(text)) return 4;
  const pct = text.indexOf("%");
  const addr = pct < 0 ? text : text.slice(0, pct);
  if (pct >= 0 && !ZONE.test(text.slice(pct + 1))) return 0;
  if (!addr.includes(":") || !V6_CHARS.test(addr)) return 0;
  // The URL parser's IPv6 host syntax is RFC 4291's text form (with "::" and an IPv4 tail).
  return URL.canParse(`http://[${addr}]/`) ? 6 : 0;
}
