/**
 * End-to-end harness: a real private Postfix on 127.0.0.1, real peer milters
 * (libmilter, pymilter, opendkim), Postfix's smtp-sink/smtp-source and a small
 * SMTP client, all started and stopped by the tests themselves.
 *
 * Modules (all re-exported here):
 * - ports.ts   freePort, waitForPort, waitForUnix, isListening (via /proc/net, no probe connection)
 * - proc.ts    spawnTracked, stopPid (TERM, then KILL), run (bounded command), isAlive (zombie = dead),
 *              exit hook that stops every tracked PID and removes temp dirs (MK_E2E_KEEP=1 keeps them)
 * - dirs.ts    makeTempDir (under /tmp or MK_E2E_TMP, searchable by postfix/opendkim/nobody), fixturePath
 * - postfix.ts startPostfix(opts) -> PostfixInstance (own base dir, ports, syslog_name; stop, setMainCf,
 *              reload, maillog, waitForLog, waitQueueEmpty, flushQueue, sendmail, saslUser/saslPassword)
 * - peers.ts   buildLibmilter, startLibmilter({header, headerName, reject}), startPymilter, startOpendkim
 *              -> Peer { spec (milter-manager form), postfixSpec, pid, stop, log, keyTxtPath }
 * - sink.ts    startPostfixSmtpSink({dumpDir, unix, lmtp}) -> Sink { port, waitForMessages, count, stop },
 *              readDump/parseDump -> DumpedMessage { from, rcpts, headers, body, raw }, headerValues,
 *              countDumps, verifyDkim(raw, keyTxtPath)
 * - source.ts  runSmtpSource (Postfix's smtp-source)
 * - manager.ts startManagerProcess({milters, transport, socket}) -> ManagerProcess { spec, postfixSpec, log, stop }
 * - smtp.ts    sendMail({port, from, rcpts, data, auth}) -> { steps, codes, accepted, final, failure },
 *              SmtpClient for hand-written sessions
 *
 * Typical use (see test/e2e/harness.test.ts):
 *
 *   const skip = e2eSkipReason();                         // root + Postfix?
 *   test.skipIf(!!skip)("...", async () => {
 *     const sink = await startPostfixSmtpSink({ dumpDir: true });
 *     const lm = await startLibmilter();
 *     const pf = await startPostfix({ relayPort: sink.port!, milters: lm.postfixSpec });
 *     try {
 *       await runSmtpSource({ port: pf.smtpPort, from: "a@bench.test", to: "r@example.test" });
 *       const [msg] = await sink.waitForMessages(1);
 *       expect(headerValues(msg, "X-Bench-Milter")).toEqual(["libmilter"]);
 *     } finally { await pf.stop(); await lm.stop(); await sink.stop(); }
 *   });
 *
 * Every wait is bounded; startup failures throw StartupError with the
 * relevant log (maillog, the peer's output) in the message.
 */
import * as fs from "node:fs";
import { postfixAvailable } from "./postfix.ts";

export * from "./dirs.ts";
export * from "./peers.ts";
export * from "./ports.ts";
export * from "./postfix.ts";
export * from "./proc.ts";
export * from "./sink.ts";
export * from "./smtp.ts";
export * from "./manager.ts";
export * from "./source.ts";

/** Programs the harness runs; a missing one makes {@link e2eSkipReason} say so. */
export const REQUIRED_PROGRAMS = [
  "/usr/sbin/postfix",
  "/usr/sbin/postconf",
  "/usr/sbin/smtp-sink",
  "/usr/sbin/smtp-source",
  "/usr/sbin/saslpasswd2",
  "/usr/sbin/opendkim",
  "/usr/sbin/opendkim-genkey",
  "/usr/bin/openssl", // run by opendkim-genkey
  "/usr/bin/python3",
  "/usr/bin/cc",
  "/usr/include/libmilter/mfapi.h",
];

/**
 * Why end-to-end tests cannot run here, or null if they can: they need root
 * (Postfix's master, smtp-sink -u, dropping milters to nobody) and Postfix.
 * Other missing pieces are not a reason to skip: the tests then fail and say
 * what is missing, because CI installs them (.ci/run).
 */
export function e2eSkipReason(): string | null {
  if (process.getuid?.() !== 0) return "end-to-end tests need root (they run a private Postfix instance)";
  if (!postfixAvailable()) return "end-to-end tests need Postfix (apt-get install postfix)";
  return null;
}

/** Programs from REQUIRED_PROGRAMS that are missing (for a clear failure message). */
export function missingPrograms(): string[] {
  return REQUIRED_PROGRAMS.filter((p) => !fs.existsSync(p));
}
