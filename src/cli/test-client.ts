// Placeholder until this tool is implemented: it parses nothing and says so.
import { defineCommand } from "citty";
import { VERSION } from "../version.ts";

export default defineCommand({
  meta: { name: "milter-test-client", version: VERSION, description: "test-client (not implemented yet)" },
  args: {},
  run() {
    process.stderr.write("milter-test-client: not implemented yet\n");
    return 2;
  },
});
