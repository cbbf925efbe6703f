// Placeholder until this tool is implemented: it parses nothing and says so.
import { defineCommand } from "citty";
import { VERSION } from "../version.ts";

export default defineCommand({
  meta: { name: "smtp-sink", version: VERSION, description: "smtp-sink (not implemented yet)" },
  args: {},
  run() {
    process.stderr.write("smtp-sink: not implemented yet\n");
    return 2;
  },
});
