// Loaded before every test file (bunfig.toml): the manager's auto-detection looks at a fixture
// tree with no milter instead of this machine's /etc, so a test's result does not depend on the
// milters installed where it runs. Tests of detection set MILTERKIT_DETECT_ROOT themselves.
import { join } from "node:path";

process.env.MILTERKIT_DETECT_ROOT = join(import.meta.dir, "fixtures", "detect", "empty");

// bunfig.toml's [test] timeout is not applied by this Bun (tests stopped at its 5 s default):
// set the same 60 s here. Unit tests that need a tighter limit still pass their own.
import { setDefaultTimeout } from "bun:test";
setDefaultTimeout(60_000);
