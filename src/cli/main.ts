/** Entry point of `mlskp` (see bin/mlskp.js). */
import { runCli } from "./program.js";

runCli().catch((err: unknown) => {
  process.stderr.write(`mlskp: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
