// Placeholder until this tool is implemented: it parses nothing and says so.
import { defineCommand } from "citty";
import { VERSION } from "../version.ts";

export default defineCommand({
  meta: { name: "smtp-source", version: VERSION, description: "smtp-source (not implemented yet)" },
  args: {},
  run() {
    process.stderr.write("smtp-source: not implemented yet\n");
    return 2;
  },
});
