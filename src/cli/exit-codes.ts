/** Exit codes of every `postern` command (CONTRACT.md). */
export const EXIT = { ok: 0, invalid: 1, unavailable: 2 } as const;

/** An expected failure: printed as one sentence, exiting with its code; never a stack trace. */
export class CommandError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode: number) {
    super(message);
    this.name = 'CommandError';
    this.exitCode = exitCode;
  }
}
