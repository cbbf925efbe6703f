// Loaded before every test file (bunfig.toml): the manager's auto-detection looks at a fixture
// tree with no milter instead of this machine's /etc, so a test's result does not depend on the
// milters installed where it runs. Tests of detection set MILTERKIT_DETECT_ROOT themselves.
import { join } from "node:path";

process.env.MILTERKIT_DETECT_ROOT = join(import.meta.dir, "fixtures", "detect", "empty");

// A 60 s default per test. bunfig.toml's [test] timeout is ignored by Bun, and setDefaultTimeout()
// here reaches only the first test file of a run (Bun 1.4.5): enough for `bun test FILE`;
// a run of several files needs `bun test --timeout 60000` (what `bun run test` and .ci/run do).
// Unit tests that need a tighter limit still pass their own.
import { setDefaultTimeout } from "bun:test";
setDefaultTimeout(60_000);
