/**
 * Outgoing mail. With SMTP_URL, messages go out through nodemailer; without
 * it (the embedded demo), each message is one line in the log, which is how a
 * newcomer reads their sign-in code: `Email code for ada@example.com: 123456`,
 * marked as a notice so the pretty console sets it apart, also without
 * colors (src/logging/create-logger.ts). The whole message is logged at debug.
 */
import nodemailer from 'nodemailer';
import { type Logger, NOTICE } from '../logging/create-logger.ts';

export interface Message {
  to: string;
  subject: string;
  text: string;
  /** (Optional) The one-time code the message carries: without SMTP, the log line shows it. */
  code?: string;
  /** (Optional) The link the message carries: without SMTP, the log line shows it. */
  link?: string;
}

export interface Mailer {
  /** @throws {Error} when the SMTP server refuses or cannot be reached. */
  send(message: Message): Promise<void>;
  close(): void;
}

/** The one line that stands for `message` when there is no mail server. */
export function logLineOf({ to, subject, code, link }: Message): string {
  if (code && link) return `Email code for ${to}: ${code} (link: ${link})`;
  if (code) return `Email code for ${to}: ${code}`;
  if (link) return `Email link for ${to}: ${link}`;
  return `Email to ${to}: ${subject}`;
}

export function createMailer({
  smtpUrl,
  from,
  logger,
}: {
  smtpUrl?: string;
  from: string;
  logger: Logger;
}): Mailer {
  if (!smtpUrl) {
    return {
      async send(message) {
        // The code goes in the message, not a field: fields named `code` are redacted.
        logger.info({ [NOTICE]: 'email' }, logLineOf(message));
        logger.debug({ mail: { to: message.to, subject: message.subject } }, message.text);
      },
      close() {},
    };
  }
  const transport = nodemailer.createTransport(smtpUrl);
  return {
    async send({ to, subject, text }) {
      await transport.sendMail({ from, to, subject, text });
    },
    close: () => transport.close(),
  };
}
