/**
 * What the storage backends log through: connection loss and recovery, and
 * driver warnings. A pino Logger fits; so does `console`-like test doubles.
 */
export interface StoreLogger {
  warn(details: object, message: string): void;
  info?(details: object, message: string): void;
}
