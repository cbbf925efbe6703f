// milter-test-client: a milter that answers "continue" to everything and prints what the MTA sent, macros included.
import { TEST_CLIENT_TABLE } from "./options/test-client.ts";
import { OptionError, testClientConfig } from "../test-client/options.ts";
import { PROG, runTestClient } from "../test-client/run.ts";
import type { Tool } from "./run.ts";

const tool: Tool = {
  options: TEST_CLIENT_TABLE,
  bareVersion: true,
  run(args) {
    let config;
    try {
      config = testClientConfig(args);
    } catch (e) {
      if (e instanceof OptionError) {
        process.stderr.write(`${PROG}: ${e.message}\n`);
        return 1;
      }
      throw e;
    }
    return runTestClient(config);
  },
};

export default tool;
