// zod as every schema of the configuration uses it (the conditions' settings here, config/ above).
// jitless: a configuration is validated once at start and once per reload, so zod's generated
// object parsers (new Function, kept for the life of the process) cost memory and buy nothing;
// set before any schema is built, as zod reads it when an object schema is made.
import { z } from "zod";

z.config({ jitless: true });

export { z };
