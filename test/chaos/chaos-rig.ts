/**
 * What a fault run stands on: a PostgreSQL and a Redis of its own
 * (test/support/private-services.ts), a fault proxy in front of each
 * (Postern reaches its stores only through them), and Postern itself, the
 * bench's server (`postern serve` as a child process on the bench's pool),
 * migrated and seeded with users holding a passkey each. Mail goes to a sink,
 * so sign-ups can read their codes.
 *
 * The rig's own connection to PostgreSQL bypasses the proxy: the integrity
 * checks read the tables while Postern's way there is being broken.
 */
import pg from 'pg';
import type { BenchUser } from '../bench/flows.ts';
import { insertUsers, mintUsers } from '../bench/seed-users.ts';
import {
  migrate,
  POOL_ID,
  type PosternSetup,
  type ServerUnderTest,
  startPostern,
  writePosternConfig,
} from '../bench/servers.ts';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import { type MailSink, startMailSink } from '../support/mail-sink.ts';
import {
  type PrivatePostgres,
  type PrivateRedis,
  startPrivatePostgres,
  startPrivateRedis,
} from '../support/private-services.ts';

export interface ChaosRig {
  postern: ServerUnderTest;
  postgres: PrivatePostgres;
  redis: PrivateRedis;
  /** Between Postern and each store. */
  postgresProxy: FaultProxy;
  redisProxy: FaultProxy;
  /** A query straight to PostgreSQL (a connection of its own each time, as the server may have crashed since), for the checks. */
  query<Row extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<Row[]>;
  mail: MailSink;
  users: BenchUser[];
  poolId: string;
  close(): Promise<void>;
}

export interface ChaosRigOptions {
  /** Seeded users, each with a passkey. */
  users: number;
  /** (Optional) Postern's store timeouts, as DATABASE_TIMEOUT_MS and REDIS_TIMEOUT_MS. Defaults to production's. */
  storeTimeouts?: { databaseMs: number; redisMs: number };
}

export async function startChaosRig({ users: userCount, storeTimeouts }: ChaosRigOptions): Promise<ChaosRig> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  };
  try {
    const postgres = await startPrivatePostgres();
    cleanups.push(() => postgres.destroy());
    const redis = await startPrivateRedis();
    cleanups.push(() => redis.destroy());
    const postgresProxy = await startFaultProxy({ host: '127.0.0.1', port: postgres.port });
    cleanups.push(() => postgresProxy.close());
    const redisProxy = await startFaultProxy({ host: '127.0.0.1', port: redis.port });
    cleanups.push(() => redisProxy.close());
    const mail = await startMailSink();
    cleanups.push(() => mail.close());

    const setup: PosternSetup = {
      databaseUrl: `postgres://postgres@127.0.0.1:${postgresProxy.port}/postgres`,
      redisUrl: `redis://127.0.0.1:${redisProxy.port}`,
      redisKeyPrefix: 'postern:',
      smtpUrl: mail.url,
      ...(storeTimeouts
        ? {
            env: {
              DATABASE_TIMEOUT_MS: String(storeTimeouts.databaseMs),
              REDIS_TIMEOUT_MS: String(storeTimeouts.redisMs),
            },
          }
        : {}),
    };
    const config = await writePosternConfig(setup);
    cleanups.push(() => config.remove());
    await migrate(config, setup);

    const query = async <Row extends pg.QueryResultRow>(text: string, values?: unknown[]) => {
      const client = new pg.Client({ connectionString: postgres.url, connectionTimeoutMillis: 5_000 });
      client.on('error', () => {});
      await client.connect();
      try {
        return (await client.query<Row>(text, values)).rows;
      } finally {
        await client.end().catch(() => {});
      }
    };
    const minted = mintUsers(userCount);
    const seeder = new pg.Client({ connectionString: postgres.url });
    await seeder.connect();
    try {
      await insertUsers(seeder, POOL_ID, minted);
    } finally {
      await seeder.end();
    }

    const postern = await startPostern(config, setup);
    cleanups.push(() => postern.stop());
    return {
      postern,
      postgres,
      redis,
      postgresProxy,
      redisProxy,
      query,
      mail,
      users: minted.map((one) => one.user),
      poolId: POOL_ID,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
