/**
 * The store timeouts of the servers and commands tests start. Production's
 * (800 ms for PostgreSQL, 400 ms for Redis) suit a server with its cores to
 * itself; the suite runs many servers, PostgreSQL backends and Chromium on
 * two cores, where opening a connection can take a second, and a test that is
 * not about outages would fail with a 503. The tests of the timeouts
 * themselves run with production's: test/integration/reliability/store-faults
 * and `npm run chaos` (the bench's server), and the stores' own tests.
 */
export const TEST_STORE_TIMEOUTS = { DATABASE_TIMEOUT_MS: '10000', REDIS_TIMEOUT_MS: '5000' } as const;
