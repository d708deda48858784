/**
 * Fields several JSON APIs take (the interaction API, self-service, admin),
 * guarded once: an email as users type it, a passkey's name, a person's name.
 */
import { z } from 'zod';

/** An email address, trimmed; stored normalised (src/accounts/email.ts). */
export const emailField = z
  .string()
  .trim()
  .max(254)
  .pipe(z.email({ error: 'Enter a valid email address.' }));

/** No control characters: names end up in pages, logs and authenticators' account pickers. */
export const PRINTABLE = /^[^\p{Cc}]*$/u;

/** A passkey's name, as a user or an operator gives it. */
export const passkeyNameField = z
  .string()
  .trim()
  .min(1, 'Give the passkey a name.')
  .max(64, 'A passkey name has at most 64 characters.')
  .regex(PRINTABLE, 'A passkey name cannot contain control characters.');

/** A user's display name. */
export const personNameField = z
  .string()
  .trim()
  .min(1, 'A name cannot be empty.')
  .max(128, 'A name has at most 128 characters.')
  .regex(PRINTABLE, 'A name cannot contain control characters.');
