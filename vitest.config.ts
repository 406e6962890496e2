import { defineConfig } from "vitest/config";

/**
 * Two groups, run one after the other in one `vitest run`:
 *  - "main": every test file, in parallel;
 *  - "faults": the fault tests that restart PostgreSQL or SIGKILL a DS process. They run alone,
 *    after "main", so that a PostgreSQL restart cannot break another file's queries (the one
 *    SQLite fault test beside it does not use PostgreSQL).
 */
const FAULTS = ["test/ds/fault.*.test.ts"];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    projects: [
      {
        extends: true,
        test: {
          name: "main",
          include: ["test/**/*.test.ts"],
          exclude: ["**/node_modules/**", ...FAULTS],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: "faults",
          include: FAULTS,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
