/** Pool options shared by the crash test and its child process. */
export const CRASH_POOL_OPTIONS = { target: 20, lowWater: 10 } as const;
