/**
 * Outgoing mail. With SMTP_URL, messages go out through nodemailer; without
 * it (the embedded demo), they are written to the log at warn level, which is
 * how a newcomer reads their sign-in code.
 */
import nodemailer from 'nodemailer';
import type { Logger } from '../logging/create-logger.ts';

export interface Message {
  to: string;
  subject: string;
  text: string;
}

export interface Mailer {
  /** @throws {Error} when the SMTP server refuses or cannot be reached. */
  send(message: Message): Promise<void>;
  close(): void;
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
        logger.warn(
          { mail: message },
          `email to ${message.to} (no SMTP_URL): ${message.subject}\n${message.text}`,
        );
      },
      close() {},
    };
  }
  const transport = nodemailer.createTransport(smtpUrl);
  return {
    async send(message) {
      await transport.sendMail({ from, ...message });
    },
    close: () => transport.close(),
  };
}
