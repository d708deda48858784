/**
 * Graceful shutdown and rolling restart (issue 12, item 5), through the real
 * `postern serve` on PostgreSQL and Redis, under closed-loop passkey
 * sign-ins (authorize → page → state → options → verify → code → token, a
 * software authenticator signing):
 *
 * - SIGTERM mid-load: every request that was on the wire when the signal
 *   came gets its whole answer, none a 5xx, including one whose body is still
 *   arriving; a request sent afterwards is answered or refused before any
 *   byte of an answer, never cut off or left hanging; new connections are
 *   refused while the last request drains; the process exits 0 soon after
 *   its last answer, well within its grace period.
 * - A rolling restart of two processes behind a loopback proxy
 *   (restart-proxy.ts: round-robin, a refused connection tries the other,
 *   nothing that reached a backend is retried): each restarted in turn while
 *   clients sign in through the proxy, and no sign-in fails.
 */
import { createHash, randomBytes } from 'node:crypto';
import { type ClientRequest, Agent as HttpAgent, type IncomingMessage, request } from 'node:http';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import pg from 'pg';
import { BenchBrowser, type BenchResponse, nextSourceAddress } from '../../bench/bench-browser.ts';
import { type BenchUser, posternSignIn, type Target } from '../../bench/flows.ts';
import { insertUsers, mintUsers } from '../../bench/seed-users.ts';
import { writeConfigDir } from '../../support/config-dir.ts';
import { freePort, TEST_SECRET } from '../../support/postern-server.ts';
import {
  createTestDatabaseFor,
  deleteKeysWithPrefix,
  probePostgres,
  probeRedis,
  redisTestUrl,
  serviceTest,
  uniqueKeyPrefix,
} from '../../support/services.ts';
import { type PosternProcess, runPostern, startPosternProcess } from '../../support/spawn-postern.ts';
import { startRestartProxy } from './restart-proxy.ts';

const [postgres, redis] = await Promise.all([probePostgres(), probeRedis()]);
const test = serviceTest(serviceTest(anyTest as TestFn, postgres), redis);

/** src/cli/serve.ts: how long a shutdown may take before the process forces its exit. */
const SHUTDOWN_GRACE_MS = 10_000;
const HOST = '127.0.0.1';
const POOL_ID = 'acme';
const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const WEB = { id: 'web', secret: 'web-secret-0123456789-abcdefghijklmnop', redirectUri: REDIRECT_URI };
const MACHINE = { id: 'machine', secret: 'machine-secret-0123456789-abcdefghijkl', scope: 'admin' };
const POOL_FILE = `
passkeys:
  mode: smart
  rp:
    id: localhost
    origins: ["\${PUBLIC_URL}"]
authentication:
  first_factor: [passkey, email_otp]
clients:
  - client_id: ${WEB.id}
    client_secret: ${WEB.secret}
    token_endpoint_auth_method: client_secret_basic
    redirect_uris: ["${REDIRECT_URI}"]
    grant_types: [authorization_code]
    scope: openid email
    first_party: true
  - client_id: ${MACHINE.id}
    client_secret: ${MACHINE.secret}
    grant_types: [client_credentials]
    scope: admin
`;
/** Clients signing in at once (2 cores, shared with the server and the stores). */
const CLIENTS = 6;

/**
 * A migrated database with `users` passkey users, a Redis prefix and a
 * configuration directory, all removed when `t` ends; `env(port)` is what a
 * `postern` process listening on `port` needs.
 */
async function setup(
  t: ExecutionContext,
  {
    users,
    publicUrl,
    trustProxy,
    shutdownDelay = '0s',
  }: { users: number; publicUrl: string; trustProxy: boolean; shutdownDelay?: string },
) {
  const database = await createTestDatabaseFor(t);
  const prefix = uniqueKeyPrefix();
  t.teardown(() => deleteKeysWithPrefix(prefix));
  const config = await writeConfigDir({
    server: `log_level: warn\ntrust_proxy: ${trustProxy}\nshutdown_delay: ${shutdownDelay}\nredis:\n  key_prefix: "${prefix}"\n`,
    pools: { [POOL_ID]: POOL_FILE },
  });
  t.teardown(() => config.remove());
  const env = (port: number) => ({
    POSTERN_CONFIG_DIR: config.dir,
    DATABASE_URL: database.url,
    REDIS_URL: redisTestUrl(),
    POSTERN_SECRET: TEST_SECRET,
    PUBLIC_URL: publicUrl,
    PORT: String(port),
  });
  const migrated = await runPostern(['migrate'], env(0));
  if (migrated.code !== 0)
    throw new Error(`postern migrate exited with ${migrated.code}: ${migrated.stderr}`);
  const minted = mintUsers(users);
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await insertUsers(client, POOL_ID, minted);
  } finally {
    await client.end();
  }
  return { env, users: minted.map((one) => one.user) };
}

function startServe(t: ExecutionContext, env: Record<string, string>, port: number): Promise<PosternProcess> {
  return startPosternProcess(['serve'], env, { readyUrl: `http://${HOST}:${port}/readyz` }).then((server) => {
    t.teardown(() => server.stop('SIGKILL'));
    return server;
  });
}

function target(origin: string, rpAgent: HttpAgent): Target {
  return {
    name: 'postern',
    connectHost: HOST,
    origin,
    issuer: `${origin}/${POOL_ID}`,
    web: WEB,
    machine: MACHINE,
    rpAgent,
  };
}

/** One request as its client saw it. */
interface Exchange {
  what: string;
  /** When the whole request had been handed to the socket (performance.now()). */
  sentAt?: number;
  status?: number;
  connection?: string;
  /** The whole answer arrived. */
  complete: boolean;
  /** An answer had begun to arrive when the request failed. */
  cutOff: boolean;
  error?: string;
  settledAt?: number;
}

/** http.Agent#addRequest: every request through an agent passes there (it is not in @types/node). */
type AddRequest = (this: HttpAgent, req: ClientRequest, options: unknown) => void;
const addRequest = (HttpAgent.prototype as unknown as { addRequest: AddRequest }).addRequest;

/**
 * A keep-alive agent that writes down every request it carries, as the
 * client saw it: when it was sent, and whether and how it was answered.
 */
class RecordingAgent extends HttpAgent {
  readonly #log: Exchange[];
  readonly #inFlight: Set<Exchange>;

  constructor(
    log: Exchange[],
    inFlight: Set<Exchange>,
    options: { maxSockets: number; localAddress?: string },
  ) {
    super({ keepAlive: true, ...options });
    this.#log = log;
    this.#inFlight = inFlight;
  }

  addRequest(req: ClientRequest, options: unknown): void {
    const exchange: Exchange = {
      what: `${req.method} ${req.path.split('?')[0]}`,
      complete: false,
      cutOff: false,
    };
    this.#log.push(exchange);
    req.once('finish', () => {
      exchange.sentAt = performance.now();
      if (exchange.settledAt === undefined) this.#inFlight.add(exchange);
    });
    req.once('response', (answer: IncomingMessage) => {
      exchange.status = answer.statusCode;
      exchange.connection = answer.headers.connection;
      answer.once('end', () => {
        exchange.complete = true;
      });
      answer.once('aborted', () => {
        exchange.cutOff = true;
      });
    });
    req.once('error', (error: NodeJS.ErrnoException) => {
      exchange.error ??= error.code ?? error.message;
      if (exchange.status !== undefined && !exchange.complete) exchange.cutOff = true;
    });
    req.once('close', () => {
      exchange.settledAt = performance.now();
      this.#inFlight.delete(exchange);
    });
    addRequest.call(this, req, options);
  }
}

function expectStatus(response: BenchResponse, status: number, what: string): BenchResponse {
  if (response.status !== status)
    throw new Error(`${what}: expected ${status}, got ${response.status} ${response.body.slice(0, 200)}`);
  return response;
}

/**
 * A usernameless passkey sign-in up to the authorization code, hop by hop as
 * test/bench/flows.ts's posternSignIn (which opens its own connections; this
 * one goes over `agent`, so each request is recorded). Resolves with the code
 * and its PKCE verifier.
 */
async function signInToCode(agent: HttpAgent, origin: string, user: BenchUser) {
  const browser = new BenchBrowser({ connectHost: HOST, agent });
  const verifier = randomBytes(32).toString('base64url');
  const authorize = new URL(`${origin}/${POOL_ID}/auth`);
  authorize.search = new URLSearchParams({
    client_id: WEB.id,
    redirect_uri: REDIRECT_URI,
    response_type: 'code',
    scope: 'openid email',
    state: randomBytes(16).toString('base64url'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString();
  const page = new URL(
    String(expectStatus(await browser.send(authorize), 303, 'GET /auth').headers.location),
    authorize,
  );
  expectStatus(await browser.send(page, { headers: { accept: 'text/html' } }), 200, 'GET page');
  const json = async (path: string, body?: unknown) => {
    const url = new URL(`${page.href}/${path}`);
    const response = await browser.send(
      url,
      body === undefined
        ? { headers: { accept: 'application/json' } }
        : {
            method: 'POST',
            headers: { accept: 'application/json', 'content-type': 'application/json', origin },
            body: JSON.stringify(body),
          },
    );
    return JSON.parse(expectStatus(response, 200, path).body) as Record<string, unknown>;
  };
  await json('state');
  const options = await json('passkey/options', {});
  const verified = await json('passkey/verify', {
    response: user.authenticator.authenticate(options as never, origin),
  });
  let next = new URL(String(verified.redirect_to));
  for (let hops = 0; hops < 5 && next.origin === origin; hops++) {
    const response = await browser.send(next);
    if (response.status !== 303 && response.status !== 302)
      throw new Error(`GET ${next.pathname}: ${response.status} ${response.body.slice(0, 200)}`);
    next = new URL(String(response.headers.location), next);
  }
  const code = next.searchParams.get('code');
  if (!code) throw new Error(`no code in ${next.href}`);
  return { code, verifier };
}

function tokenForm(code: string, verifier: string): string {
  return new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: REDIRECT_URI,
    code_verifier: verifier,
  }).toString();
}

const basicAuth = `Basic ${Buffer.from(`${WEB.id}:${WEB.secret}`).toString('base64')}`;

async function redeem(agent: HttpAgent, origin: string, code: string, verifier: string): Promise<void> {
  const backchannel = new BenchBrowser({ connectHost: HOST, agent });
  const response = await backchannel.send(new URL(`${origin}/${POOL_ID}/token`), {
    method: 'POST',
    headers: { authorization: basicAuth, 'content-type': 'application/x-www-form-urlencoded' },
    body: tokenForm(code, verifier),
  });
  if (
    !(JSON.parse(expectStatus(response, 200, 'POST /token').body) as { access_token?: string }).access_token
  )
    throw new Error('POST /token: no access token');
}

/**
 * Resolves once `ready()` holds, false after `ms`; between looks it runs
 * `poll`, or waits for the next turn of the event loop.
 */
async function until(ready: () => boolean, ms: number, poll?: () => Promise<void>): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!ready()) {
    if (performance.now() > deadline) return false;
    await (poll ? poll() : new Promise((resolve) => setImmediate(resolve)));
  }
  return true;
}

/** Tries a new TCP connection: `refused`, `connected` (then closed at once), or a timeout. */
function tryConnect(port: number): Promise<'refused' | 'connected' | 'timeout' | string> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve('timeout');
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) =>
      resolve(error.code === 'ECONNREFUSED' ? 'refused' : (error.code ?? error.message)),
    );
  });
}

/**
 * POST /token with its body split in two: `start()` sends the headers and
 * the first half, `finish()` the rest; `answer` settles with the response.
 */
function trickledTokenRequest(port: number, origin: string, form: string) {
  const agent = new HttpAgent({ keepAlive: false });
  let outgoing: ClientRequest | undefined;
  const half = Math.floor(form.length / 2);
  let resolveAnswer: (value: { status: number; connection?: string; body: string }) => void = () => {};
  let rejectAnswer: (error: Error) => void = () => {};
  const answer = new Promise<{ status: number; connection?: string; body: string }>((resolve, reject) => {
    resolveAnswer = resolve;
    rejectAnswer = reject;
  });
  answer.catch(() => {}); // awaited later; a failure before then must not count as unhandled
  return {
    answer,
    start() {
      outgoing = request(
        {
          agent,
          host: HOST,
          port,
          method: 'POST',
          path: `/${POOL_ID}/token`,
          headers: {
            host: new URL(origin).host,
            authorization: basicAuth,
            'content-type': 'application/x-www-form-urlencoded',
            'content-length': String(Buffer.byteLength(form)),
          },
        },
        (incoming) => {
          let body = '';
          incoming.setEncoding('utf8');
          incoming.on('data', (chunk: string) => {
            body += chunk;
          });
          incoming.once('aborted', () => rejectAnswer(new Error('answer cut off')));
          incoming.once('end', () =>
            resolveAnswer({
              status: incoming.statusCode ?? 0,
              connection: incoming.headers.connection,
              body,
            }),
          );
        },
      );
      outgoing.once('error', rejectAnswer);
      outgoing.flushHeaders();
      outgoing.write(form.slice(0, half));
    },
    finish() {
      outgoing?.end(form.slice(half));
    },
  };
}

test.serial(
  'SIGTERM mid-load: every request already sent is answered in full, new connections are refused, the process exits 0',
  async (t) => {
    const port = await freePort();
    const origin = `http://localhost:${port}`;
    const { env, users } = await setup(t, { users: CLIENTS + 1, publicUrl: origin, trustProxy: false });
    const server = await startServe(t, env(port), port);
    const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
      server.child.once('exit', (code) => resolve({ code, at: performance.now() })),
    );

    const log: Exchange[] = [];
    const inFlight = new Set<Exchange>();
    const rpAgent = new RecordingAgent(log, inFlight, { maxSockets: CLIENTS });
    t.teardown(() => rpAgent.destroy());

    // One client holds a code whose redemption will still be arriving when the signal comes.
    const [slowUser, ...loadUsers] = users as [BenchUser, ...BenchUser[]];
    const slowAgent = new HttpAgent({ keepAlive: true, maxSockets: 1, localAddress: nextSourceAddress() });
    const held = await signInToCode(slowAgent, origin, slowUser);
    slowAgent.destroy();
    const slow = trickledTokenRequest(port, origin, tokenForm(held.code, held.verifier));

    // Closed loop: each client keeps its connection from one sign-in to the next, as a browser does.
    let stopped = false;
    let signIns = 0;
    const clients = loadUsers.map(async (user) => {
      const agent = new RecordingAgent(log, inFlight, { maxSockets: 1, localAddress: nextSourceAddress() });
      try {
        while (!stopped) {
          try {
            const { code, verifier } = await signInToCode(agent, origin, user);
            await redeem(rpAgent, origin, code, verifier);
            signIns++;
          } catch {
            await sleep(20); // refused once the server stops accepting; the records say what happened
          }
        }
      } finally {
        agent.destroy();
      }
    });
    t.teardown(() => {
      stopped = true;
    });

    t.true(await until(() => signIns >= 2 * CLIENTS, 20_000), 'the clients sign in before the signal');
    slow.start();
    await sleep(50); // its headers and half its body are at the server
    t.true(await until(() => inFlight.size >= 3, 5_000), 'requests on the wire when the signal comes');
    const inFlightAtSignal = inFlight.size;
    const signInsBefore = signIns;
    const signalledAt = performance.now();
    server.child.kill('SIGTERM');

    // While the trickled request holds the process, a new connection is refused (not accepted and left hanging).
    let connectAttempts = 0;
    let refusal: string | undefined;
    while (performance.now() - signalledAt < 2_000) {
      connectAttempts++;
      const outcome = await tryConnect(port);
      if (outcome === 'refused') {
        refusal = outcome;
        break;
      }
      // Accepted before the listener closed (then closed or reset), but never left hanging.
      t.not(outcome, 'timeout', 'a connection made after the signal is refused or taken, never left hanging');
      await sleep(10);
    }
    const refusedAfterMs = performance.now() - signalledAt;
    t.is(refusal, 'refused', 'new connections are refused after SIGTERM');
    t.is(server.child.exitCode, null, 'the trickled request still holds the process');

    await sleep(200);
    t.is(server.child.exitCode, null);
    slow.finish();
    const slowAnswer = await slow.answer;
    const slowAnsweredAt = performance.now();
    t.is(slowAnswer.status, 200, slowAnswer.body);
    t.truthy((JSON.parse(slowAnswer.body) as { access_token?: string }).access_token);
    t.is(slowAnswer.connection, 'close', 'a draining server says the connection ends with this answer');

    const exit = await Promise.race([exited, sleep(SHUTDOWN_GRACE_MS + 2_000).then(() => undefined)]);
    stopped = true;
    await Promise.all(clients);
    if (!exit) return t.fail(`postern did not exit within ${SHUTDOWN_GRACE_MS + 2_000} ms of SIGTERM`);
    t.is(exit.code, 0, server.output());
    const exitMs = exit.at - signalledAt;
    t.true(exitMs < SHUTDOWN_GRACE_MS, `exited ${exitMs.toFixed(0)} ms after SIGTERM`);
    t.true(
      exit.at - slowAnsweredAt < 3_000,
      `exited ${(exit.at - slowAnsweredAt).toFixed(0)} ms after its last answer: nothing else held it`,
    );

    const sentBefore = log.filter(
      (exchange) => exchange.sentAt !== undefined && exchange.sentAt < signalledAt,
    );
    const lost = sentBefore.filter(
      (exchange) => !exchange.complete || exchange.cutOff || (exchange.status ?? 500) >= 500,
    );
    t.deepEqual(lost, [], 'every request sent before SIGTERM got its whole answer, and no 5xx');
    const after = log.filter((exchange) => !sentBefore.includes(exchange));
    const broken = after.filter(
      (exchange) =>
        exchange.cutOff ||
        exchange.settledAt === undefined ||
        (exchange.status !== undefined && (!exchange.complete || exchange.status >= 500)),
    );
    t.deepEqual(broken, [], 'a request sent after SIGTERM is answered whole or refused before any answer');
    const answeredAfter = after.filter((exchange) => exchange.complete);
    t.true(
      answeredAfter.every((exchange) => exchange.connection === 'close'),
      'every answer after SIGTERM closes its connection',
    );
    t.log(
      `${signInsBefore} sign-ins before SIGTERM; ${inFlightAtSignal} requests in flight at SIGTERM (+1 trickled token request), ` +
        `all answered; after it ${answeredAfter.length} answered, ${after.length - answeredAfter.length} refused before any answer; ` +
        `new connections refused ${refusedAfterMs.toFixed(0)} ms after SIGTERM (${connectAttempts} tries); ` +
        `exit 0 after ${exitMs.toFixed(0)} ms (${(exit.at - slowAnsweredAt).toFixed(0)} ms after the last answer)`,
    );
  },
);

test.serial('a rolling restart of two processes behind a proxy fails no sign-in', async (t) => {
  const [portA, portB] = [await freePort(), await freePort()];
  const proxy = await startRestartProxy([portA, portB]);
  t.teardown(() => proxy.close());
  const origin = `http://localhost:${proxy.port}`;
  const { env, users } = await setup(t, {
    users: CLIENTS,
    publicUrl: origin,
    trustProxy: true,
    shutdownDelay: '1s',
  });
  const servers = new Map<number, PosternProcess>();
  for (const port of [portA, portB]) servers.set(port, await startServe(t, env(port), port));

  const rpAgent = new HttpAgent({ keepAlive: true, maxSockets: CLIENTS });
  t.teardown(() => rpAgent.destroy());
  const through = target(origin, rpAgent);
  let stopped = false;
  let completed = 0;
  const failures: string[] = [];
  const clients = users.map(async (user) => {
    while (!stopped) {
      try {
        await posternSignIn(through, user);
        completed++;
      } catch (error) {
        failures.push(error instanceof Error ? error.message : String(error));
      }
    }
  });
  t.teardown(() => {
    stopped = true;
  });

  t.true(await until(() => completed >= CLIENTS, 20_000), 'sign-ins through the proxy before the restart');
  const restarts: string[] = [];
  for (const [name, port] of [
    ['A', portA],
    ['B', portB],
  ] as const) {
    const startedAt = performance.now();
    const before = completed;
    const exit = servers.get(port)?.stop('SIGTERM');
    // Within its shutdown_delay it still serves, and tells the proxy it is going.
    let readiness: number | undefined;
    await until(
      () => readiness === 503,
      900,
      async () => {
        readiness = await fetch(`http://${HOST}:${port}/readyz`).then(
          (response) => response.status,
          () => undefined,
        );
      },
    );
    t.is(readiness, 503, `${name}'s /readyz answers 503 from SIGTERM on`);
    t.is(await exit, 0, `${name} exits 0`);
    const exitMs = performance.now() - startedAt;
    servers.set(port, await startServe(t, env(port), port));
    const answeredBefore = proxy.answered.get(port) ?? 0;
    // Load reaches the new process before the next one goes.
    t.true(await until(() => (proxy.answered.get(port) ?? 0) > answeredBefore + 20, 20_000));
    restarts.push(
      `${name}: exit 0 in ${exitMs.toFixed(0)} ms, back in ${(performance.now() - startedAt).toFixed(0)} ms, ` +
        `${completed - before} sign-ins meanwhile`,
    );
  }
  stopped = true;
  await Promise.all(clients);

  t.deepEqual(failures, [], 'no sign-in failed');
  t.deepEqual(proxy.failures, [], 'no request failed at a backend, and none found every backend refusing');
  t.true(completed > CLIENTS * 2);
  t.log(
    `${completed} sign-ins completed through the proxy, none failed; ${restarts.join('; ')}; ` +
      `answered by A ${proxy.answered.get(portA)}, B ${proxy.answered.get(portB)}; ` +
      `refused connections sent on to the other: A ${proxy.refused.get(portA)}, B ${proxy.refused.get(portB)}`,
  );
});
