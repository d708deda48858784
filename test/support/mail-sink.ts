/**
 * A real SMTP server on loopback that keeps what it receives, so tests read
 * the one-time codes Postern mails (and exercise the SMTP path itself).
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  to: string[];
  raw: string;
}

export interface MailSink {
  url: string;
  messages: ReceivedMail[];
  /** Resolves with the next message to `to` (or one already received and not yet claimed). */
  next(to: string, timeoutMs?: number): Promise<ReceivedMail>;
  /** The 6-digit code in the next message to `to`. */
  nextCode(to: string, timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

export async function startMailSink(): Promise<MailSink> {
  const messages: ReceivedMail[] = [];
  const claimed = new Set<ReceivedMail>();
  const waiters: Array<() => void> = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      let raw = '';
      stream.on('data', (chunk: Buffer) => {
        raw += chunk.toString('utf8');
      });
      stream.on('end', () => {
        messages.push({ to: session.envelope.rcptTo.map((rcpt) => rcpt.address.toLowerCase()), raw });
        for (const wake of waiters.splice(0)) wake();
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;

  async function next(to: string, timeoutMs = 10_000): Promise<ReceivedMail> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = messages.find(
        (message) => !claimed.has(message) && message.to.includes(to.toLowerCase()),
      );
      if (found) {
        claimed.add(found);
        return found;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no mail to ${to} within ${timeoutMs} ms`);
      // The timer goes once mail arrives: a pending one would keep the test process alive.
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    next,
    async nextCode(to, timeoutMs) {
      const message = await next(to, timeoutMs);
      const code = /\b(\d{6})\b/.exec(
        message.raw
          .split(/\r?\n\r?\n/)
          .slice(1)
          .join('\n'),
      )?.[1];
      if (!code) throw new Error(`no code in the mail to ${to}`);
      return code;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
