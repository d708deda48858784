/**
 * Store round trips counted on the wire, from outside the server: the TCP
 * data segments a server's processes sent to PostgreSQL (:5432) and Redis
 * (:6379), per socket, from `ss -tinp` (`data_segs_out`). On the loopback a
 * request is one write and one segment: node-postgres corks a query's
 * parse/bind/execute/sync into one write, ioredis writes a MULTI … EXEC
 * block or a pipeline at once, and both disable Nagle. So the count is the
 * number of requests the server waited on (a write over the segment size,
 * 32 KB or more here, would count twice; none of the flows sends one). Unlike
 * INFO commandstats it ignores commands Lua scripts run inside Redis and other
 * clients of the shared servers, and unlike pg_stat_database it counts
 * statements, not transactions, with no flush delay.
 *
 * https://man7.org/linux/man-pages/man8/ss.8.html
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const POSTGRES_PORT = 5432;
export const REDIS_PORT = 6379;

/** Segments sent so far, per socket (local address:port), with the store it goes to. */
export type SegmentSnapshot = Map<string, { port: number; segments: number }>;

/** The established sockets of `pids` to the stores, and how many data segments each sent. */
export async function snapshotSegments(pids: readonly number[]): Promise<SegmentSnapshot> {
  const snapshot: SegmentSnapshot = new Map();
  if (pids.length === 0) return snapshot;
  const wanted = new Set(pids);
  const { stdout } = await run('ss', [
    '-tinpH',
    'state',
    'established',
    `( dport = :${POSTGRES_PORT} or dport = :${REDIS_PORT} )`,
  ]);
  // Each socket is a line with its addresses and owner, then an indented line of TCP info.
  let current: { key: string; port: number } | undefined;
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('\t') && !line.startsWith(' ')) {
      current = undefined;
      const [, , local = '', peer = '', owner = ''] = line.trim().split(/\s+/);
      const pid = Number(/pid=(\d+)/.exec(owner)?.[1]);
      if (wanted.has(pid)) current = { key: `${local}>${peer}`, port: Number(peer.split(':').pop()) };
      continue;
    }
    if (!current) continue;
    const segments = Number(/data_segs_out:(\d+)/.exec(line)?.[1] ?? 0);
    snapshot.set(current.key, { port: current.port, segments });
  }
  return snapshot;
}

/** Segments sent to each store between two snapshots; a socket opened in between counts in full. */
export function segmentsBetween(
  before: SegmentSnapshot,
  after: SegmentSnapshot,
): { postgres: number; redis: number } {
  const sent = { postgres: 0, redis: 0 };
  for (const [key, { port, segments }] of after) {
    const added = segments - (before.get(key)?.segments ?? 0);
    if (port === POSTGRES_PORT) sent.postgres += added;
    else if (port === REDIS_PORT) sent.redis += added;
  }
  return sent;
}
