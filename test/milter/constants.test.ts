/** Constants: codes as in the protocol tables, lookups both ways, flag groups, stages. */
import { expect, test } from "bun:test";
import {
  ACTION_FLAGS,
  COMMAND_CODE,
  MACRO_STAGE_COMMAND,
  PROTOCOL_FLAGS,
  REPLY_CODE,
  SMFI_CURR_ACTS,
  SMFI_CURR_PROT,
  SMFI_INTERNAL,
  SMFIP_HDR_LEADSPC,
  SMFIP_MDS_1M,
  SMFIP_MDS_256K,
  SMFIP_NO_MASK,
  SMFIP_NR_MASK,
  SMFIP_RCPT_REJ,
  SMFIP_SKIP,
  STAGE_NAMES,
  commandLetter,
  commandName,
  commandType,
  flagNames,
  macroStageName,
  macroStageOf,
  replyName,
  replyType,
  stageName,
  type MtaCommandType,
} from "../../src/milter/index.ts";

test("command letters match protocol.md §2.0", () => {
  const letters = Object.fromEntries(Object.entries(COMMAND_CODE).map(([k, v]) => [k, String.fromCharCode(v)]));
  expect(letters).toEqual({
    optneg: "O", macro: "D", connect: "C", helo: "H", mail: "M", rcpt: "R", data: "T", header: "L", eoh: "N",
    body: "B", eob: "E", abort: "A", quit: "Q", quit_nc: "K", unknown: "U",
  });
  expect(commandLetter("eob")).toBe("E");
});

test("reply letters match protocol.md §3.0", () => {
  const letters = Object.fromEntries(Object.entries(REPLY_CODE).map(([k, v]) => [k, String.fromCharCode(v)]));
  expect(letters).toEqual({
    optneg: "O", accept: "a", continue: "c", discard: "d", reject: "r", tempfail: "t", replycode: "y", skip: "s",
    progress: "p", shutdown: "4", conn_fail: "f", addheader: "h", insheader: "i", chgheader: "m", replbody: "b",
    addrcpt: "+", addrcpt_par: "2", delrcpt: "-", chgfrom: "e", quarantine: "q", setsymlist: "l",
  });
});

test("code ↔ type lookups are inverse; unknown bytes give undefined", () => {
  for (const [t, c] of Object.entries(COMMAND_CODE)) expect(commandType(c)).toBe(t as MtaCommandType);
  for (const [t, c] of Object.entries(REPLY_CODE)) expect(replyType(c)).toBe(t as keyof typeof REPLY_CODE);
  expect(commandType(0x5a)).toBeUndefined();
  expect(replyType(0x43)).toBeUndefined();
  expect(commandName(0x43)).toBe("SMFIC_CONNECT ('C')");
  expect(replyName(0x34)).toBe("SMFIR_SHUTDOWN ('4')");
  expect(replyName(0x4f)).toBe("SMFIC_OPTNEG ('O')");
  expect(commandName(0x0a)).toBe("unknown command 0x0a");
});

test("flag groups are consistent", () => {
  expect(ACTION_FLAGS.reduce((m, f) => m | f.bit, 0)).toBe(SMFI_CURR_ACTS);
  expect((SMFIP_NO_MASK | SMFIP_NR_MASK | SMFIP_SKIP | SMFIP_RCPT_REJ | SMFIP_HDR_LEADSPC) >>> 0).toBe(SMFI_CURR_PROT);
  expect((SMFIP_MDS_256K | SMFIP_MDS_1M) & ~SMFI_INTERNAL).toBe(0);
  expect(SMFI_CURR_PROT & SMFI_INTERNAL).toBe(0);
  expect(PROTOCOL_FLAGS.filter((f) => f.nick === undefined).map((f) => f.name)).toEqual(["MDS_256K", "MDS_1M"]);
  expect(flagNames(0x80000000 | SMFIP_SKIP, PROTOCOL_FLAGS)).toEqual(["SKIP"]);
});

test("stage names and macro stages", () => {
  expect(STAGE_NAMES.length).toBe(13);
  expect(stageName("mail")).toBe("envelope-from");
  expect(stageName("rcpt")).toBe("envelope-recipient");
  expect(stageName("eoh")).toBe("end-of-header");
  expect(stageName("eob")).toBe("end-of-message");
  expect(stageName("optneg")).toBe("negotiate");
  expect(stageName("macro")).toBeUndefined();
  for (const t of Object.keys(COMMAND_CODE) as MtaCommandType[]) {
    const s = stageName(t);
    if (s) expect(STAGE_NAMES).toContain(s);
  }
  // EOM is 5, EOH is 6.
  expect(macroStageOf("eob")).toBe(5);
  expect(macroStageOf("eoh")).toBe(6);
  expect(macroStageOf("header")).toBeUndefined();
  expect(MACRO_STAGE_COMMAND[5]).toBe("eob");
  for (const s of [0, 1, 2, 3, 4, 5, 6] as const) expect(macroStageOf(MACRO_STAGE_COMMAND[s])).toBe(s);
  expect(macroStageName(5)).toBe("SMFIM_EOM");
  expect(macroStageName(9)).toBe("stage 9");
});
